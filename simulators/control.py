"""The simulator control API: ``PUT /api/simulator/{measurement}`` and a listing.

Bench scripts set what a probe reads (``{"value": 4.2}``) and inject faults
(``{"fault": "timeout"}``, cleared with ``{"fault": null}``). The target is a
measurement (``ph``) or a device name (``ezo-ph``, ``modbus-2``); see
:mod:`simulators.rig`.
"""

from __future__ import annotations

import math
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from simulators.rig import PRIMARY, Rig, UnknownTarget

RIG = web.AppKey("rig", Rig)


class SimulatorCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float | None = None
    fault: Literal["timeout", "crc", "garbage", "unplug"] | None = None
    #: An EZO circuit's probe, aged: {"offset_mv": 12, "acid": 95} (pH), {"sensitivity": 0.9}
    #: (EC, DO), {"offset": 8} (ORP, RTD). Its reading drifts until it is calibrated.
    probe: dict[str, float] | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("probe")
    @classmethod
    def _finite_probe(cls, probe: dict[str, float] | None) -> dict[str, float] | None:
        if probe is not None and not all(math.isfinite(v) for v in probe.values()):
            raise ValueError("every value must be a finite number")
        return probe


def _error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


async def put_simulator(request: web.Request) -> web.Response:
    rig = request.app[RIG]
    target = request.match_info["measurement"]
    if target not in rig.targets():
        return _error(404, "unknown_target", f"{target!r} is not one of {', '.join(rig.targets())}")
    try:
        command = SimulatorCommand.model_validate_json(await request.read())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return _error(422, "invalid_body", problems)
    if not command.model_fields_set:
        return _error(422, "invalid_body", 'expected "value", "fault" and/or "probe"')
    if "value" in command.model_fields_set:
        if command.value is None or target not in PRIMARY:
            return _error(422, "invalid_body", "value: set a number on a measurement")
        rig.set_value(target, command.value)
    try:
        if command.probe is not None:
            rig.set_probe(target, command.probe)
        if "fault" in command.model_fields_set:
            rig.set_fault(target, command.fault)
    except UnknownTarget:  # pragma: no cover - checked above
        return _error(404, "unknown_target", target)
    except ValueError as exc:  # a fault the device cannot have, a probe it has not
        return _error(422, "invalid_body", str(exc))
    body: dict[str, object] = {"target": target, **command.model_dump(exclude_unset=True)}
    return web.json_response(body)


async def get_simulator(request: web.Request) -> web.Response:
    rig = request.app[RIG]
    values = {name: signal.setpoint for name, signal in rig.world.signals.items()}
    return web.json_response({"devices": rig.describe(), "setpoints": values})


def add_routes(app: web.Application, rig: Rig) -> None:
    """Mount the control API on ``app`` (the gateway's own app in simulate mode)."""
    app[RIG] = rig
    app.router.add_get("/api/simulator", get_simulator)
    app.router.add_put("/api/simulator/{measurement}", put_simulator)


def control_app(rig: Rig) -> web.Application:
    app = web.Application()
    add_routes(app, rig)
    return app
