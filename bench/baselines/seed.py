"""The seed's design: FastAPI + uvicorn, the documented ``ConnectionManager``.

``broadcast`` awaits ``send_json`` for each connection in turn: every delivery
encodes the message again, and a connection whose transport is paused (its
client stopped reading) holds up every connection after it in the list.

uvicorn 0.54 runs with its defaults but for these: the asyncio loop, no
keepalive pings (no server in the benchmark pings), permessage-deflate only
with ``--compression``, and a protocol subclass that applies the benchmark's
stall squeeze (:func:`bench.baselines.common.squeeze`) to flagged connections.

Run: ``python -m bench.baselines.seed [--port P] [--interval S] [--compression]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn  # type: ignore[import-not-found, unused-ignore]  # the bench extra
from fastapi import FastAPI, WebSocket, WebSocketDisconnect  # type: ignore[import-not-found, unused-ignore]  # the bench extra
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol  # type: ignore[import-not-found, unused-ignore]  # the bench extra
from websockets.http11 import Request  # type: ignore[import-not-found, unused-ignore]  # the bench extra

from bench.baselines.common import (
    STALL_HEADER,
    broadcast_done,
    parser,
    pausable,
    ready,
    sensor_update,
    squeeze,
    ticker,
)
from bench.procstat import die_with_parent


class ConnectionManager:
    """As in the FastAPI documentation, with ``send_json``."""

    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        self.active_connections.remove(websocket)

    async def broadcast(self, message: dict[str, Any]) -> None:
        for connection in self.active_connections:
            await connection.send_json(message)


manager = ConnectionManager()


async def timed_broadcast(seq: int) -> None:
    started = time.perf_counter()
    await manager.broadcast(sensor_update(seq))
    broadcast_done(seq, len(manager.active_connections), time.perf_counter() - started)


def build(port: int, interval: float) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(ticker(interval, timed_broadcast), name="seed.ticker")
        pausable()
        ready(port)
        yield
        task.cancel()

    app = FastAPI(lifespan=lifespan)

    @app.websocket("/ws/sensors")  # type: ignore[untyped-decorator, unused-ignore]
    async def sensors(websocket: WebSocket) -> None:
        await manager.connect(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            manager.disconnect(websocket)

    return app


class StallAwareProtocol(WebSocketsSansIOProtocol):  # type: ignore[misc, unused-ignore]
    """uvicorn's default WebSocket protocol; squeezes the buffers of a flagged client."""

    def handle_connect(self, event: Request) -> None:
        if event.headers.get(STALL_HEADER):
            squeeze(self.transport)
        super().handle_connect(event)


def main() -> int:
    die_with_parent()
    args = parser(__doc__ or "").parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build(port, args.interval),
        loop="asyncio",
        http="h11",
        ws=StallAwareProtocol,
        ws_ping_interval=None,
        ws_ping_timeout=None,
        ws_per_message_deflate=args.compression,
        lifespan="on",
        log_level="warning",
        access_log=False,
    )
    sock.listen(config.backlog)  # connections wait in the backlog until uvicorn accepts
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
