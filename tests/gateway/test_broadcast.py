"""The seed's broadcast API from embedding code: through the engine and the store, never past."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.broadcast import (
    NoGateway,
    UnknownAlert,
    broadcast_alert_dismissed,
    broadcast_alert_update,
)
from tests.gateway.alerting import CRITICAL, WARNING, ZERO, active_id, unplug_ph
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import next_of


async def rest_counts(client: Client) -> tuple[dict[str, int], list[dict[str, Any]]]:
    summary = await (await client.get("/api/alerts/summary")).json()
    return summary, await (await client.get("/api/alerts")).json()


async def test_with_no_gateway_running_it_says_so() -> None:
    with pytest.raises(NoGateway, match="none is running"):
        await broadcast_alert_update()
    with pytest.raises(NoGateway):
        await broadcast_alert_dismissed("EMBALSE_01-1")


async def test_a_reading_raises_through_engine_store_and_clients(client: Client) -> None:
    await unplug_ph(client)  # the embedding code reads this probe itself
    async with client.ws_connect("/ws/alerts") as ws:
        await next_of(ws, "initial")
        counts = await broadcast_alert_update({"measurement": "ph", "value": 9.5})
        update = await next_of(ws, "update")
    assert counts == update["data"] == CRITICAL
    summary, alerts = await rest_counts(client)
    assert summary == CRITICAL  # REST agrees with what the clients were told
    assert [(a["measurement"], a["severity"], a["value"]) for a in alerts] == [
        ("ph", "critical", 9.5)
    ]
    history = await (await client.get("/api/alerts/history")).json()
    assert [e["event"] for e in history] == ["raised"]  # committed before it was sent


async def test_dismissed_is_a_real_dismissal(client: Client) -> None:
    await unplug_ph(client)
    await broadcast_alert_update({"measurement": "ph", "value": 4.0})
    alert_id = await active_id(client)
    async with client.ws_connect("/ws/alerts") as ws:
        await next_of(ws, "initial")
        await broadcast_alert_dismissed(alert_id, by="scada")
        dismissed, update = await next_of(ws, "dismissed"), await next_of(ws, "update")
    assert dismissed["alert_id"] == alert_id
    assert update["data"] == ZERO
    assert await rest_counts(client) == (ZERO, [])
    history = await (await client.get("/api/alerts/history")).json()
    assert [(e["event"], e["by"]) for e in history][-1] == ("dismissed", "scada")
    with pytest.raises(UnknownAlert, match=alert_id):  # already dismissed
        await broadcast_alert_dismissed(alert_id)
    with pytest.raises(UnknownAlert):
        await broadcast_alert_dismissed("no-such-alert")


async def test_the_seeds_counts_are_checked_never_pushed(client: Client) -> None:
    gateway = gateway_of(client)
    seq = gateway.hub.streams["alerts"].seq
    assert await broadcast_alert_update(dict(ZERO)) == ZERO  # what the engine has: fine
    with pytest.raises(ValueError, match="counts come from the alert engine"):
        await broadcast_alert_update(dict(WARNING))
    assert await broadcast_alert_update() == ZERO
    assert gateway.hub.streams["alerts"].seq == seq  # nothing was sent
    assert (await rest_counts(client))[0] == ZERO


@pytest.mark.parametrize(
    ("update", "problem"),
    [
        ({"measurement": "conductivity", "value": 1.0}, "measurement: 'conductivity'"),
        ({"measurement": "ph", "value": float("nan")}, "value: expected a finite number"),
        ({"measurement": "ph", "value": "4"}, "value: expected a finite number"),
        ({"measurement": "ph"}, "update: expected"),
    ],
)
async def test_bad_updates_name_what_is_wrong(
    client: Client, update: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        await broadcast_alert_update(update)


async def test_it_acts_on_the_one_running_gateway(make_client: Callable[..., Any]) -> None:
    first: Client = await make_client()
    assert await broadcast_alert_update() == ZERO
    await first.close()  # stopped: no longer the running one
    with pytest.raises(NoGateway, match="none is running"):
        await broadcast_alert_update()
