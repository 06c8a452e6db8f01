"""Taking a WebSocket over from aiohttp once its handshake is done.

aiohttp does the handshake (``WebSocketResponse.prepare``: the key, the
subprotocol, permessage-deflate); from then on a client of ours costs only the
socket, aiohttp's frame parser and our own objects (gateway/api/connection.py's
``Connection`` and the hub's ``Client``). aiohttp's per-connection request
handler, the request, its headers and parser, the response, its two tasks and its
heartbeat timer all go as soon as the handler returns: they were about two thirds
of a client's heap (docs/scaling.md, "Where the bytes of a WebSocket client go").

What it relies on inside aiohttp (checked against 3.14; tests/gateway/
test_aiohttp_internals.py fails, naming what changed, if an upgrade breaks it):

- ``request.transport`` is the connection's socket transport and
  ``request.protocol`` (``web_protocol.RequestHandler``) its protocol, with a
  ``transport`` attribute, ``connection_lost``, and ``_message_tail``: the bytes
  that came after the request in the same read, which ``prepare()`` would feed
  to aiohttp's own frame parser;
- ``RequestHandler.connection_lost(None)`` with its ``transport`` set to None
  takes it off the server's list of connections and ends its loop without
  closing the socket;
- a handler may return any ``StreamResponse``: aiohttp calls its ``prepare`` and
  ``write_eof`` and logs its status;
- ``aiohttp._websocket.reader``: ``WebSocketReader(queue, max_msg_size,
  compress, decode_text)`` parses client frames (masks, fragments, deflate,
  UTF-8, sizes) and hands each message to ``queue.feed_data(message, size)``
  (a ``cpdef`` method, so a subclass's override is called), or a
  ``WebSocketError`` to ``queue.set_exception``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from aiohttp import WSMessage, web
from aiohttp._websocket.models import WSMessageTextBytes
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader

__all__ = ["HandedOver", "WebSocketReader", "reader", "take_over", "take_tail"]


class _Inbox(WebSocketDataQueue):
    """Where the parser puts each message: handed on at once, nothing buffered."""

    __slots__ = ("_on_error", "_on_message")

    def __init__(
        self,
        on_message: Callable[[WSMessage], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        super().__init__(None, 0, loop=None)  # type: ignore[arg-type]  # never used
        self._on_message = on_message
        self._on_error = on_error

    def feed_data(self, data: WSMessage | WSMessageTextBytes, size: int) -> None:
        self._on_message(cast(WSMessage, data))  # decode_text: text comes as str

    def set_exception(self, exc: BaseException, exc_cause: Any = None) -> None:
        self._on_error(exc)

    def feed_eof(self) -> None:
        pass


def reader(
    on_message: Callable[[WSMessage], None],
    on_error: Callable[[BaseException], None],
    *,
    max_size: int,
    compress: bool,
) -> WebSocketReader:
    """A parser of client frames: ``reader.feed_data(bytes)``; each whole message goes
    to ``on_message``, a protocol violation (a ``WebSocketError`` with its close code)
    to ``on_error``, after which the parser ignores the rest."""
    return WebSocketReader(
        _Inbox(on_message, on_error), max_size, compress=compress, decode_text=True
    )


def take_over(request: web.Request) -> None:
    """After ``prepare()``: aiohttp lets go of the connection and the socket stays open.

    The transport must already have another protocol (``transport.set_protocol``).
    """
    protocol = request.protocol
    protocol.transport = None  # what its clean-up would close: nothing now
    protocol.connection_lost(None)


class HandedOver(web.StreamResponse):
    """What the handler returns for a connection it took over: the 101 went out in
    ``prepare()``; aiohttp has nothing more to write, and logs the 101."""

    def __init__(self) -> None:
        super().__init__(status=101)

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def take_tail(request: web.Request) -> bytes:
    """What the peer sent after its request, in the same read: aiohttp would hand it to
    its own frame parser in ``prepare()``; taken before, it goes to ours."""
    protocol = request.protocol
    tail: bytes = protocol._message_tail
    protocol._message_tail = b""
    return tail
