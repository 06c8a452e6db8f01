"""The floor: one pre-encoded frame written to N raw transports in a loop.

No framework, no per-client work beyond ``transport.write``: the least a
Python asyncio server can spend per delivery. The handshake is the bare
minimum of RFC 6455. With ``--compression`` it negotiates permessage-deflate
with ``server_no_context_takeover`` and deflates each message once for
everybody: the floor of a compressed fan-out.

Run: ``python -m bench.baselines.floor [--port P] [--interval S] [--compression]``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import zlib

from bench.baselines.common import (
    BACKLOG,
    STALL_HEADER,
    broadcast_done,
    parser,
    ready,
    sensor_update,
    serve,
    squeeze,
    ticker,
)
from gateway.api.frames import encode, text_frame

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B85"
MAX_REQUEST = 8192


class Floor:
    def __init__(self, *, compression: bool) -> None:
        self.compression = compression
        self.clients: set[asyncio.Transport] = set()

    async def broadcast(self, seq: int) -> None:
        started = time.perf_counter()
        payload = encode(sensor_update(seq))
        if self.compression:
            deflate = zlib.compressobj(wbits=-15)
            data = deflate.compress(payload) + deflate.flush(zlib.Z_SYNC_FLUSH)
            frame = text_frame(data[:-4])  # without the 00 00 ff ff tail (RFC 7692)
            out = bytes([frame[0] | 0x40]) + frame[1:]  # RSV1: this message is compressed
        else:
            out = text_frame(payload)
        for transport in self.clients:
            transport.write(out)
        broadcast_done(seq, len(self.clients), time.perf_counter() - started)


class Handshake(asyncio.Protocol):
    """Reads the upgrade request, answers 101, then ignores whatever the client sends."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.transport: asyncio.Transport | None = None
        self.request = b""
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.open or self.transport is None:
            return
        self.request += data
        if b"\r\n\r\n" not in self.request:
            if len(self.request) > MAX_REQUEST:
                self.transport.close()
            return
        headers = _headers(self.request)
        key = headers.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        extra = ""
        if self.floor.compression and "permessage-deflate" in headers.get(
            "sec-websocket-extensions", ""
        ):
            extra = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
        if headers.get(STALL_HEADER.lower()):
            squeeze(self.transport)
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n".encode()
        )
        self.open = True
        self.floor.clients.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.floor.clients.discard(self.transport)


def _headers(request: bytes) -> dict[str, str]:
    lines = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


async def main(stop: asyncio.Event) -> None:
    args = parser(__doc__ or "").parse_args()
    floor = Floor(compression=args.compression)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Handshake(floor), "127.0.0.1", args.port, backlog=BACKLOG
    )
    ready(server.sockets[0].getsockname()[1])
    task = asyncio.create_task(ticker(args.interval, floor.broadcast), name="floor.ticker")
    try:
        await stop.wait()
    finally:
        task.cancel()
        server.close()
        for transport in list(floor.clients):
            transport.abort()


if __name__ == "__main__":
    raise SystemExit(serve(main))
