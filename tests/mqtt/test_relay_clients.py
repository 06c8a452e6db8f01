"""A relay serves the gateway's application: the clients, `watch` and the polling fallback
work against it as against a gateway; it sends its own heartbeats and keeps its limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiohttp import ClientSession

from gateway.alerts.store import Store
from gateway.api.frames import stamp
from gateway.client import GatewayClient
from gateway.config import ConfigError, load_config, with_overrides
from gateway.messages import SensorUpdate
from gateway.mqtt.relay import Relay as InProcessRelay
from gateway.mqtt.uplink import Uplink
from tests.gateway.test_client import (
    falls_back_to_polling,
    typed_messages_from_both_channels,
    watch_prints_lines_and_exits_0_on_ctrl_c,
)
from tests.helpers import until, until_true
from tests.mqtt.conftest import Broker, Gateway, Relay


async def serving(session: ClientSession, relay: Relay, site: str = "EMBALSE_01") -> None:
    """Until the relay has passed on a reading of ``site``."""

    async def known() -> bool:
        async with session.get(relay.url + f"/api/sensors/latest?reservoir={site}") as response:
            return response.status == 200 and bool(await response.json())

    await until_true(known)


@pytest.fixture
async def site(tmp_path: Path, broker: Broker) -> AsyncIterator[Gateway]:
    """One gateway (EMBALSE_01) publishing to the broker."""
    gateway = Gateway(tmp_path / "gw", broker)
    await gateway.start()
    yield gateway
    await gateway.stop()


async def started(relay: Relay) -> AsyncIterator[Relay]:
    await relay.start()
    try:
        async with ClientSession() as session:
            await serving(session, relay)
        yield relay
    finally:
        await relay.stop()


@pytest.fixture
async def relay(tmp_path: Path, broker: Broker, site: Gateway) -> AsyncIterator[Relay]:
    async for running in started(Relay(tmp_path / "relay", broker, "heartbeat_interval = 0.2")):
        yield running


async def test_the_python_client_against_a_relay(relay: Relay) -> None:
    await typed_messages_from_both_channels(relay.url)  # short channel names: its one site


async def test_the_python_client_names_a_site_with_a_channel_or_reservoir(relay: Relay) -> None:
    async with (
        GatewayClient(relay.url, channels=["sensors:EMBALSE_01"]) as by_channel,
        GatewayClient(relay.url + "/ws/sensors?reservoir=EMBALSE_01") as by_query,
    ):
        for client in (by_channel, by_query):
            async with asyncio.timeout(5):
                async for item in client:
                    if isinstance(item, SensorUpdate):
                        assert item.data.reservoir_id == "EMBALSE_01"
                        break


async def test_the_polling_fallback_against_a_relay(
    tmp_path: Path, broker: Broker, site: Gateway
) -> None:
    capped = Relay(tmp_path / "capped", broker, "max_connections = 1")
    async for running in started(capped):
        await falls_back_to_polling(running.url, "?reservoir=EMBALSE_01")


async def test_watch_against_a_relay(relay: Relay) -> None:
    await watch_prints_lines_and_exits_0_on_ctrl_c(relay.url)


async def test_a_relay_sends_its_own_heartbeats_on_every_stream(relay: Relay) -> None:
    ws_url = relay.url.replace("http", "ws")
    async with ClientSession() as session:
        fixed = await session.ws_connect(ws_url + "/ws/alerts?reservoir=EMBALSE_01")
        channels = await session.ws_connect(ws_url + "/ws")
        await channels.send_json({"action": "subscribe", "channel": "sensors:EMBALSE_01"})
        beats = []
        for ws in (fixed, channels):
            async with asyncio.timeout(5):
                while (message := await ws.receive_json())["type"] != "heartbeat":
                    pass
            beats.append(message)
            await ws.close()
    assert "seq" not in beats[0]  # not news: no seq, not replayed
    assert beats[1]["channel"] == "sensors:EMBALSE_01"


async def test_the_polling_endpoints_of_a_relay(relay: Relay) -> None:
    summary = relay.url + "/api/alerts/summary?reservoir=EMBALSE_01"
    latest = relay.url + "/api/sensors/latest"  # its one site, unnamed
    async with ClientSession() as session:
        async with session.get(summary) as first:
            etag, seq = first.headers["ETag"], int(first.headers["X-Seq"])
            assert set(await first.json()) == {"total", "critical", "warning", "info"}
        async with session.get(summary, headers={"If-None-Match": etag}) as again:
            assert again.status == 304
        async with session.get(latest) as now:
            seq = int(now.headers["X-Seq"])
        async with session.get(latest, params={"wait": "5", "since": str(seq)}) as polled:
            assert int(polled.headers["X-Seq"]) > seq  # held until the next reading came
            assert (await polled.json())["reservoir_id"] == "EMBALSE_01"
        async with session.get(relay.url + "/api/alerts/summary?reservoir=NOPE") as unknown:
            assert unknown.status == 404
            assert "expected one of EMBALSE_01" in (await unknown.json())["detail"]
        async with session.get(relay.url + "/healthz") as health:
            assert (await health.json())["sites"] == {"EMBALSE_01": "online"}
        async with session.get(relay.url + "/metrics") as metrics:
            assert "gateway_ws_messages_sent_total" in await metrics.text()


def sensor_payload(broker: Broker, reservoir: str, seq: int) -> tuple[str, bytes]:
    """What a gateway's Uplink publishes for one sensor_update."""
    config = with_overrides(load_config(), {"mqtt": {"url": broker.url}}).mqtt
    uplink = Uplink(config, reservoir, Store(Path("unused")), on_dismiss=_never)
    data = {"water_level": 1.0, "reservoir_id": reservoir}
    out = uplink.sensor_update(stamp({"type": "sensor_update", "data": data}, seq))
    return out.topic, out.payload


