"""The shelving endpoints of a gateway (ISA-18.2: silenced by someone, for a reason,
for a bounded time).

- ``POST /api/alerts/shelve`` ``{"measurement", "minutes", "reason"}`` (an operator):
  the measurement raises nothing until the shelf ends, and its alert, if it has
  one, leaves the counts and ``/api/alerts``; 200 with the shelf;
- ``GET /api/alerts/shelved``: the shelves in force, each with its hidden alert;
- ``DELETE /api/alerts/shelve/{measurement}`` (an operator): ends a shelf now;
  404 if there is none.

A relay does not serve these: shelving is done at the gateway that owns the
probe (the relay passes its ``shelved``/``unshelved`` news on).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.alerts.pipeline import AlertPipeline
from gateway.alerts.shelves import Shelf, shelf_json
from gateway.api import params
from gateway.api.auth import Role, actor, require
from gateway.api.params import BadInput, shown
from gateway.api.rest import json_error, unprocessable

MAX_REASON = 200  # characters


@dataclass(frozen=True)
class ShelveRequest:
    measurement: str
    minutes: float
    reason: str


def shelve_request(body: bytes, measurements: Collection[str], max_minutes: float) -> ShelveRequest:
    """A ``POST /api/alerts/shelve`` body; BadInput naming the key at fault."""
    try:
        message = params.load_json(body)
    except BadInput as exc:
        raise BadInput("invalid_body", exc.detail) from None
    if not isinstance(message, dict):
        raise BadInput(
            "invalid_body", 'expected {"measurement": "ph", "minutes": 30, "reason": "..."}'
        )
    if unknown := sorted(set(message) - {"measurement", "minutes", "reason"}):
        raise BadInput("invalid_body", f"unknown key {shown(unknown[0])}")
    measurement = message.get("measurement")
    if not isinstance(measurement, str) or measurement not in measurements:
        known = ", ".join(sorted(measurements)) or "none"
        raise BadInput("invalid_body", f"measurement: expected one of {known}")
    minutes = message.get("minutes")
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int | float)
        or not math.isfinite(minutes)
        or not 0 < minutes <= max_minutes
    ):
        raise BadInput(
            "invalid_body",
            f"minutes: expected a number more than 0 and at most {max_minutes:g} "
            "(alerts.max_shelve_minutes)",
        )
    reason = message.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise BadInput("invalid_body", f"reason: expected a string of 1 to {MAX_REASON} characters")
    try:
        reason.encode()
    except UnicodeEncodeError:
        raise BadInput("invalid_body", "reason: not valid Unicode (a lone surrogate)") from None
    return ShelveRequest(measurement, float(minutes), reason.strip())


class Shelving:
    """The handlers, over a gateway's alert pipeline."""

    def __init__(self, alerts: AlertPipeline, max_minutes: float) -> None:
        self.alerts = alerts
        self.max_minutes = max_minutes

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/alerts/shelve", self.shelve)
        app.router.add_get("/api/alerts/shelved", self.shelved)
        app.router.add_delete("/api/alerts/shelve/{measurement}", self.unshelve)

    async def shelve(self, request: web.Request) -> web.Response:
        require(request, Role.OPERATOR)
        try:
            asked = shelve_request(await request.read(), self.alerts.rules, self.max_minutes)
        except BadInput as exc:
            raise unprocessable(exc) from None
        shelf = await self.alerts.shelve(
            asked.measurement, asked.minutes * 60.0, actor(request), asked.reason
        )
        return web.json_response(self._json(shelf))

    async def shelved(self, request: web.Request) -> web.Response:
        return web.json_response(
            [dict(self._json(shelf), alert=alert) for shelf, alert in self.alerts.shelved()]
        )

    async def unshelve(self, request: web.Request) -> web.Response:
        require(request, Role.OPERATOR)
        measurement = request.match_info["measurement"]
        shelf = await self.alerts.unshelve(measurement, actor(request))
        if shelf is None:
            raise json_error(404, "not_found", f"no shelf on {shown(measurement)}")
        return web.json_response(dict(self._json(shelf), unshelved=True))

    @staticmethod
    def _json(shelf: Shelf) -> dict[str, Any]:
        return shelf_json(shelf, time.time())
