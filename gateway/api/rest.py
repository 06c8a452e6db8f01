"""The REST half of the one application a gateway and a relay both serve.

:func:`serving_app` is :func:`gateway.api.websocket.streaming_app` (the WebSocket
streams, tokens, Origins, a clean stop) plus the REST routes every
:class:`~gateway.api.websocket.Backend` answers the same way: the active alerts,
the polling fallback (``ETag``, ``X-Seq``, ``?wait=&since=`` long polls),
dismissal, ``/healthz`` and ``/metrics``. ``?reservoir=`` names the site: on a
relay, one of those it serves (it may be left out while it serves only one); on
a gateway, its own id or nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from aiohttp import web

from gateway.api import params
from gateway.api.auth import Role, actor, require
from gateway.api.websocket import BACKEND, STOPPING, Backend, streaming_app
from gateway.config import Config

#: The longest a long poll is held, whatever ``?wait=`` asks.
LONG_POLL_MAX = 60.0


def serving_app(backend: Backend, config: Config) -> web.Application:
    """The streams and the shared REST routes; the caller adds what is its own."""
    app = streaming_app(backend, config)
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_get("/api/alerts/summary", alert_summary)
    app.router.add_get("/api/sensors/latest", sensors_latest)
    app.router.add_post("/alerts/dismiss", dismiss)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


def json_error(status: int, code: str, detail: str) -> web.HTTPException:
    """An HTTP error whose body says, in JSON, what was wrong."""
    error = web.HTTPException(
        text=json.dumps({"error": code, "detail": detail}), content_type="application/json"
    )
    error.set_status(status)
    return error


async def dismissal(request: web.Request) -> str:
    """The alert id of a ``POST /alerts/dismiss`` body; 422 saying what is wrong otherwise."""
    try:
        return params.dismissal(await request.read())
    except params.BadInput as exc:
        raise unprocessable(exc) from None


def unprocessable(exc: params.BadInput) -> web.HTTPException:
    """422 with our error's code and detail."""
    return json_error(422, exc.code, exc.detail)


def dismissed(alert_id: str) -> web.Response:
    return web.json_response({"alert_id": alert_id, "dismissed": True})


def not_active(alert_id: str) -> web.HTTPException:
    return json_error(404, "not_found", f"no active alert {alert_id!r}")


def _reservoir(request: web.Request) -> str | None:
    return request.query.get("reservoir") or None


def stream_of(request: web.Request, kind: str) -> str:
    """The hub stream of ``kind`` for the site the request names; 404 naming the known ones."""
    backend = request.app[BACKEND]
    stream = backend.channel(kind, _reservoir(request))
    if stream is None:
        known = ", ".join(backend.reservoirs()) or "none yet"
        raise json_error(404, "not_found", f"reservoir: expected one of {known}")
    return stream


async def list_alerts(request: web.Request) -> web.Response:
    """Active alerts, newest first: of every site a relay serves, or of ``?reservoir=``."""
    backend = request.app[BACKEND]
    listed = backend.active_alerts()
    reservoir = _reservoir(request)
    if reservoir is not None:
        stream_of(request, "alerts")  # 404 for a site not served here
        listed = [a for a in listed if a.get("reservoir_id", reservoir) == reservoir]
    return web.json_response(listed)


async def alert_summary(request: web.Request) -> web.Response:
    """The counts, for clients that cannot hold a WebSocket (ETag; ``?wait=&since=``)."""
    return await _pollable(request, stream_of(request, "alerts"))


async def sensors_latest(request: web.Request) -> web.Response:
    """The data of the last sensor_update (ETag; ``?wait=&since=``)."""
    return await _pollable(request, stream_of(request, "sensors"))


async def _pollable(request: web.Request, stream: str) -> web.Response:
    """A polling fallback with the WebSocket's seq: ``X-Seq``, an ETag, and long polls.

    ``?wait=25&since=<seq>`` answers as soon as the stream has news after ``seq``,
    or after ``wait`` seconds (at most 60) with what there is then.
    """
    backend = request.app[BACKEND]
    news = backend.hub.streams[stream]
    try:
        poll = params.long_poll(request.query, news.seq, LONG_POLL_MAX)
    except params.BadInput as exc:
        raise json_error(400, exc.code, exc.detail) from None
    if poll is not None:
        wait, since = poll
        waiters = [news.news_after(since), request.app[STOPPING].wait()]
        tasks = [asyncio.ensure_future(w) for w in waiters]
        held = backend.metrics.long_polls.labels(stream)
        held.inc()
        try:
            await asyncio.wait(tasks, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            held.dec()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    text = json.dumps(backend.latest(stream))
    etag = '"' + hashlib.blake2b(text.encode(), digest_size=8).hexdigest() + '"'
    headers = {"ETag": etag, "X-Seq": str(news.seq), "Cache-Control": "no-cache"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(text=text, content_type="application/json", headers=headers)


async def dismiss(request: web.Request) -> web.Response:
    """Dismiss an active alert (an operator's token); a relay answers once the owning
    gateway has confirmed."""
    require(request, Role.OPERATOR)
    alert_id = await dismissal(request)
    outcome = await request.app[BACKEND].dismiss(alert_id, actor(request))
    if outcome is False:
        raise not_active(alert_id)
    if outcome is None:
        raise json_error(504, "gateway_timeout", "the owning gateway did not confirm in time")
    return dismissed(alert_id)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(request.app[BACKEND].health())


async def metrics(request: web.Request) -> web.Response:
    body = request.app[BACKEND].metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")
