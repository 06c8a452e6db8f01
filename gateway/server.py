"""The aiohttp application: REST routes, the WebSocket streams, and the wiring.

``build_app`` assembles everything from a :class:`Config`; its start-up opens
every serial port (so a missing one fails the start) and starts the pollers;
its shutdown closes every WebSocket with 1001 before stopping them.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from drivers.sensors import MEASUREMENTS
from gateway import params
from gateway.auth import CLAIMS, claims_subject
from gateway.config import Config, ConfigError
from gateway.hub import utc_timestamp
from gateway.notify.api import notify_status
from gateway.probes import layout
from gateway.probes.api import calibrate, list_probes, probes_context
from gateway.rest import dismissal, dismissed, json_error, not_active, unprocessable
from gateway.service import Gateway
from gateway.websocket import STOPPING, streaming_app
from simulators.control import add_routes as add_simulator_routes
from simulators.rig import Rig

RIG = web.AppKey("rig", Rig)
GATEWAY = web.AppKey("gateway", Gateway)
SIM_SCHEME = "sim://"
HISTORY_LIMIT = 10000
VERSION = importlib.metadata.version("sensor-gateway")
LONG_POLL_MAX = 60.0

STATIC_DIR = Path(__file__).parent / "static"


def resolve_ports(config: Config, rig: Rig | None) -> dict[str, str]:
    """Map ``sim://<device>`` ports to the simulator's devices; raise ConfigError if wrong."""
    ports: dict[str, str] = {}
    problems: list[str] = []
    for index, bus in enumerate(config.buses):
        if not bus.port.startswith(SIM_SCHEME):
            continue
        name = bus.port.removeprefix(SIM_SCHEME)
        where = f"buses[{index}].port"
        if rig is None:
            problems.append(f"{where}: {bus.port} is a simulated device: run with --simulate")
        elif name not in rig.devices:
            known = ", ".join(SIM_SCHEME + d for d in rig.devices)
            problems.append(f"{where}: {bus.port} is not a simulated device (one of {known})")
        else:
            ports[bus.name] = rig.devices[name].port.address
    if problems:
        raise ConfigError(problems)
    return ports


def build_app(
    config: Config,
    *,
    simulate: bool = False,
    sim_time_scale: float = 1.0,
) -> web.Application:
    rig: Rig | None = None
    if simulate:
        rig = Rig(config.data_dir.absolute() / "serial" / "by-id", time_scale=sim_time_scale)
    gateway = Gateway(config, ports=resolve_ports(config, rig))  # a wrong port fails here
    app = streaming_app(gateway, config)
    app[GATEWAY] = gateway
    if rig is not None:
        app[RIG] = rig
        add_simulator_routes(app, rig)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        if rig is not None:
            await rig.start()
        try:
            await gateway.restore()  # alerts and dismissals back before any client
            await gateway.open_ports()
            await gateway.start()
            yield
        finally:
            await gateway.stop()
            if rig is not None:
                await rig.stop()

    app.cleanup_ctx.append(lifecycle)
    app.cleanup_ctx.append(probes_context(gateway))  # after the gateway has started
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.router.add_get("/api/info", info)
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_get("/api/alerts/summary", alert_summary)
    app.router.add_get("/api/alerts/history", alert_history)
    app.router.add_get("/api/sensors/history", sensor_history)
    app.router.add_get("/api/sensors/latest", sensors_latest)
    app.router.add_post("/alerts/dismiss", dismiss)
    app.router.add_get("/api/notify", notify_status(gateway.notifier))
    app.router.add_get("/api/probes", list_probes)
    app.router.add_post("/api/probes/{measurement}/calibrate", calibrate)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def index(request: web.Request) -> web.FileResponse:
    """The dashboard: a static page that talks to the API like any other client."""
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def info(request: web.Request) -> web.Response:
    """What a dashboard needs to lay itself out: the site, every configured measurement
    (labels, units, decimals, EZO circuits), bounds."""
    config = request.app[GATEWAY].config
    return web.json_response(
        {
            "reservoir_id": config.reservoir_id,
            **layout(config),
            "thresholds": {
                m: t.model_dump(exclude_none=True) for m, t in config.thresholds.items()
            },
            "sensor_interval": config.server.sensor_interval,
            "simulated": RIG in request.app,
            "version": VERSION,
        }
    )


