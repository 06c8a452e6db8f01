"""What the gateway's and the relay's REST handlers share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web


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
        body: Any = json.loads(await request.read())
    except ValueError as exc:
        raise json_error(422, "invalid_body", f"not JSON: {exc}") from None
    if not isinstance(body, Mapping):
        raise json_error(422, "invalid_body", 'expected {"alert_id": "..."}')
    alert_id = body.get("alert_id")
    if not isinstance(alert_id, str) or not alert_id:
        raise json_error(
            422, "invalid_body", 'alert_id: expected a non-empty string, as in {"alert_id": "..."}'
        )
    if unknown := sorted(set(body) - {"alert_id"}):
        raise json_error(
            422, "invalid_body", f"unknown key {unknown[0]!r}: only alert_id is expected"
        )
    return alert_id


def dismissed(alert_id: str) -> web.Response:
    return web.json_response({"alert_id": alert_id, "dismissed": True})


def not_active(alert_id: str) -> web.HTTPException:
    return json_error(404, "not_found", f"no active alert {alert_id!r}")
