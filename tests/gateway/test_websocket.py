"""The seed's WebSocket protocol on /ws/alerts and /ws/sensors, over real sockets."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from tests.gateway.alerting import CRITICAL, WARNING, ZERO, active_id, read_ph
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import next_news, next_of, until

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_alerts_initial_on_connect(client: Client) -> None:
    async with client.ws_connect("/ws/alerts") as ws:
        first = await ws.receive_json(timeout=2)
    assert first["type"] == "initial"
    assert first["data"] == ZERO
    assert first["seq"] == 0
    assert TIMESTAMP.match(first["timestamp"])


async def test_sensor_update_on_connect_then_every_interval(client: Client) -> None:
    async with client.ws_connect("/ws/sensors") as ws:
        first = await ws.receive_json(timeout=2)
        assert first["type"] == "sensor_update"
        assert set(first["data"]) == {
            "temperature",
            "ph",
            "conductivity",
            "water_level",
            "reservoir_id",
        }
        assert first["data"]["reservoir_id"] == "EMBALSE_01"
        updates = [await next_of(ws, "sensor_update") for _ in range(3)]
    seqs = [u["seq"] for u in updates]
    assert seqs == list(range(seqs[0], seqs[0] + 3))  # one more per message
    latest = updates[-1]["data"]
    assert latest["ph"] == pytest.approx(7.25)
    assert latest["water_level"] == pytest.approx(12.5)
    assert latest["temperature"] is None  # no bus reads it: null, not a number
    assert latest["conductivity"] is None


async def test_heartbeat(client: Client) -> None:
    async with client.ws_connect("/ws/alerts") as ws:
        beat = await next_of(ws, "heartbeat")
    assert set(beat) == {"type", "timestamp"}
    assert TIMESTAMP.match(beat["timestamp"])


@pytest.mark.parametrize("stream", ["alerts", "sensors"])
async def test_ping_and_refresh(client: Client, stream: str) -> None:
    async with client.ws_connect(f"/ws/{stream}") as ws:
        await ws.receive_json(timeout=2)
        await ws.send_json({"action": "ping"})
        pong = await next_of(ws, "pong")
        await ws.send_json({"action": "refresh"})
        refresh = await next_of(ws, "refresh")
    assert set(pong) == {"type", "timestamp"}
    if stream == "alerts":
        assert refresh["data"] == ZERO
    else:
        assert refresh["data"]["reservoir_id"] == "EMBALSE_01"


@pytest.mark.parametrize(
    ("send", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('{"verb": "ping"}', "missing_action"),
        ('{"action": "dance"}', "unknown_action"),
        (b"\x00\x01", "binary_not_supported"),
    ],
)
async def test_bad_input_gets_an_error_and_the_connection_stays(
    client: Client, send: str | bytes, code: str
) -> None:
    async with client.ws_connect("/ws/alerts") as ws:
        await ws.receive_json(timeout=2)
        if isinstance(send, bytes):
            await ws.send_bytes(send)
        else:
            await ws.send_str(send)
        error = await next_of(ws, "error")
        await ws.send_json({"action": "ping"})
        assert (await next_of(ws, "pong"))["type"] == "pong"
    assert error["error"] == code
    assert error["detail"]
    assert TIMESTAMP.match(error["timestamp"])


async def test_oversized_frame_closes_1009(client: Client) -> None:
    async with client.ws_connect("/ws/alerts") as ws:
        await ws.receive_json(timeout=2)
        await ws.send_str('{"action": "ping", "pad": "' + "x" * 2000 + '"}')
        async with asyncio.timeout(3):
            while (await ws.receive()).type not in (WSMsgType.CLOSE, WSMsgType.CLOSED):
                pass
    assert ws.close_code == 1009


async def test_alert_update_only_when_counts_change(client: Client) -> None:
    async with client.ws_connect("/ws/alerts") as ws:
        initial = await ws.receive_json(timeout=2)
        await read_ph(client, 7.25)  # read again and again: the counts stay, nothing is sent
        await read_ph(client, 4.0)  # raised: one update, however many readings follow
        first = await next_of(ws, "update")
        alert_id = await active_id(client)
        response = await client.post("/alerts/dismiss", json={"alert_id": alert_id})
        assert response.status == 200
        received = [first, *[await next_of(ws, t) for t in ("dismissed", "update")]]
    assert [m["seq"] for m in received] == [
        initial["seq"] + 1,
        initial["seq"] + 2,
        initial["seq"] + 3,
    ]
    assert received[0]["data"] == WARNING
    assert received[1]["alert_id"] == alert_id
    assert received[2]["data"] == ZERO


async def test_since_replays_what_was_missed(client: Client) -> None:
    async with client.ws_connect("/ws/alerts") as ws:
        seen = (await ws.receive_json(timeout=2))["seq"]
    told = [await read_ph(client, ph) for ph in (8.7, 9.5, 7.25)]
    async with client.ws_connect(f"/ws/alerts?since={seen}") as ws:
        replayed = [await ws.receive_json(timeout=2) for _ in range(3)]
    assert [m["type"] for m in replayed] == ["update"] * 3
    assert [m["seq"] for m in replayed] == [seen + 1, seen + 2, seen + 3]
    assert [m["data"] for m in replayed] == told == [WARNING, CRITICAL, ZERO]


async def test_since_up_to_date_sends_nothing_old(client: Client) -> None:
    gateway = gateway_of(client)
    await read_ph(client, 9.5)
    latest = gateway.hub.streams["alerts"].seq
    assert latest > 0
    async with client.ws_connect(f"/ws/alerts?since={latest}") as ws:
        await ws.send_json({"action": "ping"})
        first = await next_news(ws)
    assert first["type"] == "pong"  # no initial: the client is up to date


async def test_since_beyond_history_gets_initial(client: Client) -> None:
    gateway = gateway_of(client)
    for ph in (8.7, 9.5) * 4 + (8.7,):  # nine updates; history holds 5
        await read_ph(client, ph)
    assert gateway.hub.streams["alerts"].seq == 9
    async with client.ws_connect("/ws/alerts?since=1") as ws:
        first = await ws.receive_json(timeout=2)
    assert first["type"] == "initial"
    assert first["data"] == WARNING
    assert first["seq"] == gateway.hub.streams["alerts"].seq


async def test_since_from_before_a_restart_gets_initial(client: Client) -> None:
    async with client.ws_connect("/ws/alerts?since=999") as ws:
        first = await ws.receive_json(timeout=2)
    assert first["type"] == "initial"


async def test_sensors_since_replays_readings_without_gap(client: Client) -> None:
    async with client.ws_connect("/ws/sensors") as ws:
        last = (await next_of(ws, "sensor_update"))["seq"]
    stream = gateway_of(client).hub.streams["sensors"]
    await until(lambda: stream.seq >= last + 2)
    async with client.ws_connect(f"/ws/sensors?since={last}") as ws:
        first, second = await ws.receive_json(timeout=2), await ws.receive_json(timeout=2)
    assert first["seq"] == last + 1
    assert second["seq"] == last + 2


@pytest.mark.parametrize("since", ["-1", "abc", "1.5"])
async def test_bad_since_is_refused(client: Client, since: str) -> None:
    response = await client.get(f"/ws/alerts?since={since}")
    assert response.status == 400
    assert "since" in await response.text()


async def test_connection_cap_answers_503(make_client: Callable[..., Any]) -> None:
    client: TestClient[web.Request, web.Application] = await make_client(
        server_extra="max_connections = 2"
    )
    async with client.ws_connect("/ws/alerts"), client.ws_connect("/ws/sensors"):
        response = await client.get(
            "/ws/alerts",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        assert response.status == 503
    async with client.ws_connect("/ws/alerts") as ws:  # room again once they left
        assert (await ws.receive_json(timeout=2))["type"] == "initial"


async def test_connections_are_counted_and_logged(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="gateway.websocket")
    async with client.ws_connect("/ws/alerts") as a:
        await a.receive_json(timeout=2)
        async with client.ws_connect("/ws/sensors") as b:
            await b.receive_json(timeout=2)
            health = await (await client.get("/healthz")).json()
            assert health["connections"] == 2
    await until(lambda: not gateway_of(client).hub.connections)
    messages = [r.getMessage() for r in caplog.records if r.name == "gateway.websocket"]
    assert "[WebSocket] Connected. Total connections: 1" in messages
    assert "[WebSocket] Connected. Total connections: 2" in messages
    assert "[WebSocket] Disconnected. Total connections: 0" in messages
