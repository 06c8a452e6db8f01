"""The ``sites`` channel: the feed's rules on a stepped clock, then a gateway's on real sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.api.hub import Hub
from gateway.sites import SITES, SitesFeed
from tests.gateway.alerting import CRITICAL, ZERO, read_ph
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import next_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed_and_hub(reading_every: float = 30.0) -> tuple[SitesFeed, Hub, Clock]:
    hub = Hub(streams=(SITES,))
    clock = Clock()
    return SitesFeed(hub, reading_every=reading_every, monotonic=clock), hub, clock


def sent(hub: Hub) -> list[dict[str, Any]]:
    return [message for _, message, _ in hub.streams[SITES].history]


def test_a_new_site_status_and_counts_each_send_the_whole_map() -> None:
    feed, hub, _ = feed_and_hub()
    feed.add("EMBALSE_01")
    feed.add("EMBALSE_02", "online")
    feed.status("EMBALSE_01", "online")
    feed.status("EMBALSE_01", "online")  # no change: no message
    feed.summary("EMBALSE_02", CRITICAL)
    feed.summary("EMBALSE_02", dict(CRITICAL))  # the same counts: no message
    feed.status("EMBALSE_02", "offline", since="2026-01-01T00:00:00.000Z")
    messages = sent(hub)
    assert [m["seq"] for m in messages] == [1, 2, 3, 4, 5]
    assert all(m["type"] == "sites" for m in messages)
    assert messages[0]["data"] == {
        "EMBALSE_01": {
            "status": "unknown",
            "offline_since": None,
            "summary": ZERO,
            "last_reading_at": None,
        }
    }
    last = messages[-1]["data"]
    assert set(last) == {"EMBALSE_01", "EMBALSE_02"}
    assert last["EMBALSE_02"]["summary"] == CRITICAL
    assert last["EMBALSE_02"]["status"] == "offline"
    assert last["EMBALSE_02"]["offline_since"] == "2026-01-01T00:00:00.000Z"
    feed.status("EMBALSE_02", "online")
    assert sent(hub)[-1]["data"]["EMBALSE_02"]["offline_since"] is None


def test_readings_alone_send_the_first_then_at_most_every_interval() -> None:
    feed, hub, clock = feed_and_hub(reading_every=30.0)
    feed.add("EMBALSE_01", "online")
    feed.reading("EMBALSE_01", "2026-01-01T00:00:00.000Z")  # the first: at once
    assert len(sent(hub)) == 2
    clock.now = 10.0
    feed.reading("EMBALSE_01", "2026-01-01T00:00:10.000Z")
    feed.reading("EMBALSE_01", "2026-01-01T00:00:05.000Z")  # older: ignored
    assert len(sent(hub)) == 2
    feed.summary("EMBALSE_01", CRITICAL)  # another change carries the newest reading time
    assert sent(hub)[-1]["data"]["EMBALSE_01"]["last_reading_at"] == "2026-01-01T00:00:10.000Z"
    clock.now = 39.0
    feed.reading("EMBALSE_01", "2026-01-01T00:00:39.000Z")
    assert len(sent(hub)) == 3  # 29 s after the last message
    clock.now = 40.0
    feed.reading("EMBALSE_01", "2026-01-01T00:00:40.000Z")
    assert len(sent(hub)) == 4
    assert sent(hub)[-1]["data"]["EMBALSE_01"]["last_reading_at"] == "2026-01-01T00:00:40.000Z"


# a gateway: its one site, on real sockets ---------------------------------------------------


async def test_a_gateway_sends_its_one_site_on_subscribe_and_on_new_counts(client: Client) -> None:
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"action": "subscribe", "channel": "sites"})
        assert (await next_of(ws, "subscribed"))["channel"] == "sites"
        opening = await next_of(ws, "sites")
        await read_ph(client, 9.5)
        while True:
            changed = await next_of(ws, "sites")
            if changed["data"]["EMBALSE_01"]["summary"] == CRITICAL:
                break
        read = changed
        while read["data"]["EMBALSE_01"]["last_reading_at"] is None:  # the first reading
            read = await next_of(ws, "sites")
        await ws.send_json({"action": "refresh", "channel": "sites"})
        refresh = await next_of(ws, "refresh")
    assert opening["channel"] == "sites"
    assert isinstance(opening["seq"], int)
    [site] = opening["data"].values()
    assert list(opening["data"]) == ["EMBALSE_01"]
    assert site["status"] == "online"
    assert site["summary"] == ZERO
    assert changed["seq"] > opening["seq"]
    assert read["data"]["EMBALSE_01"]["last_reading_at"].endswith("Z")
    assert refresh["channel"] == "sites"
    assert refresh["data"]["EMBALSE_01"]["summary"] == CRITICAL


async def test_a_resubscribe_with_since_gets_the_whole_map_again(client: Client) -> None:
    """A sites message holds the whole state: the opening is the state now, whatever since."""
    gateway = gateway_of(client)
    async with client.ws_connect("/ws") as ws:
        seq = gateway.hub.streams["sites"].seq
        await ws.send_json({"action": "subscribe", "channel": "sites", "since": seq})
        opening = await next_of(ws, "sites")
    assert opening["seq"] == seq
    assert opening["data"]["EMBALSE_01"]["status"] == "online"


async def test_a_gateway_takes_its_own_sites_channels_by_name(client: Client) -> None:
    """``sensors:<reservoir_id>`` as on a relay, so one overview page works on both."""
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"action": "subscribe", "channel": "sensors:EMBALSE_01"})
        update = await next_of(ws, "sensor_update")
        await ws.send_json({"action": "subscribe", "channel": "sensors:EMBALSE_02"})
        error = await next_of(ws, "error")
        await ws.send_json({"action": "subscribe", "channel": "sites:EMBALSE_01"})
        error_too = await next_of(ws, "error")
    assert update["data"]["reservoir_id"] == "EMBALSE_01"
    assert error["error"] == error_too["error"] == "unknown_channel"
    assert "sites" in error["detail"]


async def test_the_gateway_serves_the_overview_and_the_site_page(client: Client) -> None:
    home = await client.get("/")
    overview = await client.get("/overview")
    site = await client.get("/site?reservoir=EMBALSE_01")
    assert home.status == overview.status == site.status == 200
    assert await home.text() == await site.text()  # / stays the single-site dashboard
    assert "overview.js" in await overview.text()


async def test_sites_clients_do_not_hold_up_the_gateway(client: Client) -> None:
    """Many subscribers, one message each per change (conflated for the slow)."""
    sockets = [await client.ws_connect("/ws") for _ in range(5)]
    try:
        for ws in sockets:
            await ws.send_json({"action": "subscribe", "channel": "sites"})
        openings = await asyncio.gather(*(next_of(ws, "sites") for ws in sockets))
    finally:
        for ws in sockets:
            await ws.close()
    assert len({m["seq"] for m in openings}) == 1
