"""The WebSocket endpoints ``/ws/alerts`` and ``/ws/sensors``: the seed's protocol.

On connect a client gets the stream's opening message (``initial`` counts, or a
``sensor_update``), or, with ``?since=<seq>``, the news it missed. It may send
``{"action": "ping"}`` and ``{"action": "refresh"}``; anything else is answered
with an ``error`` message and the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from gateway.hub import CLOSE_GOING_AWAY, Client
from gateway.service import Gateway

log = logging.getLogger("gateway.websocket")

GATEWAY = web.AppKey("gateway", Gateway)
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
CUTTING = web.AppKey("cutting", set[asyncio.Task[None]])
SUBPROTOCOL = "gateway.v1"
CLOSE_TIMEOUT = 2.0
#: WebSocket pings (which find dead peers) go out with the heartbeat, but never
#: more often than this: a peer gets half the interval to answer.
MIN_PING_INTERVAL = 5.0


def _opening(gateway: Gateway, stream: str, since: int | None) -> list[bytes]:
    """What a client is sent first: the news it missed, or the current state."""
    hub = gateway.hub
    missed = hub.streams[stream].since(since) if since is not None else None
    # A sensors client that missed nothing still gets the current readings.
    if missed is not None and (missed or stream == "alerts"):
        return missed
    return [hub.frame(stream, _current(gateway, stream), seq=True)]


def _current(gateway: Gateway, stream: str) -> dict[str, Any]:
    if stream == "alerts":
        return {"type": "initial", "data": gateway.summary}
    return {"type": "sensor_update", "data": gateway.readings.snapshot()}


def _reply(gateway: Gateway, stream: str, text: str) -> dict[str, Any]:
    """The answer to one client message."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        return _error("invalid_json", f"not JSON: {exc}")
    if not isinstance(message, dict):
        return _error("invalid_message", 'expected a JSON object such as {"action": "ping"}')
    action = message.get("action")
    if not isinstance(action, str):
        return _error("missing_action", 'expected an "action" string: "ping" or "refresh"')
    log.debug("[WebSocket] Message received: %s", action)
    if action == "ping":
        return {"type": "pong"}
    if action == "refresh":
        current = _current(gateway, stream)
        return {"type": "refresh", "data": current["data"]}
    return _error("unknown_action", f"unknown action {action[:40]!r}: use ping or refresh")


def _error(code: str, detail: str) -> dict[str, Any]:
    return {"type": "error", "error": code, "detail": detail}


def _since(request: web.Request) -> int | None:
    raw = request.query.get("since")
    if raw is None:
        return None
    if not raw.isdigit():
        raise web.HTTPBadRequest(text=f"since: expected a non-negative integer seq, got {raw!r}")
    return int(raw)


def stream_handler(stream: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve_stream(request, stream)

    return handler


async def serve_stream(request: web.Request, stream: str) -> web.StreamResponse:
    app = request.app
    gateway = app[GATEWAY]
    server = gateway.config.server
    since = _since(request)
    if len(app[SOCKETS]) >= (server.max_connections or 0):
        raise web.HTTPServiceUnavailable(text="connection limit reached; try again later")
    ws = web.WebSocketResponse(
        max_msg_size=server.max_message_bytes,
        compress=server.compression,
        protocols=(SUBPROTOCOL,),
        timeout=CLOSE_TIMEOUT,
        heartbeat=max(server.heartbeat_interval, MIN_PING_INTERVAL),
    )
    await ws.prepare(request)
    transport = request.transport
    assert transport is not None
    protocol = request.protocol

    def cut_off(code: int, reason: str) -> None:
        gateway.metrics.clients_dropped.labels(stream).inc()
        task = asyncio.create_task(
            _cut_off(ws, transport, code, reason), name=f"ws.{stream}.cut-off"
        )
        app[CUTTING].add(task)
        task.add_done_callback(app[CUTTING].discard)

    client = Client(
        transport,
        paused=lambda: protocol.writing_paused,
        drain=request.writer.drain,
        cut_off=cut_off,
        limit=server.client_queue,
        name=f"{stream}@{request.remote}",
    )
    gateway.hub.attach(stream, client, _opening(gateway, stream, since))
    app[SOCKETS].add(ws)
    gateway.metrics.connections.labels(stream).inc()
    log.info("[WebSocket] Connected. Total connections: %d", len(app[SOCKETS]))
    try:
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                reply = _reply(gateway, stream, message.data)
            elif message.type is WSMsgType.BINARY:
                reply = _error("binary_not_supported", "send JSON text frames, not binary")
            else:
                break
            client.send(gateway.hub.frame(stream, reply))
    finally:
        gateway.hub.detach(stream, client)
        await client.close()
        app[SOCKETS].discard(ws)
        gateway.metrics.connections.labels(stream).dec()
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
