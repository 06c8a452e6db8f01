"""What the gateway's and the relay's REST handlers share."""

from __future__ import annotations

import json

from aiohttp import web

from gateway import params


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
