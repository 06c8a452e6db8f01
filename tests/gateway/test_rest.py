"""REST endpoints, health, metrics and the simulator control in simulate mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from simulators.control import RIG
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import next_news, next_of, until


@pytest.fixture
async def alert_client(client: Client) -> Client:
    """A gateway with one active warning: pH 8.7, above warning_high 8.5."""
    gateway = gateway_of(client)
    client.app[RIG].set_value("ph", 8.7)
    await until(lambda: gateway.summary["total"] == 1)
    return client


async def test_index_page(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"


async def test_info_describes_the_site(client: Client) -> None:
    info = await (await client.get("/api/info")).json()
    assert info["reservoir_id"] == "EMBALSE_01"
    assert info["measurements"] == ["ph", "water_level"]
    assert info["units"]["conductivity"] == "µS/cm"
    assert info["thresholds"]["ph"]["warning_high"] == 8.5
    assert info["simulated"] is True


async def test_alert_endpoints(alert_client: Client) -> None:
    alerts = await (await alert_client.get("/api/alerts")).json()
    assert [a["id"] for a in alerts] == ["EMBALSE_01-1"]
    assert alerts[0]["severity"] == "warning"
    assert alerts[0]["state"] == "active"
    assert alerts[0]["value"] == pytest.approx(8.7)
    assert alerts[0]["bound"] == 8.5
    assert set(alerts[0]) >= {
        "id",
        "measurement",
        "severity",
        "state",
        "value",
        "bound",
        "raised_at",
    }
    summary = await (await alert_client.get("/api/alerts/summary")).json()
    assert summary == {"total": 1, "critical": 0, "warning": 1, "info": 0}


async def test_dismiss_publishes_dismissed_then_update(alert_client: Client) -> None:
    async with alert_client.ws_connect("/ws/alerts") as ws:
        initial = await ws.receive_json(timeout=2)
        assert initial["data"]["total"] == 1
        response = await alert_client.post("/alerts/dismiss", json={"alert_id": "EMBALSE_01-1"})
        assert response.status == 200
        assert await response.json() == {"alert_id": "EMBALSE_01-1", "dismissed": True}
        dismissed = await next_news(ws)
        update = await next_news(ws)
    assert dismissed["type"] == "dismissed"
    assert dismissed["alert_id"] == "EMBALSE_01-1"
    assert update["type"] == "update"
    assert update["data"]["total"] == 0
    assert update["seq"] == dismissed["seq"] + 1
    again = await alert_client.post("/alerts/dismiss", json={"alert_id": "EMBALSE_01-1"})
    assert again.status == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not JSON"),
        (b"[]", "alert_id"),
        (b"{}", "alert_id"),
        (b'{"alert_id": 7}', "alert_id"),
        (b'{"alert_id": ""}', "alert_id"),
        (b'{"alert_id": "EMBALSE_01-1", "why": "x"}', "why"),
    ],
)
async def test_dismiss_bad_body_is_422(alert_client: Client, body: bytes, fragment: str) -> None:
    response = await alert_client.post("/alerts/dismiss", data=body)
    assert response.status == 422
    assert fragment in (await response.json())["detail"]


async def test_dismiss_unknown_is_404(client: Client) -> None:
    response = await client.post("/alerts/dismiss", json={"alert_id": "nope"})
    assert response.status == 404
    assert "nope" in (await response.json())["detail"]


async def test_sensors_latest_is_the_last_sensor_update(client: Client) -> None:
    async with client.ws_connect("/ws/sensors") as ws:
        await ws.receive_json(timeout=2)
        update = await next_of(ws, "sensor_update")  # heartbeats come between (0.25 s)
        latest = await (await client.get("/api/sensors/latest")).json()
    assert set(latest) == set(update["data"])
    assert latest["reservoir_id"] == "EMBALSE_01"


async def test_health_ok_then_degraded_when_a_bus_is_unplugged(client: Client) -> None:
    gateway = gateway_of(client)
    await until(lambda: gateway.readings.value("ph") is not None)
    health = await (await client.get("/healthz")).json()
    assert health["status"] in ("ok", "degraded")
    assert health["buses"]["ph-probe"]["state"] == "connected"
    assert health["buses"]["ph-probe"]["counters"]["requests"] > 0
    client.app[RIG].set_fault("ph", "unplug")
    await until(lambda: gateway.readings.status()["ph"]["quality"] == "disconnected")
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "degraded"
    assert health["buses"]["ph-probe"]["state"] == "down"
    assert health["sensors"]["ph"]["quality"] == "disconnected"


async def test_offline_sensor_is_null_and_degrades_health(make_client: Callable[..., Any]) -> None:
    client: Client = await make_client(stale_after=0.3)
    gateway = gateway_of(client)
    await until(lambda: gateway.readings.value("ph") is not None)
    client.app[RIG].set_fault("ph", "timeout")
    await until(lambda: gateway.readings.value("ph") is None)
    assert gateway.readings.snapshot()["ph"] is None
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "degraded"
    assert "ph" in health["offline"]
    assert health["sensors"]["ph"]["value"] is None


async def test_metrics(client: Client) -> None:
    gateway = gateway_of(client)
    async with client.ws_connect("/ws/sensors") as ws:
        await ws.receive_json(timeout=2)
        await ws.receive_json(timeout=2)
        await until(lambda: gateway.readings.value("ph") is not None)
        text = await (await client.get("/metrics")).text()
    for name in (
        'gateway_ws_connections{stream="sensors"} 1.0',
        "gateway_ws_messages_sent_total",
        "gateway_ws_clients_dropped_total",
        "gateway_broadcast_seconds_bucket",
        'gateway_serial_requests_total{bus="ph-probe"}',
        'gateway_serial_errors_total{bus="rs485-1",kind="timeout"}',
        'gateway_sensor_value{measurement="ph"} 7.25',
        'gateway_alerts_active{severity="critical"} 0.0',
        "gateway_ws_delivery_seconds_bucket",
        "gateway_event_loop_lag_seconds_count",
    ):
        assert name in text, name


async def test_simulator_control_is_mounted_in_simulate_mode(client: Client) -> None:
    gateway = gateway_of(client)
    response = await client.put("/api/simulator/ph", json={"value": 5.5})
    assert response.status == 200
    await until(lambda: gateway.readings.value("ph") == 5.5)
