"""One WebSocket client once aiohttp's handshake is done: what the peer sends, through
aiohttp's frame parser to the sans-I/O session (gateway/api/session.py), and what goes
back, through the hub's Client; its close handshake in both directions; its channels.

gateway/api/websocket.py accepts the connection and hands it over here
(gateway/api/takeover.py says what that relies on inside aiohttp).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from aiohttp.http_websocket import WebSocketError

from gateway.api import takeover
from gateway.api.frames import close_frame, frame_of, ping_frame, pong_frame, stamp
from gateway.api.hub import CLOSE_GOING_AWAY, Client, Variant
from gateway.api.session import Close, Effect, Refresh, Send, Session, Subscribe, Unsubscribe

if TYPE_CHECKING:
    from gateway.api.websocket import Backend

log = logging.getLogger("gateway.websocket")  # the name logs were filtered by

CLOSE_TIMEOUT = 2.0
CLOSE_NORMAL = 1000
#: Close codes an endpoint may send (RFC 6455 7.4.1; 1005, 1006 and 1015 never go out).
SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011})
CLOSE_TOKEN_EXPIRED = 4001
PING = ping_frame()  # the heartbeat sweep's, the same bytes for every client


def _kind(stream: str) -> str:
    """``alerts:EMBALSE_02`` -> ``alerts``."""
    return stream.split(":", 1)[0]


#: The message that opens each kind of stream when there is nothing to replay.
OPENING = {"alerts": "initial", "sensors": "sensor_update", "sites": "sites"}


class Channels(Collection[str]):
    """The channels a client may name: the hub's streams, and what the backend makes of a
    short name for this connection's ``?reservoir=`` (on a relay serving one site, or
    with ``?reservoir=``, ``alerts`` is ``alerts:<reservoir_id>``)."""

    __slots__ = ("backend", "reservoir")

    def __init__(self, backend: Backend, reservoir: str | None) -> None:
        self.backend, self.reservoir = backend, reservoir or None

    def resolve(self, name: str) -> str:
        """The hub stream ``name`` means here (itself when it means none)."""
        return self.backend.channel(name, self.reservoir) or name

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.backend.channel(name, self.reservoir) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.backend.hub.streams)

    def __len__(self) -> int:
        return len(self.backend.hub.streams)


class Connection:
    """One client: its session, its hub Client, its channels, its token's expiry.

    aiohttp does the handshake; then the connection is ours (gateway/api/takeover.py):
    the hub's Client is the socket's protocol and passes what the peer sends here,
    where aiohttp's frame parser turns it into messages for the session.
    """

    __slots__ = (
        "channels", "client", "closing", "connections", "early", "expiry", "fixed",
        "gateway", "gone", "heard", "known", "name", "reader", "session", "transport",
    )  # fmt: skip

    def __init__(
        self,
        request: web.Request,
        fixed: str | None,
        gateway: Backend,
        connections: set[Connection],
    ) -> None:
        self.connections = connections  # the open ones: this one joins once it is open
        self.gateway = gateway
        self.fixed = fixed  # the one stream of /ws/alerts or /ws/sensors; None on /ws
        self.known = Channels(gateway, request.query.get("reservoir"))
        server = gateway.config.server
        self.session = Session(
            fixed=fixed,
            streams=self.known,
            rate=server.action_rate,
            burst=server.action_burst,
            now=time.monotonic(),
        )
        transport = request.transport
        assert transport is not None
        self.transport = transport
        self.name = f"{fixed or 'ws'}@{request.remote}"
        self.reader: takeover.WebSocketReader | None = None
        #: What the peer sent before the parser: after its request (aiohttp's tail),
        #: then until ``catch_up`` (a compliant peer waits for the 101, a hasty one may not).
        self.early = takeover.take_tail(request)
        self.heard = True  # the peer sent something since the last ping
        self.closing: asyncio.TimerHandle | None = None  # our Close frame is out
        self.expiry: asyncio.TimerHandle | None = None
        self.gone: asyncio.Future[None] | None = None
        self.channels: set[str] = set()
        self.client = Client(
            transport,
            receiver=self,
            cut_off=self.cut_off,
            limit=server.client_queue,
            on_late_write=gateway.metrics.delivery_seconds.observe,
            name=self.name,
        )

    def opened(self, ws: web.WebSocketResponse) -> None:
        """The handshake is done: frames from now on, deflated if it was agreed."""
        window = ws.compress
        bits = window if isinstance(window, int) and not isinstance(window, bool) else 0
        self.client.window_bits = bits
        self.reader = takeover.reader(
            self.received,
            self.failed,
            max_size=self.gateway.config.server.max_message_bytes,
            compress=bool(bits),
        )

    def catch_up(self) -> None:
        """Once subscribed: what the peer sent before the parser existed."""
        early, self.early = self.early, b""
        if early and self.reader is not None:
            self.reader.feed_data(early)

    @property
    def variant(self) -> Variant:
        return (self.fixed is None, self.client.window_bits)

    # what the peer sends ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.heard = True
        if self.reader is None or self.early:
            self.early += data
        else:
            self.reader.feed_data(data)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def received(self, message: WSMessage) -> None:
        """One whole message from the peer. After our Close frame only its Close counts;
        a fault of ours closes 1011 (logged with its traceback), not as the peer's."""
        if self.closing is not None and message.type is not WSMsgType.CLOSE:
            return
        try:
            self._received(message)
        except Exception:
            log.exception("[WebSocket] %s: a message could not be handled", self.name)
            self.close(WSCloseCode.INTERNAL_ERROR, "internal error")

    def _received(self, message: WSMessage) -> None:
        kind = message.type
        if kind is WSMsgType.TEXT:
            self.handle(self.session.handle(message.data, time.monotonic()))
        elif kind is WSMsgType.BINARY:
            self.handle(self.session.handle_binary())
        elif kind is WSMsgType.PING:
            self.transport.write(pong_frame(message.data))
        elif kind is WSMsgType.CLOSE:
            self.peer_closed(message.data)

    def failed(self, exc: BaseException) -> None:
        """The peer broke the protocol (a frame too big, bad UTF-8...): close with its code."""
        code = exc.code if isinstance(exc, WebSocketError) else WSCloseCode.PROTOCOL_ERROR
        log.warning("[WebSocket] %s: %s; closing (%d)", self.name, exc, code)
        self.close(int(code), str(exc))

    def peer_closed(self, code: int) -> None:
        """The peer's Close frame: answer it with its code (1000 for none, or for one
        that may not go on the wire), unless ours crossed it; then hang up."""
        if self.closing is None:
            self.detach()
            echo = code if code in SENDABLE or 3000 <= code <= 4999 else CLOSE_NORMAL
            self.transport.write(close_frame(echo))
            loop = asyncio.get_running_loop()
            self.closing = loop.call_later(CLOSE_TIMEOUT, self.transport.abort)
        self.transport.close()  # once what is written has gone

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in (self.closing, self.expiry):
            if handle is not None:
                handle.cancel()
        self.closing = self.expiry = None
        self.detach()
        self.client.close()
        self.reader = None  # its inbox calls back here
        connections = self.connections
        if self in connections:
            connections.discard(self)
            log.info("[WebSocket] Disconnected. Total connections: %d", len(connections))
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)

    # what we send ---------------------------------------------------------------------

    def reply(self, message: dict[str, Any], channel: str | None = None) -> None:
        """A message for this client alone; on /ws it names its channel (or null)."""
        if self.fixed is None:
            message = {**message, "channel": channel}
        self.client.send(frame_of(stamp(message), None, self.client.window_bits))

    def subscribe(self, stream: str, since: int | None) -> None:
        """The opening of ``stream`` (the news missed, or its current state), then live."""
        hub = self.gateway.hub
        kind = _kind(stream)
        missed = (
            hub.streams[stream].since(since, self.variant)
            if since is not None and kind != "sites"  # a sites message holds the whole state
            else None
        )
        if missed is not None and (missed or kind == "alerts"):
            opening = missed
        else:
            current = self.current(stream, OPENING[kind])
            tag = stream if self.fixed is None else None
            opening = [
                frame_of(stamp(current, hub.streams[stream].seq), tag, self.client.window_bits)
            ]
        hub.attach(stream, self.client, opening, tagged=self.fixed is None)
        self.channels.add(stream)
        self.gateway.metrics.connections.labels(stream).inc()

    def unsubscribe(self, stream: str) -> None:
        if stream in self.channels:
            self.gateway.hub.detach(stream, self.client)
            self.channels.discard(stream)
            self.gateway.metrics.connections.labels(stream).dec()

    def current(self, stream: str, kind: str) -> dict[str, Any]:
        return {"type": kind, "data": self.gateway.current(stream)}

    def handle(self, effects: list[Effect]) -> None:
        """Carry out what the session made of one client frame."""
        for effect in effects:
            match effect:
                case Send(message, channel):
                    self.reply(message, channel and self.known.resolve(channel))
                case Refresh(stream):
                    stream = self.known.resolve(stream)
                    self.reply({"type": "refresh", "data": self.gateway.current(stream)}, stream)
                case Subscribe(stream, since):
                    stream = self.known.resolve(stream)
                    if stream not in self.channels:
                        self.subscribe(stream, since)
                case Unsubscribe(stream):
                    stream = self.known.resolve(stream)
                    self.unsubscribe(stream)
                case Close(code, reason):
                    self.cut_off(code, reason)

    def ping(self) -> None:
        """A Ping from the heartbeat sweep; the peer must say something before the next."""
        self.heard = False
        if self.closing is None:
            self.transport.write(PING)

    # ending ---------------------------------------------------------------------------

    def cut_off(self, code: int, reason: str) -> None:
        """Close on our side (too slow, token expired, a protocol error...), counted."""
        if code != CLOSE_GOING_AWAY and self.closing is None:
            for stream in self.channels or {self.fixed or "ws"}:
                self.gateway.metrics.clients_dropped.labels(stream).inc()
        self.close(code, reason)

    def close(self, code: int, reason: str) -> None:
        """Leave the hub at once (no more work for a client that is going, and nothing
        may follow our Close frame: RFC 6455 5.5.1), send the Close frame, then wait
        at most CLOSE_TIMEOUT for the peer's: a stalled peer would never send it."""
        if self.closing is not None or self.transport.is_closing():
            return
        self.detach()
        self.transport.write(close_frame(code, reason))
        self.closing = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.transport.abort)

    def expire_at(self, claims: dict[str, Any] | None) -> None:
        """Close 4001 when the token expires."""
        exp = (claims or {}).get("exp")
        if not isinstance(exp, int | float):
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, float(exp) - time.time())
        self.expiry = loop.call_later(delay, self.cut_off, CLOSE_TOKEN_EXPIRED, "token expired")

    def detach(self) -> None:
        """Hear no more from the hub."""
        self.client.closed = True
        for stream in list(self.channels):
            self.unsubscribe(stream)

    def ended(self) -> asyncio.Future[None]:
        """Done once the socket is gone."""
        if self.gone is None:
            self.gone = asyncio.get_running_loop().create_future()
            if self.transport.is_closing() and self not in self.connections:
                self.gone.set_result(None)
        return self.gone
