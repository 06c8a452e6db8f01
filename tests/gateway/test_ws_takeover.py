"""A WebSocket taken over from aiohttp after its handshake (gateway/api/takeover.py),
driven by a raw socket that does what browsers rarely do but peers may: a frame in the
same write as the upgrade, a connection closed during the handshake, a Close frame
with a code that may not go on the wire, frames after our Close."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from typing import Any

from gateway.api.websocket import CONNECTIONS
from tests.gateway.conftest import Client
from tests.helpers import until

Frames = list[tuple[int, bytes]]


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame of under 126 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def upgrade(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Peer:
    """A raw WebSocket peer: reads the 101, then whole server frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.buffer = reader, writer, b""

    @classmethod
    async def open(cls, client: Client, first: bytes) -> Peer:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(first)
        peer = cls(reader, writer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        return peer

    async def frames_until(self, opcode: int) -> Frames:
        """Every frame up to and including the first with ``opcode``."""
        got: Frames = []
        while not got or got[-1][0] != opcode:
            while (parsed := self._one()) is None:
                chunk = await asyncio.wait_for(self.reader.read(65536), 5)
                assert chunk, f"closed before opcode {opcode}; got {got}"
                self.buffer += chunk
            got.append(parsed)
        return got

    async def rest(self) -> Frames:
        """What comes until the server hangs up."""
        while chunk := await asyncio.wait_for(self.reader.read(65536), 5):
            self.buffer += chunk
        got: Frames = []
        while (parsed := self._one()) is not None:
            got.append(parsed)
        return got

    def _one(self) -> tuple[int, bytes] | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        size, head = buf[1] & 0x7F, 2
        if size == 126:
            size, head = struct.unpack("!H", buf[2:4])[0], 4
        if len(buf) < head + size:
            return None
        self.buffer = buf[head + size :]
        return buf[0] & 0x0F, buf[head : head + size]

    def close(self) -> None:
        self.writer.close()


def texts(frames: Frames) -> list[dict[str, Any]]:
    return [json.loads(payload) for opcode, payload in frames if opcode == 0x1]


async def test_a_frame_sent_with_the_upgrade_is_answered_after_the_opening(
    client: Client,
) -> None:
    peer = await Peer.open(client, upgrade("/ws/alerts") + frame(0x1, b'{"action":"ping"}'))
    got = texts(await peer.frames_until(0x1) + await peer.frames_until(0x1))
    assert [m["type"] for m in got] == ["initial", "pong"]  # the opening first, as ever
    peer.close()


async def test_a_peer_gone_during_the_handshake_leaves_nothing_behind(client: Client) -> None:
    server: Any = client.server.runner.server
    for _ in range(20):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(upgrade("/ws/sensors"))
        writer.write_eof()
        with_response = await asyncio.wait_for(reader.read(), 5)  # until the server hangs up
        assert not with_response or with_response.startswith(b"HTTP/1.1")
        writer.close()
    await until(lambda: not server.connections and not client.app[CONNECTIONS])


async def test_a_close_code_that_may_not_be_sent_is_answered_with_1000(client: Client) -> None:
    peer = await Peer.open(client, upgrade("/ws/alerts"))
    await peer.frames_until(0x1)  # initial
    peer.writer.write(frame(0x8, struct.pack("!H", 1006)))  # reserved: never on the wire
    closes = [payload for opcode, payload in await peer.rest() if opcode == 0x8]
    assert closes == [struct.pack("!H", 1000)]


async def test_nothing_but_its_close_is_answered_after_our_close(client: Client) -> None:
    peer = await Peer.open(client, upgrade("/ws/alerts"))
    await peer.frames_until(0x1)  # initial
    flood = b"".join(frame(0x1, b'{"action":"ping"}') for _ in range(200))
    peer.writer.write(flood + frame(0x9, b"hi"))  # rate-limited, closed 1008; then a Ping
    got = await peer.frames_until(0x8)
    assert struct.unpack("!H", got[-1][1][:2])[0] == 1008
    peer.writer.write(frame(0x9, b"again") + frame(0x8, struct.pack("!H", 1000)))
    after = await peer.rest()
    assert after == []  # no Pong, no text, no second Close after ours
