"""The aiohttp application: REST routes, the WebSocket streams, and the wiring.

``build_app`` assembles everything from a :class:`Config`; its start-up opens
every serial port (one that cannot be opened leaves its bus ``down`` and
retrying, or, with ``require_ports``, fails the start) and starts the pollers;
its shutdown closes every WebSocket with 1001 before stopping them.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from drivers.sensors import MEASUREMENTS
from gateway import params
from gateway.config import Config, ConfigError
from gateway.hub import utc_timestamp
from gateway.notify.api import notify_status
from gateway.pages import add_pages
from gateway.probes import layout
from gateway.probes.api import calibrate, list_probes, probes_context
from gateway.rest import json_error, serving_app, unprocessable
from gateway.service import Gateway
from gateway.shelving import Shelving

if TYPE_CHECKING:  # the simulators are imported only when simulating
    from simulators.rig import Rig

GATEWAY = web.AppKey("gateway", Gateway)
#: True when the app runs the simulated devices (their control API is then mounted,
#: under simulators.control.RIG).
SIMULATED = web.AppKey("simulated", bool)
SIM_SCHEME = "sim://"
HISTORY_LIMIT = 10000
VERSION = importlib.metadata.version("sensor-gateway")

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
    require_ports: bool = False,
) -> web.Application:
    rig: Rig | None = None
    if simulate:
        from simulators.rig import Rig

        rig = Rig(config.data_dir.absolute() / "serial" / "by-id", time_scale=sim_time_scale)
    gateway = Gateway(config, ports=resolve_ports(config, rig))  # a wrong port fails here
    app = serving_app(gateway, config)  # the streams and the REST shared with a relay
    app[GATEWAY] = gateway
    app[SIMULATED] = rig is not None
    if rig is not None:
        from simulators.control import add_routes as add_simulator_routes

        add_simulator_routes(app, rig)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        if rig is not None:
            await rig.start()
        try:
            await gateway.restore()  # alerts and dismissals back before any client
            await gateway.open_ports(require=require_ports)
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


async def alert_history(request: web.Request) -> web.Response:
    """Alert events (raised, escalated, deescalated, dismissed, cleared) and shelf events
    (shelved, unshelved) after ``since``, oldest first."""
    since, until, limit = _range(request, default_age=86400.0)
    store = request.app[GATEWAY].store
    events = await store.history(since, limit) + await store.shelf_history(since, limit)
    events.sort(key=lambda event: float(event["at"]))  # stable: each source is in order
    events = [event for event in events if event["at"] <= until][:limit]
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
