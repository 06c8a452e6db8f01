"""Relays: many reservoirs through one broker, the same streams from every relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse

from tests.helpers import until_true
from tests.mqtt.conftest import Broker, Gateway, Relay


@pytest.fixture
async def fleet(tmp_path: Path, broker: Broker) -> AsyncIterator[tuple[list[Gateway], list[Relay]]]:
    gateways = [
        Gateway(tmp_path / "gw1", broker, "EMBALSE_01"),
        Gateway(tmp_path / "gw2", broker, "EMBALSE_02"),
    ]
    relays = [Relay(tmp_path / "r1", broker), Relay(tmp_path / "r2", broker)]
    try:
        await asyncio.gather(*(p.start() for p in [*gateways, *relays]))
        yield gateways, relays
    finally:
        await asyncio.gather(*(p.stop() for p in [*gateways, *relays]))


async def sites_known(session: ClientSession, relay: Relay, count: int) -> None:
    async with asyncio.timeout(8):
        while True:
            async with session.get(relay.url + "/api/sites") as response:
                if len(await response.json()) >= count:
                    return
            await asyncio.sleep(0.1)


async def take(ws: ClientWebSocketResponse, kind: str, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(8):
        while len(got) < count:
            message = await ws.receive_json()
            if message["type"] == kind:
                got.append(message)
    return got


async def test_two_relays_serve_identical_streams_for_two_gateways(
    fleet: tuple[list[Gateway], list[Relay]],
) -> None:
    _, relays = fleet
    async with ClientSession() as session:
        for relay in relays:
            await sites_known(session, relay, 2)
        streams: dict[str, list[list[dict[str, Any]]]] = {}
        for site in ("EMBALSE_01", "EMBALSE_02"):
            sockets = [
                await session.ws_connect(
                    relay.url.replace("http", "ws") + f"/ws/sensors?reservoir={site}"
                )
                for relay in relays
            ]
            firsts = [await ws.receive_json(timeout=5) for ws in sockets]
            target = max(m["seq"] for m in firsts) + 3
            streams[site] = []
            for ws in sockets:
                got = []
                async with asyncio.timeout(8):
                    while not got or got[-1]["seq"] < target:
                        message = await ws.receive_json()
                        if message["type"] == "sensor_update":
                            got.append(message)
                streams[site].append([m for m in got if m["seq"] > target - 3])
                await ws.close()
    for site, (one, two) in streams.items():
        assert one == two, site  # the very same messages: seq, time and data
        assert {m["data"]["reservoir_id"] for m in one} == {site}


async def test_a_dismissal_at_one_relay_reaches_both_relays_clients(
    fleet: tuple[list[Gateway], list[Relay]],
) -> None:
    _, relays = fleet
    async with ClientSession() as session:
        for relay in relays:
            await sites_known(session, relay, 2)
        sockets = [await session.ws_connect(r.url.replace("http", "ws") + "/ws") for r in relays]
        for ws in sockets:
            await ws.send_json({"action": "subscribe", "channel": "alerts:EMBALSE_02"})
        openings = [await take(ws, "initial", 1) for ws in sockets]
        assert all(o[0]["channel"] == "alerts:EMBALSE_02" for o in openings)
        async with asyncio.timeout(8):
            while True:  # the simulated level (12.5 m) is beyond warning_high: an alert
                active = await (await session.get(relays[0].url + "/api/alerts")).json()
                if any(a["reservoir_id"] == "EMBALSE_02" for a in active):
                    break
                await asyncio.sleep(0.1)
        alert = next(a for a in active if a["reservoir_id"] == "EMBALSE_02")
        response = await session.post(
            relays[0].url + "/alerts/dismiss", json={"alert_id": alert["id"]}
        )
        assert response.status == 200
        assert await response.json() == {"alert_id": alert["id"], "dismissed": True}
        dismissed = [await take(ws, "dismissed", 1) for ws in sockets]
        for ws in sockets:
            await ws.close()
        missing = await session.post(relays[1].url + "/alerts/dismiss", json={"alert_id": "A-999"})
        assert missing.status == 404
    assert dismissed[0] == dismissed[1]  # the gateway's own event, the same at both relays
    assert dismissed[0][0]["alert_id"] == alert["id"]
    assert dismissed[0][0]["channel"] == "alerts:EMBALSE_02"


async def test_a_relay_started_later_knows_the_active_alerts(
    tmp_path: Path, broker: Broker, fleet: tuple[list[Gateway], list[Relay]]
) -> None:
    _, relays = fleet
    async with ClientSession() as session:

        async def alerts_at(relay: Relay) -> list[dict[str, Any]]:
            async with session.get(relay.url + "/api/alerts") as response:
                listed: list[dict[str, Any]] = await response.json()
                return listed

        await sites_known(session, relays[0], 2)
        # Both gateways have raised their level alert ...
        await until_true(lambda: _at_least(alerts_at(relays[0]), 2))
        late = Relay(tmp_path / "late", broker)
        await late.start()
        try:
            await sites_known(session, late, 2)
            # ... and a relay that was not there then learns them from alerts/active.
            await until_true(lambda: _at_least(alerts_at(late), 2), timeout=5)
            alerts = await alerts_at(late)
        finally:
            await late.stop()
    assert {a["reservoir_id"] for a in alerts} == {"EMBALSE_01", "EMBALSE_02"}
    assert {a["measurement"] for a in alerts} == {"water_level"}


async def _at_least(listing: Awaitable[list[Any]], count: int) -> bool:
    return len(await listing) >= count
