"""Roles in tokens: a viewer reads, an operator dismisses and shelves; ``by`` says who."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import jwt
import pytest

from simulators.control import RIG
from tests.gateway.conftest import Client, gateway_of
from tests.gateway.test_security import SECRET, bearer, secure, token
from tests.gateway.test_shelving import counted, next_news
from tests.helpers import until

__all__ = ["secure"]  # the fixture, shared with test_security
FORBIDDEN = {"error": "forbidden", "detail": "needs operator"}


async def raise_ph_alert(client: Client, headers: dict[str, str]) -> str:
    gateway = gateway_of(client)
    client.app[RIG].set_value("ph", 8.7)
    await until(lambda: gateway.summary["total"] == 1)
    [alert] = await (await client.get("/api/alerts", headers=headers)).json()
    return str(alert["id"])


@pytest.mark.parametrize("claims", [{}, {"role": "viewer"}, {"role": "admin"}, {"role": 3}])
async def test_a_viewer_may_read_but_not_dismiss_or_shelve(
    secure: Client, claims: dict[str, Any]
) -> None:
    """No role, the viewer role, or a role this gateway does not know: a viewer."""
    viewer = bearer(token(**claims))
    alert_id = await raise_ph_alert(secure, viewer)
    response = await secure.post("/alerts/dismiss", json={"alert_id": alert_id}, headers=viewer)
    assert (response.status, await response.json()) == (403, FORBIDDEN)
    body = {"measurement": "ph", "minutes": 5, "reason": "cleaning"}
    response = await secure.post("/api/alerts/shelve", json=body, headers=viewer)
    assert (response.status, await response.json()) == (403, FORBIDDEN)
    response = await secure.delete("/api/alerts/shelve/ph", headers=viewer)
    assert (response.status, await response.json()) == (403, FORBIDDEN)
    assert gateway_of(secure).summary["total"] == 1  # still there
    assert (await secure.get("/api/alerts/shelved", headers=viewer)).status == 200


@pytest.mark.parametrize("role", ["operator", "technician"])
async def test_an_operator_or_a_technician_dismisses_and_is_named(
    secure: Client, role: str
) -> None:
    headers = bearer(token(sub="ana", role=role))
    async with secure.ws_connect("/ws/alerts", headers=headers) as ws:
        await counted(ws, 0)  # connected before the alert: its update is the next count
        alert_id = await raise_ph_alert(secure, headers)
        await counted(ws, 1)
        response = await secure.post(
            "/alerts/dismiss", json={"alert_id": alert_id}, headers=headers
        )
        assert response.status == 200
        message = await next_news(ws)
    assert (message["type"], message["alert_id"], message["by"]) == ("dismissed", alert_id, "ana")
    history = await (await secure.get("/api/alerts/history", headers=headers)).json()
    assert [(e["event"], e["by"]) for e in history][-1] == ("dismissed", "ana")


async def test_with_auth_off_everything_is_allowed_and_by_is_local(client: Client) -> None:
    alert_id = await raise_ph_alert(client, {})
    response = await client.post("/alerts/dismiss", json={"alert_id": alert_id})
    assert response.status == 200
    history = await (await client.get("/api/alerts/history")).json()
    assert [(e["event"], e["by"]) for e in history][-1] == ("dismissed", "local")


async def mint(*args: str) -> tuple[int, str, str]:
    env = {**os.environ, "GATEWAY_AUTH__JWT_SECRET": SECRET}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "token", "--sub", "ana", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 9)
    assert process.returncode is not None
    return process.returncode, out.decode().strip(), err.decode()


@pytest.mark.parametrize(("args", "role"), [((), "viewer"), (("--role", "operator"), "operator")])
async def test_token_command_mints_the_role(args: tuple[str, ...], role: str) -> None:
    code, out, _ = await mint(*args)
    assert code == 0
    claims = jwt.decode(out, SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("ana", role)


async def test_token_command_refuses_an_unknown_role() -> None:
    code, out, err = await mint("--role", "admin")
    assert (code, out) == (1, "")
    assert "--role" in err


@pytest.mark.parametrize("role", [None, "viewer", "operator"])
async def test_only_a_technician_calibrates(secure: Client, role: str | None) -> None:
    claims = {} if role is None else {"role": role}
    headers = bearer(token(sub="ana", **claims))
    body = {"point": "mid", "value": 7.0}
    response = await secure.post("/api/probes/ph/calibrate", json=body, headers=headers)
    assert (response.status, await response.json()) == (
        403,
        {"error": "forbidden", "detail": "needs technician"},
    )
    assert (await secure.get("/api/probes", headers=headers)).status == 200  # reading is fine


async def test_a_technicians_calibration_records_its_sub(secure: Client) -> None:
    headers = bearer(token(sub="luis", role="technician"))
    body = {"point": "mid", "value": 7.0}
    response = await secure.post("/api/probes/ph/calibrate", json=body, headers=headers)
    assert response.status == 200, await response.text()
    [ph] = [p for p in await (await secure.get("/api/probes", headers=headers)).json()
            if p["measurement"] == "ph"]  # fmt: skip
    assert ph["last_calibration"]["by"] == "luis"
