"""What gateway/api/takeover.py relies on inside aiohttp, checked on real connections.

After the handshake the gateway takes a WebSocket over from aiohttp: the hub's
Client becomes the socket's protocol, aiohttp's request handler lets go, and
aiohttp's frame parser turns what the peer sends into messages. An aiohttp upgrade
that changes any of that fails here, with a message naming what changed, rather
than as lost frames or held sockets in production.
"""

from __future__ import annotations

import inspect
import os
import struct
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMessage, WSMsgType
from aiohttp.http_websocket import WebSocketError

from gateway.api import takeover
from tests.gateway.conftest import Client

UPGRADE = f"aiohttp {aiohttp.__version__}: "
SEE = " (gateway/api/takeover.py's docstring lists what it relies on)"


def masked(opcode: int, payload: bytes) -> bytes:
    """A client-to-server frame (masked, FIN), as a browser sends it."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack("!H", size)
    return bytes([0x80 | opcode]) + length + mask + body


def test_the_request_handler_has_what_the_takeover_uses() -> None:
    from aiohttp.web_protocol import RequestHandler

    paused = inspect.getattr_static(RequestHandler, "writing_paused", None)
    assert paused is not None, UPGRADE + "RequestHandler.writing_paused is gone" + SEE
    assert "_message_tail" in RequestHandler.__slots__, (
        UPGRADE + "RequestHandler._message_tail is gone: a frame sent with the upgrade "
        "would go to aiohttp's parser, not ours" + SEE
    )
    lost = [p for p in inspect.signature(RequestHandler.connection_lost).parameters]
    assert lost == ["self", "exc"], UPGRADE + f"RequestHandler.connection_lost{lost}" + SEE


def test_the_parser_hands_each_message_to_the_inbox() -> None:
    messages: list[WSMessage] = []
    errors: list[BaseException] = []
    reader = takeover.reader(messages.append, errors.append, max_size=64, compress=False)
    wire = masked(0x1, "déjà".encode()) + masked(0x9, b"hb") + masked(0x8, b"\x03\xe8bye")
    for cut in (3, 9):  # split anywhere, as TCP does
        reader.feed_data(wire[:cut])
        wire = wire[cut:]
    reader.feed_data(wire)
    assert [(m.type, m.data) for m in messages] == [
        (WSMsgType.TEXT, "déjà"),
        (WSMsgType.PING, b"hb"),
        (WSMsgType.CLOSE, 1000),
    ], UPGRADE + "the parser no longer calls the queue's feed_data override" + SEE
    assert not errors


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (masked(0x1, b"x" * 100), 1009),  # over max_size
        (masked(0x1, b"\xff\xfe"), 1007),  # not UTF-8
        (masked(0x3, b""), 1002),  # a reserved opcode
    ],
)
def test_a_protocol_violation_reaches_on_error_with_its_close_code(frame: bytes, code: int) -> None:
    messages: list[WSMessage] = []
    errors: list[BaseException] = []
    reader = takeover.reader(messages.append, errors.append, max_size=64, compress=False)
    reader.feed_data(frame)
    reader.feed_data(masked(0x1, b"after"))  # ignored once broken
    assert not messages
    assert len(errors) == 1, UPGRADE + "set_exception is no longer how the parser reports" + SEE
    error = errors[0]
    assert isinstance(error, WebSocketError)
    assert error.code == code


async def test_a_taken_over_connection_leaves_aiohttp_and_stays_open(client: Client) -> None:
    server: Any = client.server.runner.server
    async with client.ws_connect("/ws/sensors", compress=15) as ws:
        first = await ws.receive_json(timeout=5)
        assert first["type"] == "sensor_update"
        assert server.connections == [], (
            UPGRADE + "the request handler is still on the server's list after the "
            "takeover: shutdown would wait for it, and its objects stay alive" + SEE
        )
        await ws.send_json({"action": "ping"})
        while (reply := await ws.receive_json(timeout=5))["type"] != "pong":
            pass
        assert reply["type"] == "pong"
    assert ws.close_code == 1000
