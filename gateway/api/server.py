"""The aiohttp application: REST routes, the WebSocket streams, and the wiring.

``build_app`` assembles everything from a :class:`Config` around a
:class:`~gateway.startup.GatewayRun`; its start-up starts that (unless
``sensor-gateway run`` already has), which opens every serial port (one that
cannot be opened leaves its bus ``down`` and retrying, or, with
``require_ports``, fails the start) and starts the pollers; its shutdown closes
every WebSocket with 1001 before stopping them.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from drivers.model import MEASUREMENTS
from gateway.alerts import history
from gateway.api import params
from gateway.api.pages import add_pages
from gateway.api.rest import json_error, serving_app, unprocessable
from gateway.api.shelving import Shelving
from gateway.config import Config
from gateway.notify.api import notify_status
from gateway.probes import layout
from gateway.probes.api import calibrate, list_probes, probes_context
from gateway.service import Gateway
from gateway.startup import GatewayRun
from gateway.timestamps import utc_timestamp

GATEWAY = web.AppKey("gateway", Gateway)
#: True when the app runs the simulated devices (their control API is then mounted,
#: under simulators.control.RIG).
SIMULATED = web.AppKey("simulated", bool)
HISTORY_LIMIT = 10000
VERSION = importlib.metadata.version("sensor-gateway")

STATIC_DIR = Path(__file__).parent.parent / "static"


def build_app(
    config: Config,
    *,
    simulate: bool = False,
    sim_time_scale: float = 1.0,
    require_ports: bool = False,
) -> web.Application:
    """The gateway's application; its start-up starts the gateway (a wrong ``sim://``
    port raises ConfigError here, before anything starts)."""
    run = GatewayRun(
        config, simulate=simulate, sim_time_scale=sim_time_scale, require_ports=require_ports
    )
    return gateway_app(run)


def gateway_app(run: GatewayRun) -> web.Application:
    """The application around ``run``: it starts ``run`` on start-up unless that has been
    done already (``sensor-gateway run`` starts it before loading this module), and stops
    it on cleanup, after every WebSocket has been closed with 1001."""
    gateway, rig, config = run.gateway, run.rig, run.config
    app = serving_app(gateway, config)  # the streams and the REST shared with a relay
    app[GATEWAY] = gateway
    app[SIMULATED] = rig is not None
    if rig is not None:
        from simulators.control import add_routes as add_simulator_routes

        add_simulator_routes(app, rig)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await run.start()
        try:
            yield
        finally:
            await run.stop()

    app.cleanup_ctx.append(lifecycle)
    app.cleanup_ctx.append(probes_context(gateway))  # after the gateway has started
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    add_pages(app, home="dashboard", static=False)  # /overview and /site
    app.router.add_get("/api/info", info)
    app.router.add_get("/api/alerts/history", alert_history)
    app.router.add_get("/api/sensors/history", sensor_history)
    app.router.add_get("/api/notify", notify_status(gateway.notifier))
    app.router.add_get("/api/probes", list_probes)
    app.router.add_post("/api/probes/{measurement}/calibrate", calibrate)
    Shelving(gateway.alerts, config.alerts.max_shelve_minutes).add_routes(app)
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
            "simulated": request.app[SIMULATED],
            "version": VERSION,
        }
    )


def _range(request: web.Request, default_age: float) -> tuple[float, float, int]:
    """``?since=&until=`` (ISO 8601 or epoch seconds) and ``?limit=`` of a history query."""
    try:
        return params.time_range(request.query, time.time(), default_age, HISTORY_LIMIT)
    except params.BadInput as exc:
        raise unprocessable(exc) from None


def _format(request: web.Request) -> str:
    """``json`` or ``csv`` (``?format=``, or ``Accept: text/csv``)."""
    try:
        return params.output_format(request.query, request.headers.get("Accept", ""))
    except params.BadInput as exc:
        raise unprocessable(exc) from None


def _csv(request: web.Request, name: str, columns: Sequence[str], rows: list[Any]) -> web.Response:
    reservoir = request.app[GATEWAY].config.reservoir_id
    return web.Response(
        text=history.to_csv(columns, rows),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{reservoir}-{name}.csv"'},
    )


async def alert_history(request: web.Request) -> web.Response:
    """Alert events (raised, escalated, deescalated, dismissed, cleared) and shelf events
    (shelved, unshelved), each with ``by``, with ``since < at <= until``, oldest first;
    ``?measurement=&severity=&event=`` filter them."""
    output = _format(request)
    since, until, limit = _range(request, default_age=86400.0)
    try:
        filters = params.event_filters(request.query)
    except params.BadInput as exc:
        raise unprocessable(exc) from None
    store = request.app[GATEWAY].store
    events = await store.alert_events(since, until, filters, limit)
    if "severity" not in filters and filters.get("event") in (None, "shelved", "unshelved"):
        shelf_events = [
            event
            for event in await store.shelf_history(since, limit)
            if event["at"] <= until
            and filters.get("measurement") in (None, event["measurement"])
            and filters.get("event") in (None, event["event"])
        ]
        events = sorted(events + shelf_events, key=lambda e: float(e["at"]))[:limit]
    for event in events:
        event["at"] = utc_timestamp(event["at"])
    if output == "csv":
        rows = [[e[c] for c in history.EVENT_COLUMNS] for e in events]
        return _csv(request, "alerts", history.EVENT_COLUMNS, rows)
    return web.json_response(events)


def _measurement(request: web.Request) -> str:
    """``?measurement=``: one the gateway knows (the seed's four, or one configured)."""
    config = request.app[GATEWAY].config
    known = [*MEASUREMENTS]
    known += [s.measurement for b in config.buses for s in b.sensors if s.measurement not in known]
    measurement = request.query.get("measurement", "")
    if measurement not in known:
        detail = f"measurement: expected one of {', '.join(known)}, got {params.shown(measurement)}"
        raise json_error(422, "invalid_query", detail)
    return measurement


async def sensor_history(request: web.Request) -> web.Response:
    """Stored readings of one measurement with ``since < at <= until`` (default: the last
    hour): raw (at most HISTORY_LIMIT, or ``?limit=``), or per ``?bucket=`` seconds."""
    measurement, output = _measurement(request), _format(request)
    since, until, limit = _range(request, default_age=3600.0)
    try:
        bucket = params.bucket(request.query.get("bucket"))
    except params.BadInput as exc:
        raise unprocessable(exc) from None
    if bucket is not None:
        return await _buckets(request, output, measurement, (since, until), bucket)
    store = request.app[GATEWAY].store
    if "limit" not in request.query:
        limit = HISTORY_LIMIT
        count = await store.count_readings(measurement, since, until)
        if count > HISTORY_LIMIT:
            detail = (
                f"bucket: {count} readings in this range, more than {HISTORY_LIMIT}: "
                "ask for ?bucket=SECONDS (min, avg, max per bucket) or a shorter range"
            )
            raise json_error(422, "too_many_readings", detail)
    rows = [
        (utc_timestamp(at), value, quality)
        for at, value, quality in await store.readings_between(measurement, since, until, limit)
    ]
    if output == "csv":
        return _csv(request, f"{measurement}-readings", history.READING_COLUMNS, rows)
    return web.json_response([dict(zip(history.READING_COLUMNS, r, strict=True)) for r in rows])


async def _buckets(
    request: web.Request, output: str, measurement: str, span: tuple[float, float], bucket: int
) -> web.Response:
    since, until = span
    count = (min(until, time.time()) - since) / bucket
    if count > HISTORY_LIMIT:
        detail = (
            f"bucket: {count:.0f} buckets in this range, at most {HISTORY_LIMIT}: ask for larger"
        )
        raise json_error(422, "invalid_query", detail)
    points = await request.app[GATEWAY].store.buckets(measurement, since, until, bucket)
    rows = [(utc_timestamp(t), low, mean, high, n) for t, low, mean, high, n in points]
    if output == "csv":
        return _csv(request, f"{measurement}-{bucket}s", history.POINT_COLUMNS, rows)
    return web.json_response(
        {
            "measurement": measurement,
            "bucket": bucket,
            "points": [dict(zip(history.POINT_COLUMNS, r, strict=True)) for r in rows],
        }
    )
