"""No per-connection garbage: a client that leaves takes its objects with it at once.

Clients connect and leave over real sockets (plain blocking sockets in worker threads,
which leave no cycles of their own), politely or by dropping the TCP connection, on
all three endpoints, with ``?since=`` and subscriptions. Automatic collection is off
during the churn; one ``gc.collect()`` afterwards must find nothing that belongs to a
connection. (The simulated devices' own short-lived garbage is told apart by what it
reaches: it never reaches a connection's objects.)
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import socket
import types
from collections import deque
from collections.abc import Iterator

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict

from gateway.api.connection import Connection
from gateway.api.hub import Client
from gateway.api.websocket import CONNECTIONS
from tests.gateway.conftest import Client as TestClient
from tests.gateway.conftest import gateway_of
from tests.helpers import until

#: What a connection is made of; anything in the garbage reachable from these is its.
CONNECTION_TYPES = (
    Connection,
    Client,
    web.WebSocketResponse,
    web.BaseRequest,
    RequestHandler,
    asyncio.BaseTransport,
    socket.socket,
    BaseException,
    types.FrameType,
    types.TracebackType,
    CIMultiDict,
    deque,
)
PATHS = ("/ws/sensors", "/ws/alerts", "/ws", "/ws/sensors?since=1")


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payload under 126 bytes)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def visit(port: int, path: str, polite: bool) -> None:
    """One client: upgrade, read the opening, maybe subscribe, then leave."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 101"), reply[:80]
        if path == "/ws":
            subscribe = {"action": "subscribe", "channel": "alerts", "since": 0}
            sock.sendall(_frame(0x1, json.dumps(subscribe).encode()))
            sock.recv(4096)  # the subscription's reply
        elif not reply.split(b"\r\n\r\n", 1)[1]:
            sock.recv(4096)  # the opening, when it did not come with the upgrade
        if polite:
            sock.sendall(_frame(0x8, (1000).to_bytes(2, "big")))
            sock.recv(4096)  # the server's Close


async def churn(port: int, clients: int, batch: int = 25) -> None:
    for start in range(0, clients, batch):
        await asyncio.gather(
            *(
                asyncio.to_thread(visit, port, PATHS[i % len(PATHS)], polite=i % 2 == 0)
                for i in range(start, min(clients, start + batch))
            )
        )


def _reachable(roots: list[object], among: dict[int, object]) -> Iterator[object]:
    seen = {id(root) for root in roots}
    todo = list(roots)
    while todo:
        item = todo.pop()
        yield item
        for referent in gc.get_referents(item):
            if id(referent) in among and id(referent) not in seen:
                seen.add(id(referent))
                todo.append(referent)


async def connection_garbage(client: TestClient, clients: int) -> list[object]:
    """The unreachable objects of ``clients`` connections come and gone, by type name."""
    port = client.server.port
    assert port is not None
    connections = client.app[CONNECTIONS]
    await churn(port, 10)  # warm up: caches and lazily built objects are not garbage
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await churn(port, clients)
        await until(lambda: not connections, timeout=5)
        await asyncio.sleep(0)  # the transports' last callbacks (connection_lost) run
        gc.collect()
        garbage = {id(item): item for item in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    roots = [item for item in garbage.values() if isinstance(item, CONNECTION_TYPES)]
    return list(_reachable(roots, garbage))


async def test_a_thousand_clients_leave_no_garbage(client: TestClient) -> None:
    gateway = gateway_of(client)
    await until(lambda: gateway.readings.value("ph") is not None)
    left = await connection_garbage(client, 1000)
    kinds = sorted({type(item).__qualname__ for item in left})
    assert not left, f"{len(left)} objects of gone connections in cycles: {kinds}"
