"""The WebSocket endpoints: ``/ws/alerts``, ``/ws/sensors`` and ``/ws`` (channels).

On connect a client gets the stream's opening message (``initial`` counts, or a
``sensor_update``), or, with ``?since=<seq>``, the news it missed. It may send
``ping`` and ``refresh``; on ``/ws`` also ``subscribe`` and ``unsubscribe`` to
channels, and every message there carries its ``channel``. Anything else is
answered with an ``error`` message and the connection stays open. Refusals
(token, Origin, capacity, a bad ``since``) happen before the upgrade, as HTTP.

This module accepts a client (the checks, aiohttp's handshake), hands the socket to a
:class:`gateway.api.connection.Connection`, and keeps what all clients share: the
heartbeat sweep and the close on shutdown. What a client's frame means is decided by
:class:`gateway.api.session.Session` (no I/O).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, Protocol

from aiohttp import web

from gateway import supervise
from gateway.api import params, takeover
from gateway.api.auth import (
    CLAIMS,
    SUBPROTOCOL,
    Authenticator,
    install_redaction,
    origin_allowed,
    security_middleware,
)
from gateway.api.connection import CLOSE_TIMEOUT, Connection
from gateway.api.hub import CLOSE_GOING_AWAY, Hub
from gateway.api.metrics import Metrics
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


CONNECTIONS = web.AppKey("connections", set[Connection])


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
    connection = Connection(request, stream, backend, app[CONNECTIONS])  # the socket's protocol
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
        # Restarted, its traceback logged, should a round ever fail.
        task = supervise.start("ws.heartbeat", partial(heartbeat, app), logger=log)
        yield
        await supervise.cancel([task])

    app.on_shutdown.append(stopping)
    app.on_shutdown.append(close_all)
    app.cleanup_ctx.append(pinging)
    app.router.add_get("/ws", stream_handler(None))
    app.router.add_get("/ws/alerts", stream_handler("alerts"))
    app.router.add_get("/ws/sensors", stream_handler("sensors"))
    return app
