"""The WebSocket endpoints: ``/ws/alerts``, ``/ws/sensors`` and ``/ws`` (channels).

On connect a client gets the stream's opening message (``initial`` counts, or a
``sensor_update``), or, with ``?since=<seq>``, the news it missed. It may send
``ping`` and ``refresh``; on ``/ws`` also ``subscribe`` and ``unsubscribe`` to
channels, and every message there carries its ``channel``. Anything else is
answered with an ``error`` message and the connection stays open. Refusals
(token, Origin, capacity, a bad ``since``) happen before the upgrade, as HTTP.

What a client's frame means is decided by :class:`gateway.api.session.Session` (no
I/O); this module is the aiohttp adapter that carries out its effects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections.abc import AsyncIterator, Collection, Iterator
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from aiohttp.http_websocket import WebSocketError

from gateway.api import params, takeover
from gateway.api.auth import (
    CLAIMS,
    SUBPROTOCOL,
    Authenticator,
    install_redaction,
    origin_allowed,
    security_middleware,
)
from gateway.api.frames import close_frame, frame_of, ping_frame, pong_frame, stamp
from gateway.api.hub import CLOSE_GOING_AWAY, Client, Hub, Variant
from gateway.api.metrics import Metrics
from gateway.api.session import Close, Effect, Refresh, Send, Session, Subscribe, Unsubscribe
from gateway.config import Config, ConfigError

log = logging.getLogger("gateway.websocket")


class Backend(Protocol):
    """What the WebSocket endpoints need: a gateway, or a relay of many."""

    config: Config
    hub: Hub
    metrics: Metrics

    def current(self, stream: str) -> dict[str, Any]:
        """The ``data`` of a stream now: the alert counts, or the readings."""

    def channel(self, name: str, reservoir: str | None = None) -> str | None:
        """The hub stream a client means by ``name`` (and ``?reservoir=``), or None."""

    def latest(self, stream: str) -> dict[str, Any]:
        """The ``data`` of the stream's last news (what the polling fallback answers)."""

    def reservoirs(self) -> list[str]:
        """The sites served: a gateway's own, or those a relay has heard."""

    def active_alerts(self) -> list[dict[str, Any]]:
        """The active alerts, newest first (on a relay, each with its ``reservoir_id``)."""

    async def dismiss(self, alert_id: str, by: str | None) -> bool | None:
        """True once dismissed, False if no such alert is active, None if the owner of
        the alert did not confirm in time (a relay)."""

    def health(self) -> dict[str, object]:
        """The body of ``/healthz``."""


BACKEND = web.AppKey("backend", Backend)
#: Set when the server begins to stop: long polls answer at once instead of holding it up.
STOPPING = web.AppKey("stopping", asyncio.Event)
CLOSE_TIMEOUT = 2.0
CLOSE_NORMAL = 1000
#: Close codes an endpoint may send (RFC 6455 7.4.1; 1005, 1006 and 1015 never go out).
SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011})
CLOSE_TOKEN_EXPIRED = 4001
#: WebSocket pings (which find dead peers) go out with the heartbeat, but never
#: more often than this: a peer gets half the interval to answer.
MIN_PING_INTERVAL = 5.0
#: File descriptors kept back from WebSocket clients (serial ports, SQLite, logs).
FD_RESERVE = 64


def connection_cap(configured: int | None) -> int:
    """The configured cap, or what the process's open-file limit leaves room for."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = 65536 if soft == resource.RLIM_INFINITY else max(1, soft - FD_RESERVE)
    return min(configured, room) if configured else room


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
        "app", "channels", "client", "closing", "early", "expiry", "fixed", "gateway",
        "gone", "heard", "known", "name", "reader", "session", "transport",
    )  # fmt: skip

    def __init__(self, request: web.Request, fixed: str | None) -> None:
        self.app = request.app
        self.gateway = gateway = request.app[BACKEND]
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
        connections = self.app[CONNECTIONS]
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
            if self.transport.is_closing() and self not in self.app[CONNECTIONS]:
                self.gone.set_result(None)
        return self.gone


#: The open connections, for the connection cap, the heartbeat and the close on shutdown.
CONNECTIONS = web.AppKey("connections", set[Connection])
PING = ping_frame()


def stream_handler(stream: str | None) -> Any:
    """The handler of ``/ws/<stream>``, or of ``/ws`` (channels) for None."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve(request, stream)

    return handler