async def list_alerts(request: web.Request) -> web.Response:
    return web.json_response(request.app[GATEWAY].active_alerts())


def _range(request: web.Request, default_age: float) -> tuple[float, float, int]:
    """``?since=&until=`` (ISO 8601 or epoch seconds) and ``?limit=`` of a history query."""
    try:
        return params.time_range(request.query, time.time(), default_age, HISTORY_LIMIT)
    except params.BadInput as exc:
        raise unprocessable(exc) from None


async def alert_history(request: web.Request) -> web.Response:
    """Alert events (raised, escalated, deescalated, dismissed, cleared) after ``since``."""
    since, until, limit = _range(request, default_age=86400.0)
    events = await request.app[GATEWAY].store.history(since, limit)
    events = [event for event in events if event["at"] <= until]
    for event in events:
        event["at"] = utc_timestamp(event["at"])
    return web.json_response(events)


async def sensor_history(request: web.Request) -> web.Response:
    """Stored readings of one measurement after ``since`` (default: the last hour)."""
    measurement = request.query.get("measurement", "")
    if measurement not in MEASUREMENTS:
        known = ", ".join(MEASUREMENTS)
        detail = f"measurement: expected one of {known}, got {params.shown(measurement)}"
        raise json_error(422, "invalid_query", detail)
    since, until, limit = _range(request, default_age=3600.0)
    rows = await request.app[GATEWAY].store.readings(measurement, since, limit)
    return web.json_response(
        [
            {"timestamp": utc_timestamp(at), "value": value, "quality": q}
            for at, value, q in rows
            if at <= until
        ]
    )


async def alert_summary(request: web.Request) -> web.Response:
    """The counts, for clients that cannot hold a WebSocket (ETag; ``?wait=&since=``)."""
    return await _pollable(request, "alerts", lambda: request.app[GATEWAY].summary)


async def sensors_latest(request: web.Request) -> web.Response:
    """The data of the last sensor_update (ETag; ``?wait=&since=``)."""
    return await _pollable(request, "sensors", request.app[GATEWAY].latest_sensor_data)


async def _pollable(request: web.Request, stream: str, body: Callable[[], object]) -> web.Response:
    """A polling fallback with the WebSocket's seq: ``X-Seq``, an ETag, and long polls.

    ``?wait=25&since=<seq>`` answers as soon as the stream has news after ``seq``,
    or after ``wait`` seconds (at most 60) with what there is then.
    """
    news = request.app[GATEWAY].hub.streams[stream]
    try:
        poll = params.long_poll(request.query, news.seq, LONG_POLL_MAX)
    except params.BadInput as exc:
        raise json_error(400, exc.code, exc.detail) from None
    if poll is not None:
        wait, since = poll
        stopping = request.app[STOPPING]
        waiters = [news.news_after(since), stopping.wait()]
        tasks = [asyncio.ensure_future(w) for w in waiters]
        try:
            await asyncio.wait(tasks, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    text = json.dumps(body())
    etag = '"' + hashlib.blake2b(text.encode(), digest_size=8).hexdigest() + '"'
    headers = {"ETag": etag, "X-Seq": str(news.seq), "Cache-Control": "no-cache"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(text=text, content_type="application/json", headers=headers)


async def dismiss(request: web.Request) -> web.Response:
    alert_id = await dismissal(request)
    if not await request.app[GATEWAY].dismiss(alert_id, claims_subject(request.get(CLAIMS))):
        raise not_active(alert_id)
    return dismissed(alert_id)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(request.app[GATEWAY].health())


async def metrics(request: web.Request) -> web.Response:
    body = request.app[GATEWAY].metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")
