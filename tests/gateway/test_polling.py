"""The polling fallback: ETags, and long polls on the WebSocket's seq."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.gateway.alerting import CRITICAL, WARNING, read_ph, simulate
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import until


async def settled_latest(client: Client) -> None:
    """Wait until /api/sensors/latest carries the pinned readings (then it stays put)."""
    gateway = gateway_of(client)
    await until(lambda: gateway.latest_sensor_data().get("water_level") == 12.5)
    await until(lambda: gateway.latest_sensor_data().get("ph") == 7.25)


@pytest.mark.parametrize("path", ["/api/alerts/summary", "/api/sensors/latest"])
async def test_etag_and_304(client: Client, path: str) -> None:
    await settled_latest(client)
    first = await client.get(path)
    etag = first.headers["ETag"]
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status == 304  # the counts, or the readings, have not changed
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    other = await client.get(path, headers={"If-None-Match": '"something-else"'})
    assert other.status == 200
    assert await other.json() == await first.json()


async def test_sensors_etag_changes_with_the_readings(client: Client) -> None:
    await settled_latest(client)
    etag = (await client.get("/api/sensors/latest")).headers["ETag"]
    await simulate(client, "ph", {"value": 6.5})
    gateway = gateway_of(client)
    await until(lambda: gateway.latest_sensor_data().get("ph") == 6.5)
    response = await client.get("/api/sensors/latest", headers={"If-None-Match": etag})
    assert response.status == 200
    assert (await response.json())["ph"] == 6.5


async def test_summary_etag_changes_with_the_counts(client: Client) -> None:
    etag = (await client.get("/api/alerts/summary")).headers["ETag"]
    await read_ph(client, 9.5)
    response = await client.get("/api/alerts/summary", headers={"If-None-Match": etag})
    assert response.status == 200
    assert await response.json() == CRITICAL
    assert response.headers["ETag"] != etag


async def test_seq_is_the_websockets(client: Client) -> None:
    async with client.ws_connect("/ws/alerts") as ws:
        initial = await ws.receive_json(timeout=2)
    response = await client.get("/api/alerts/summary")
    assert int(response.headers["X-Seq"]) == initial["seq"]


async def timed_get(client: Client, path: str) -> tuple[Any, float]:
    """A GET, and how long it took on the event loop's clock."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await client.get(path)
    await response.read()
    return response, loop.time() - started


async def test_long_poll_returns_on_the_next_message(client: Client) -> None:
    gateway = gateway_of(client)
    seq = gateway.hub.streams["alerts"].seq
    wait = 20.0
    poll = asyncio.create_task(
        timed_get(client, f"/api/alerts/summary?wait={wait}&since={seq}"), name="test.long-poll"
    )
    stream = gateway.hub.streams["alerts"]
    await until(lambda: stream._news is not None)  # the poll is waiting on the stream's news
    assert stream.seq == seq
    await simulate(client, "ph", {"value": 4.0})  # the news the poll waits for
    response, elapsed = await asyncio.wait_for(poll, 5)
    assert response.status == 200
    assert await response.json() == WARNING
    assert int(response.headers["X-Seq"]) == seq + 1
    assert elapsed < wait / 2  # answered by the news, not by the wait running out


async def test_long_poll_answers_at_once_when_behind(client: Client) -> None:
    await read_ph(client, 4.0)
    wait = 20.0
    response, elapsed = await timed_get(client, f"/api/alerts/summary?wait={wait}&since=0")
    assert int(response.headers["X-Seq"]) == 1
    assert await response.json() == WARNING
    assert elapsed < wait / 2  # behind already: no waiting at all


async def test_long_poll_times_out_with_the_current_state(client: Client) -> None:
    seq = gateway_of(client).hub.streams["alerts"].seq
    response = await client.get(f"/api/alerts/summary?wait=0.2&since={seq}")
    assert response.status == 200
    assert int(response.headers["X-Seq"]) == seq


async def test_bad_long_poll_parameters(client: Client) -> None:
    response = await client.get("/api/alerts/summary?wait=soon")
    assert response.status == 400
