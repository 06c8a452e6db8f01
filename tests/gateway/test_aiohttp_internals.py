"""What gateway/api/hub.py relies on inside aiohttp, checked on a real connection.

The hub writes its frames straight to aiohttp's transport and stands between that
transport and aiohttp's own protocol (see its docstring). An aiohttp upgrade that
changes any of what it touches fails here, with a message naming what changed,
rather than as lost or garbled frames in production.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.api.frames import frame_of, stamp
from gateway.api.hub import Client

UPGRADE = f"aiohttp {aiohttp.__version__}: "
SEE = " (gateway/api/hub.py's docstring lists what it relies on)"

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@dataclass
class Seen:
    """What the server handler saw of one connection, and the hub Client over it."""

    request: web.Request | None = None
    ws: web.WebSocketResponse | None = None
    client: Client | None = None
    protocol_before: object = None
    texts: list[str] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    received: asyncio.Event = field(default_factory=asyncio.Event)


def app_seeing(seen: Seen) -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=True)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None, UPGRADE + "request.transport is None after prepare()" + SEE
        seen.request, seen.ws, seen.protocol_before = request, ws, transport.get_protocol()
        window = ws.compress
        seen.client = Client(
            transport,
            protocol=request.protocol,
            drain=request.writer.drain,
            cut_off=lambda code, reason: None,
            window_bits=window if isinstance(window, int) and not isinstance(window, bool) else 0,
        )
        seen.ready.set()
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                seen.texts.append(message.data)
                seen.received.set()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    return app


async def connect(
    aiohttp_client: ClientFactory, compress: int
) -> tuple[Seen, aiohttp.ClientWebSocketResponse]:
    seen = Seen()
    client = await aiohttp_client(app_seeing(seen))
    ws = await client.ws_connect("/ws", compress=compress)
    await asyncio.wait_for(seen.ready.wait(), 5)
    return seen, ws


def test_the_protocol_has_the_flow_control_the_client_fronts() -> None:
    from aiohttp.web_protocol import RequestHandler

    paused = inspect.getattr_static(RequestHandler, "writing_paused", None)
    assert paused is not None, UPGRADE + "RequestHandler.writing_paused is gone" + SEE
    expected = {
        "data_received": ["data"],
        "eof_received": [],
        "connection_lost": ["exc"],
        "pause_writing": [],
        "resume_writing": [],
    }
    for name, params in expected.items():
        method = getattr(RequestHandler, name, None)
        assert callable(method), UPGRADE + f"RequestHandler.{name} is gone" + SEE
        got = [p for p in inspect.signature(method).parameters if p != "self"]
        assert got == params, UPGRADE + f"RequestHandler.{name}{tuple(got)} != {params}" + SEE


@pytest.mark.parametrize("compress", [0, 15])
async def test_a_frame_the_hub_writes_decodes_with_aiohttps_own_client(
    aiohttp_client: ClientFactory, compress: int
) -> None:
    seen, ws = await connect(aiohttp_client, compress)
    assert seen.request is not None
    assert seen.ws is not None
    assert seen.client is not None
    window = seen.ws.compress
    if compress:
        assert not isinstance(window, bool), UPGRADE + "WebSocketResponse.compress is a bool"
        assert window == 15, (
            UPGRADE + f"WebSocketResponse.compress is {window!r} after prepare(), not the "
            "negotiated window bits (15)" + SEE
        )
    else:
        assert not window, UPGRADE + f"WebSocketResponse.compress is {window!r} uncompressed"
    assert seen.protocol_before is seen.request.protocol, (
        UPGRADE + "the transport's protocol is not request.protocol: the hub would front "
        "the wrong object" + SEE
    )
    assert seen.request.transport is not None
    assert seen.request.transport.get_protocol() is seen.client, (
        UPGRADE + "transport.set_protocol() did not take: the hub cannot see pause_writing" + SEE
    )
    seen.client.send(frame_of(stamp({"type": "initial", "data": {"total": 1}}), None, window or 0))
    message = await ws.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.TEXT, (
        UPGRADE + f"aiohttp's client read the hub's frame as {message.type!r}" + SEE
    )
    assert message.json()["data"] == {"total": 1}
    await ws.send_str("ping")  # through the hub Client's data_received to aiohttp's reader
    await asyncio.wait_for(seen.received.wait(), 5)
    assert seen.texts == ["ping"], UPGRADE + "frames from the peer no longer reach the handler"
    await ws.close()


async def test_pause_and_resume_reach_aiohttps_protocol(aiohttp_client: ClientFactory) -> None:
    seen, ws = await connect(aiohttp_client, 0)
    assert seen.request is not None
    assert seen.client is not None
    protocol = seen.request.protocol
    assert protocol.writing_paused is False
    seen.client.pause_writing()
    assert protocol.writing_paused is True, (
        UPGRADE + "pause_writing() no longer sets RequestHandler.writing_paused" + SEE
    )
    assert not seen.client.ready
    drained = asyncio.ensure_future(seen.request.writer.drain())
    await asyncio.sleep(0)
    assert not drained.done(), UPGRADE + "request.writer.drain() no longer waits while paused"
    seen.client.resume_writing()
    assert protocol.writing_paused is False
    await asyncio.wait_for(drained, 5)
    assert seen.client.ready
    await ws.close()
