"""The WebSocket endpoints: ``/ws/alerts``, ``/ws/sensors`` and ``/ws`` (channels).

On connect a client gets the stream's opening message (``initial`` counts, or a
``sensor_update``), or, with ``?since=<seq>``, the news it missed. It may send
``ping`` and ``refresh``; on ``/ws`` also ``subscribe`` and ``unsubscribe`` to
channels, and every message there carries its ``channel``. Anything else is
answered with an ``error`` message and the connection stays open. Refusals
(token, Origin, capacity, a bad ``since``) happen before the upgrade, as HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import time
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from gateway.auth import (
    CLAIMS,
    SUBPROTOCOL,
    Authenticator,
    install_redaction,
    origin_allowed,
    security_middleware,
)
from gateway.config import Config, ConfigError
from gateway.hub import CLOSE_GOING_AWAY, Client, Hub, Variant, frame_of, stamp
from gateway.metrics import Metrics

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


BACKEND = web.AppKey("backend", Backend)
#: Set when the server begins to stop: long polls answer at once instead of holding it up.
STOPPING = web.AppKey("stopping", asyncio.Event)
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
CUTTING = web.AppKey("cutting", set[asyncio.Task[None]])
CLOSE_TIMEOUT = 2.0
CLOSE_POLICY = 1008
CLOSE_TOKEN_EXPIRED = 4001
#: WebSocket pings (which find dead peers) go out with the heartbeat, but never
#: more often than this: a peer gets half the interval to answer.
MIN_PING_INTERVAL = 5.0
REFRESH_COST = 5
#: File descriptors kept back from WebSocket clients (serial ports, SQLite, logs).
FD_RESERVE = 64


class RateLimit:
    """A token bucket: ``rate`` actions a second, bursts of ``burst``."""

    __slots__ = ("burst", "rate", "refused_in_a_row", "stamp", "tokens", "warned_at")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.refused_in_a_row = 0
        self.warned_at = float("-inf")

    def allow(self, cost: int = 1) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        return False


def connection_cap(configured: int | None) -> int:
    """The configured cap, or what the process's open-file limit leaves room for."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = 65536 if soft == resource.RLIM_INFINITY else max(1, soft - FD_RESERVE)
    return min(configured, room) if configured else room


def _kind(stream: str) -> str:
    """``alerts:EMBALSE_02`` -> ``alerts``."""
    return stream.split(":", 1)[0]


def _error(code: str, detail: str) -> dict[str, Any]:
    return {"type": "error", "error": code, "detail": detail}