async def serve(request: web.Request, fixed: str | None) -> web.StreamResponse:
    app = request.app
    backend = app[BACKEND]
    server = backend.config.server
    if not origin_allowed(request, server.allowed_origins):
        raise web.HTTPForbidden(text=f"origin {request.headers.get('Origin')!r} is not allowed")
    try:
        since = params.seq(request.query.get("since"))
    except params.BadInput as exc:
        raise web.HTTPBadRequest(text=exc.detail) from None
    if len(app[CONNECTIONS]) >= connection_cap(server.max_connections):
        raise web.HTTPServiceUnavailable(text="connection limit reached; try again later")
    stream = None
    if fixed is not None:
        stream = backend.channel(fixed, request.query.get("reservoir"))
        if stream is None:
            known = sorted({s.split(":", 1)[-1] for s in backend.hub.streams if ":" in s})
            raise web.HTTPNotFound(
                text=f"reservoir: expected one of {', '.join(known) or 'none yet'}"
            )
    ws = web.WebSocketResponse(
        max_msg_size=server.max_message_bytes,
        compress=server.compression,
        protocols=(SUBPROTOCOL,),
    )
    if not ws.can_prepare(request).ok:
        return await _not_websocket(request, ws)
    if request.transport is None or request.transport.is_closing():
        return web.Response(status=400, text="the connection closed before the upgrade")
    connection = Connection(request, stream)  # the socket's protocol from now on
    try:
        await ws.prepare(request)
    except Exception as exc:  # the peer left, or a prepare hook failed: aiohttp lets go
        takeover.take_over(request)
        connection.transport.abort()
        if not isinstance(exc, ConnectionError):
            raise
        return web.Response(status=400, text="the connection closed during the upgrade")
    takeover.take_over(request)
    connection.opened(ws)
    app[CONNECTIONS].add(connection)
    log.info("[WebSocket] Connected. Total connections: %d", len(app[CONNECTIONS]))
    if stream is not None:
        connection.subscribe(stream, since)
    connection.expire_at(request.get(CLAIMS))
    if app[STOPPING].is_set():  # shutdown began during the handshake
        connection.close(CLOSE_GOING_AWAY, "server shutdown")
    connection.catch_up()
    return takeover.HandedOver()


async def _not_websocket(request: web.Request, ws: web.WebSocketResponse) -> web.StreamResponse:
    """aiohttp's own answer to a request that is no WebSocket handshake (400 with why)."""
    await ws.prepare(request)  # raises the HTTP error that says what is wrong
    return ws


async def heartbeat(app: web.Application) -> None:
    """One sweep for every client: a Ping each interval (at least MIN_PING_INTERVAL);
    a peer that has sent nothing half an interval later is gone, and its socket is
    dropped. The interval is read each round, so a reload changes it."""
    connections: set[Connection] = app[CONNECTIONS]
    while True:
        interval = max(app[BACKEND].config.server.heartbeat_interval, MIN_PING_INTERVAL)
        await asyncio.sleep(interval / 2)
        for connection in tuple(connections):
            connection.ping()
        await asyncio.sleep(interval / 2)
        for connection in tuple(connections):
            if not connection.heard and connection.closing is None:
                log.info("[WebSocket] %s did not answer a ping; dropped", connection.name)
                connection.transport.abort()


async def _heartbeat_forever(app: web.Application) -> None:
    """The sweep, restarted (with its traceback logged) should a round ever fail."""
    while True:
        try:
            await heartbeat(app)
        except Exception:
            log.exception("[WebSocket] the heartbeat sweep failed; restarting it")
            await asyncio.sleep(MIN_PING_INTERVAL)


async def close_all(app: web.Application) -> None:
    """On shutdown: every client gets 1001 (going away), all at once. Each leaves the hub
    first, so no broadcast is written after its Close frame."""
    open_connections: set[Connection] = app[CONNECTIONS]
    connections = list(open_connections)
    for connection in connections:
        connection.close(CLOSE_GOING_AWAY, "server shutdown")
    ends = [connection.ended() for connection in connections]
    if ends:
        await asyncio.wait(ends, timeout=CLOSE_TIMEOUT * 2)


def streaming_app(backend: Backend, config: Config) -> web.Application:
    """An application with what a gateway and a relay share: tokens and Origins checked
    on every route, the three WebSocket endpoints, and a clean stop (1001 to every client).
    Raises ConfigError for a public key that cannot be read."""
    try:
        authenticator = Authenticator(config.auth.jwt_secret, config.auth.jwt_public_key)
    except (ValueError, OSError) as exc:
        raise ConfigError(
            [f"auth.jwt_public_key: not a PEM public key or its file: {exc}"]
        ) from None
    install_redaction()  # ?token= never reaches a log line
    app = web.Application(
        middlewares=[security_middleware(authenticator, config.server.allowed_origins)]
    )
    app[BACKEND] = backend
    app[CONNECTIONS] = set()
    app[STOPPING] = asyncio.Event()

    async def stopping(app: web.Application) -> None:
        app[STOPPING].set()

    async def pinging(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_heartbeat_forever(app), name="ws.heartbeat")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.on_shutdown.append(stopping)
    app.on_shutdown.append(close_all)
    app.cleanup_ctx.append(pinging)
    app.router.add_get("/ws", stream_handler(None))
    app.router.add_get("/ws/alerts", stream_handler("alerts"))
    app.router.add_get("/ws/sensors", stream_handler("sensors"))
    return app
