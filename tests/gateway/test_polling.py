"""The polling fallback: ETags, and long polls on the WebSocket's seq."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.gateway.conftest import Client, gateway_of


@pytest.mark.parametrize("path", ["/api/alerts/summary", "/api/sensors/latest"])
async def test_etag_and_304(client: Client, path: str) -> None:
    first = await client.get(path)
    etag = first.headers["ETag"]
    again = await client.get(path, headers={"If-None-Match": etag})
    if path.endswith("summary"):  # the counts have not changed
        assert again.status == 304
        assert await again.read() == b""
        assert again.headers["ETag"] == etag
    other = await client.get(path, headers={"If-None-Match": '"something-else"'})
    assert other.status == 200


async def test_summary_etag_changes_with_the_counts(client: Client) -> None:
    gateway = gateway_of(client)
    etag = (await client.get("/api/alerts/summary")).headers["ETag"]
    gateway.broadcast_alert_update({"total": 1, "critical": 1, "warning": 0, "info": 0})
    response = await client.get("/api/alerts/summary", headers={"If-None-Match": etag})
    assert response.status == 200
    assert (await response.json())["critical"] == 1
    assert response.headers["ETag"] != etag


async def test_seq_is_the_websockets(client: Client) -> None:
    async with client.ws_connect("/ws/alerts") as ws:
        initial = await ws.receive_json(timeout=2)
    response = await client.get("/api/alerts/summary")
    assert int(response.headers["X-Seq"]) == initial["seq"]


async def test_long_poll_returns_on_the_next_message(client: Client) -> None:
    gateway = gateway_of(client)
    seq = gateway.hub.streams["alerts"].seq

    async def later() -> None:
        await asyncio.sleep(0.3)
        gateway.broadcast_alert_update({"total": 1, "critical": 0, "warning": 1, "info": 0})

    publisher = asyncio.create_task(later(), name="test.publish-later")
    started = time.monotonic()
    response = await client.get(f"/api/alerts/summary?wait=20&since={seq}")
    elapsed = time.monotonic() - started
    await publisher
    assert response.status == 200
    assert (await response.json())["warning"] == 1
    assert int(response.headers["X-Seq"]) == seq + 1
    assert elapsed < 10  # answered by the news, not by the 20 s wait


async def test_long_poll_answers_at_once_when_behind(client: Client) -> None:
    gateway = gateway_of(client)
    gateway.broadcast_alert_update({"total": 1, "critical": 0, "warning": 1, "info": 0})
    response = await client.get("/api/alerts/summary?wait=20&since=0")
    assert int(response.headers["X-Seq"]) >= 1


async def test_long_poll_times_out_with_the_current_state(client: Client) -> None:
    seq = gateway_of(client).hub.streams["alerts"].seq
    response = await client.get(f"/api/alerts/summary?wait=0.2&since={seq}")
    assert response.status == 200
    assert int(response.headers["X-Seq"]) == seq


async def test_bad_long_poll_parameters(client: Client) -> None:
    response = await client.get("/api/alerts/summary?wait=soon")
    assert response.status == 400