def _since(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    raise ValueError(f"since: expected a non-negative integer seq, got {raw!r}")


class Connection:
    """One client: its hub Client, its channels, its rate limit, its token's expiry."""

    __slots__ = ("app", "channels", "client", "fixed", "gateway", "limit", "transport", "ws")

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, fixed: str | None) -> None:
        self.app = request.app
        self.gateway = gateway = request.app[BACKEND]
        self.ws = ws
        self.fixed = fixed  # the one stream of /ws/alerts or /ws/sensors; None on /ws
        server = gateway.config.server
        self.limit = RateLimit(server.action_rate, server.action_burst)
        transport = request.transport
        assert transport is not None
        self.transport = transport
        window = ws.compress
        self.client = Client(
            transport,
            protocol=request.protocol,
            drain=request.writer.drain,
            cut_off=self.cut_off,
            limit=server.client_queue,
            window_bits=window if isinstance(window, int) and not isinstance(window, bool) else 0,
            on_late_write=gateway.metrics.delivery_seconds.observe,
            name=f"{fixed or 'ws'}@{request.remote}",
        )
        self.channels: set[str] = set()

    @property
    def variant(self) -> Variant:
        return (self.fixed is None, self.client.window_bits)

    def reply(self, message: dict[str, Any], channel: str | None = None) -> None:
        """A message for this client alone; on /ws it names its channel (or null)."""
        if self.fixed is None:
            message = {**message, "channel": channel}
        self.client.send(frame_of(stamp(message), None, self.client.window_bits))

    def subscribe(self, stream: str, since: int | None) -> None:
        """The opening of ``stream`` (the news missed, or its current state), then live."""
        hub = self.gateway.hub
        missed = hub.streams[stream].since(since, self.variant) if since is not None else None
        if missed is not None and (missed or _kind(stream) == "alerts"):
            opening = missed
        else:
            current = self.current(
                stream, "initial" if _kind(stream) == "alerts" else "sensor_update"
            )
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

    def handle(self, text: str) -> None:
        """Answer one client message."""
        try:
            message = json.loads(text)
        except ValueError as exc:
            return self.reply(_error("invalid_json", f"not JSON: {exc}"))
        if not isinstance(message, dict):
            return self.reply(
                _error("invalid_message", 'expected an object, e.g. {"action": "ping"}')
            )
        action = message.get("action")
        if not isinstance(action, str):
            return self.reply(_error("missing_action", 'expected an "action" string'))
        log.debug("[WebSocket] Message received: %s", action)
        if not self.limit.allow(REFRESH_COST if action == "refresh" else 1):
            return self.refused()
        if action == "ping":
            return self.reply({"type": "pong"})
        channel = self.fixed or message.get("channel")
        known = (
            ("ping", "refresh") if self.fixed else ("ping", "refresh", "subscribe", "unsubscribe")
        )
        if action not in known:
            return self.reply(
                _error("unknown_action", f"unknown action {action[:40]!r}: use {', '.join(known)}")
            )
        if channel not in self.gateway.hub.streams:
            channels = ", ".join(self.gateway.hub.streams)
            return self.reply(
                _error("unknown_channel", f"channel {str(channel)[:40]!r}: use {channels}"),
                str(channel)[:40],
            )
        if action == "refresh":
            return self.reply(
                {"type": "refresh", "data": self.current(channel, "refresh")["data"]}, channel
            )
        if action == "unsubscribe":
            self.unsubscribe(channel)
            return self.reply({"type": "unsubscribed"}, channel)
        try:
            since = _since(message.get("since"))
        except ValueError as exc:
            return self.reply(_error("invalid_since", str(exc)), channel)
        self.reply({"type": "subscribed"}, channel)
        if channel not in self.channels:
            self.subscribe(channel, since)

    def refused(self) -> None:
        """Over the rate limit: warn (once a second); close 1008 if it goes on."""
        if self.limit.refused_in_a_row >= self.limit.burst:
            self.cut_off(CLOSE_POLICY, "too many messages")
            return
        now = time.monotonic()
        if now - self.limit.warned_at >= 1.0:
            self.limit.warned_at = now
            rate = self.limit.rate
            self.reply(_error("rate_limited", f"at most {rate:g} actions a second; slow down"))

    def cut_off(self, code: int, reason: str) -> None:
        if code != CLOSE_GOING_AWAY:
            for stream in self.channels or {self.fixed or "ws"}:
                self.gateway.metrics.clients_dropped.labels(stream).inc()
        self.client.closed = True
        task = asyncio.create_task(
            _cut_off(self.ws, self.transport, code, reason), name="ws.cut-off"
        )
        self.app[CUTTING].add(task)
        task.add_done_callback(self.app[CUTTING].discard)

    def expire_at(self, claims: dict[str, Any] | None) -> asyncio.TimerHandle | None:
        """Close 4001 when the token expires."""
        exp = (claims or {}).get("exp")
        if not isinstance(exp, int | float):
            return None
        loop = asyncio.get_running_loop()
        delay = max(0.0, float(exp) - time.time())
        return loop.call_later(delay, self.cut_off, CLOSE_TOKEN_EXPIRED, "token expired")

    async def run(self) -> None:
        async for message in self.ws:
            if message.type is WSMsgType.TEXT:
                self.handle(message.data)
            elif message.type is WSMsgType.BINARY:
                self.reply(_error("binary_not_supported", "send JSON text frames, not binary"))
            else:
                break

    async def close(self) -> None:
        for stream in list(self.channels):
            self.unsubscribe(stream)
        await self.client.close()


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
        since = _since(request.query.get("since"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    if len(app[SOCKETS]) >= connection_cap(server.max_connections):
        raise web.HTTPServiceUnavailable(text="connection limit reached; try again later")
    ws = web.WebSocketResponse(
        max_msg_size=server.max_message_bytes,
        compress=server.compression,
        protocols=(SUBPROTOCOL,),
        timeout=CLOSE_TIMEOUT,
        heartbeat=max(server.heartbeat_interval, MIN_PING_INTERVAL),
    )
    stream = None
    if fixed is not None:
        stream = backend.channel(fixed, request.query.get("reservoir"))
        if stream is None:
            known = sorted({s.split(":", 1)[-1] for s in backend.hub.streams if ":" in s})
            raise web.HTTPNotFound(
                text=f"reservoir: expected one of {', '.join(known) or 'none yet'}"
            )
    await ws.prepare(request)
    connection = Connection(request, ws, stream)
    if stream is not None:
        connection.subscribe(stream, since)
    expiry = connection.expire_at(request.get(CLAIMS))
    app[SOCKETS].add(ws)
    log.info("[WebSocket] Connected. Total connections: %d", len(app[SOCKETS]))
    try:
        await connection.run()
    finally:
        if expiry is not None:
            expiry.cancel()
        await connection.close()
        app[SOCKETS].discard(ws)
        log.info("[WebSocket] Disconnected. Total connections: %d", len(app[SOCKETS]))
    return ws


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    """Close with ``code``; a peer that does not answer in time is dropped."""
    with contextlib.suppress(Exception):
        await ws.close(code=code, message=reason.encode()[:120])


async def _cut_off(
    ws: web.WebSocketResponse, transport: asyncio.Transport, code: int, reason: str
) -> None:
    """Close with ``code``, then drop the socket: a stalled peer would never drain it."""
    await _close(ws, code, reason)
    transport.abort()


async def close_all(app: web.Application) -> None:
    """On shutdown: every client gets 1001 (going away), all at once."""
    open_sockets: set[web.WebSocketResponse] = app[SOCKETS]
    sockets = list(open_sockets)
    await asyncio.gather(
        *(_close(ws, CLOSE_GOING_AWAY, "server shutdown") for ws in sockets),
        return_exceptions=True,
    )


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
    app[SOCKETS] = set()
    app[CUTTING] = set()
    app[STOPPING] = asyncio.Event()

    async def stopping(app: web.Application) -> None:
        app[STOPPING].set()

    app.on_shutdown.append(stopping)
    app.on_shutdown.append(close_all)
    app.router.add_get("/ws", stream_handler(None))
    app.router.add_get("/ws/alerts", stream_handler("alerts"))
    app.router.add_get("/ws/sensors", stream_handler("sensors"))
    return app
