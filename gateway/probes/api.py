"""``GET /api/probes`` and ``POST /api/probes/{measurement}/calibrate``.

A calibration runs the EZO ``Cal`` command through the bus's own line, between
two polls (:meth:`drivers.ezo_sensor.EzoSensor.calibrate`), answers the
circuit's new calibration state, and is recorded with who and when. A probe past
``[measurements.<name>] calibration_due_days`` since its last calibration has an
info "calibration" alert, cleared by the next one.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from drivers import ezo
from drivers.errors import DriverError, EzoUnknownCommand
from drivers.ezo_sensor import EzoSensor
from gateway.alerts.store import StoreWriteError
from gateway.api.auth import Role, actor, require
from gateway.api.rest import json_error
from gateway.probes import configured
from gateway.probes.store import CalibrationRecord, CalibrationStore
from gateway.service import Gateway
from gateway.timestamps import utc_timestamp

log = logging.getLogger(__name__)
DAY = 86400.0
QUERY_TIMEOUT = 5.0  # s for a circuit's Cal,? and Slope,? in the listing


class CalibrateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    point: Literal["mid", "low", "high", "dry", "single", "atm", "zero", "clear"]
    value: float | int | None = None  # the standard's value; None: the point's usual one


class Probes:
    """The probes of one gateway: their drivers, and the calibration records."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.records = CalibrationStore(gateway.store)
        self.last: dict[str, CalibrationRecord] = {}

    async def open(self) -> None:
        await self.records.open()
        self.last = await self.records.last()
        for measurement in configured(self.gateway.config):
            self._schedule(measurement)

    def sensor(self, measurement: str) -> EzoSensor | None:
        for poller in self.gateway.pollers:
            driver = poller.driver
            if isinstance(driver, EzoSensor) and driver.measurement == measurement:
                return driver
        return None

    def due(self, measurement: str) -> float | None:
        """When the probe wants calibrating (wall clock), or None. A probe with no
        calibration on record is due now: nobody knows when it last was."""
        table = self.gateway.config.measurements.get(measurement)
        if table is None or table.calibration_due_days is None:
            return None
        last = self.last.get(measurement)
        return last.at + table.calibration_due_days * DAY if last else 0.0

    def _schedule(self, measurement: str) -> None:
        pipeline = self.gateway.alerts
        pipeline.submit(
            pipeline.engine.calibration_due(measurement, self.due(measurement), pipeline.now())
        )

    async def describe(self, measurement: str) -> dict[str, Any]:
        """One probe, as ``GET /api/probes`` lists it (EZO circuits asked ``Cal,?`` now)."""
        config = self.gateway.config
        bus = next(b for b in config.buses if any(s.measurement == measurement for s in b.sensors))
        sensor = next(s for s in bus.sensors if s.measurement == measurement)
        last = self.last.get(measurement)
        due = self.due(measurement)
        entry: dict[str, Any] = {
            "measurement": measurement,
            "bus": bus.name,
            "protocol": bus.protocol,
            "circuit": None,
            "unit": sensor.unit if bus.protocol != "ezo" else None,
            "firmware": None,
            "calibration": None,
            "last_calibration": _record_json(last) if last else None,
            "calibration_due": utc_timestamp(due) if due is not None else None,
            "calibration_overdue": due is not None and self.gateway.clock() >= due,
        }
        driver = self.sensor(measurement)
        if driver is not None:
            try:
                async with asyncio.timeout(QUERY_TIMEOUT):
                    state = await driver.calibration()
                entry["calibration"] = state.as_dict()
            except (DriverError, TimeoutError) as exc:
                entry["error"] = str(exc) or "no answer"
            entry["circuit"], entry["firmware"] = driver.circuit, driver.firmware
        return entry

    async def calibrate(self, measurement: str, body: CalibrateBody, by: str) -> dict[str, Any]:
        driver = self.sensor(measurement)
        if driver is None:
            raise json_error(
                422, "not_calibratable", f"{measurement} is not read by an EZO circuit"
            )
        if driver.circuit is None:
            await _ask(driver.calibration)  # learn the circuit type from its `i`
        value = None if body.value is None else float(body.value)
        try:
            command = ezo.calibration_command(driver.circuit or "", body.point, value)
        except ValueError as exc:
            raise json_error(422, "invalid_point", str(exc)) from None
        state = await _ask(lambda: driver.calibrate(command))
        slope = state.slope and ",".join(f"{v:g}" for v in state.slope)
        record = CalibrationRecord(
            measurement, body.point, value, command, state.points, slope or None, by,
            self.gateway.clock(),
        )  # fmt: skip
        try:
            await self.records.record(record)
        except StoreWriteError as exc:  # done on the circuit: say so, and that it is unrecorded
            log.error("calibration of %s not recorded: %s", measurement, exc)
        if body.point != "clear":
            self.last[measurement] = record
            self._schedule(measurement)
        return {**_record_json(record), "calibration": state.as_dict()}


async def _ask(call: Callable[[], Any]) -> ezo.Calibration:
    try:
        async with asyncio.timeout(QUERY_TIMEOUT):
            result: ezo.Calibration = await call()
    except EzoUnknownCommand as exc:
        command = str(exc).split(":", 1)[0]
        detail = (
            f"{command}: the circuit refused it (*ER): out of sequence, or a value it does not take"
        )
        raise json_error(409, "refused", detail) from None
    except (DriverError, TimeoutError) as exc:
        raise json_error(503, "no_answer", str(exc) or "the circuit did not answer") from None
    return result


def _record_json(record: CalibrationRecord) -> dict[str, Any]:
    return {**record.as_dict(), "at": utc_timestamp(record.at)}


PROBES = web.AppKey("probes", Probes)


def probes_context(gateway: Gateway) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx entry: once the gateway runs, the calibration records and due dates."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        probes = Probes(gateway)
        await probes.open()
        app[PROBES] = probes
        yield

    return context


async def list_probes(request: web.Request) -> web.Response:
    probes = request.app[PROBES]
    names = configured(probes.gateway.config)
    return web.json_response(list(await asyncio.gather(*map(probes.describe, names))))


async def calibrate(request: web.Request) -> web.Response:
    require(request, Role.TECHNICIAN)
    probes = request.app[PROBES]
    measurement = request.match_info["measurement"]
    if measurement not in configured(probes.gateway.config):
        raise json_error(404, "not_found", f"no probe reads {measurement!r}")
    body = _body(await request.read())
    return web.json_response(await probes.calibrate(measurement, body, actor(request)))


def _body(raw: bytes) -> CalibrateBody:
    """The calibrate body; 422 naming what is wrong."""
    try:
        body = CalibrateBody.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise json_error(422, "invalid_body", problems) from None
    if body.value is not None and not math.isfinite(body.value):
        raise json_error(422, "invalid_body", "value: must be a finite number")
    return body