async def _never(alert_id: str, by: str | None) -> bool:
    return False


async def test_a_relay_serves_only_its_reservoirs(tmp_path: Path, broker: Broker) -> None:
    capped = Relay(tmp_path / "capped", broker, extra="[relay]\nmax_reservoirs = 2")
    listed = Relay(tmp_path / "listed", broker, extra='[relay]\nreservoirs = ["SITE_B"]')
    await asyncio.gather(capped.start(), listed.start())
    try:
        async with aiomqtt.Client("127.0.0.1", port=broker.port) as publisher:
            for seq in (1, 2):  # each site twice: a relay says so once
                for reservoir in ("SITE_A", "SITE_B", "SITE_C"):
                    await publisher.publish(*sensor_payload(broker, reservoir, seq), qos=1)
        async with ClientSession() as session:
            for relay in (capped, listed):
                await serving(session, relay, "SITE_B")
            await serving(session, capped, "SITE_A")
            await until(lambda: "SITE_C" in capped.log() and "SITE_C" in listed.log())
            sites = [
                await (await session.get(r.url + "/api/sites")).json() for r in (capped, listed)
            ]
    finally:
        await asyncio.gather(capped.stop(), listed.stop())
    assert set(sites[0]) == {"SITE_A", "SITE_B"}
    assert set(sites[1]) == {"SITE_B"}
    warned = [line for line in capped.log().splitlines() if "ignoring reservoir" in line]
    assert len(warned) == 1, warned
    assert "WARNING" in warned[0]
    assert "SITE_C" in warned[0]
    assert "max_reservoirs" in warned[0]
    told = [line for line in listed.log().splitlines() if "ignoring reservoir" in line]
    assert sorted(line.split("reservoir ")[1][:6] for line in told) == ["SITE_A", "SITE_C"]
    assert all("INFO" in line for line in told)


async def test_a_dismissal_nobody_confirms_leaves_nothing_waiting(
    tmp_path: Path, broker: Broker
) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(f'[mqtt]\nurl = "{broker.url}"\n')
    relay = InProcessRelay(load_config(config), dismiss_wait=0.2)
    relay.start()
    try:
        alert = {"id": "GHOST-1", "measurement": "ph", "severity": "warning"}
        async with aiomqtt.Client("127.0.0.1", port=broker.port) as publisher:
            # a gateway that said which alerts are active, then went quiet
            topic = "reservoirs/GHOST/alerts/active"
            await publisher.publish(topic, json.dumps([alert]), qos=1, retain=True)
        await until(lambda: "GHOST" in relay.sites and relay.sites["GHOST"].active, timeout=5)
        outcomes = await asyncio.gather(*(relay.dismiss("GHOST-1", "op") for _ in range(3)))
        health = relay.health()
    finally:
        await relay.stop()
    assert outcomes == [None, None, None]  # 504 at the REST API
    assert health["dismissals_pending"] == 0


async def test_the_same_queries_at_a_relay_and_at_its_gateway(site: Gateway, relay: Relay) -> None:
    async with ClientSession() as session:

        async def alerts(url: str) -> list[dict[str, Any]]:
            async with session.get(url + "/api/alerts?reservoir=EMBALSE_01") as response:
                assert response.status == 200
                listed: list[dict[str, Any]] = await response.json()
                return listed

        # the simulated level (12.5 m) is beyond warning_high: an alert at both
        await until_true(lambda: _some(alerts(relay.url)))
        at_relay, at_gateway = await alerts(relay.url), await alerts(site.url)
        async with session.get(site.url + "/api/sensors/latest?reservoir=ELSEWHERE") as other:
            assert other.status == 404
            assert "expected one of EMBALSE_01" in (await other.json())["detail"]
    assert [a["id"] for a in at_relay] == [a["id"] for a in at_gateway]
    assert {a["reservoir_id"] for a in at_relay} == {"EMBALSE_01"}


async def _some(listing: Any) -> bool:
    return bool(await listing)


def test_relay_limits_are_checked_by_key(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text('[relay]\nreservoirs = ["EMBALSE 01"]\nmax_reservoirs = 0\n')
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    problems = "\n".join(caught.value.problems)
    assert "relay.reservoirs[0]: must be a reservoir_id" in problems, problems
    assert "relay.max_reservoirs" in problems, problems
