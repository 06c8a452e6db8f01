"""The ``sites`` channel of a relay, on real sockets: a real Mosquitto, real gateways."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse

from gateway.client import GatewayClient
from gateway.messages import Sites
from tests.mqtt.conftest import Broker, Gateway, Relay

WARNING = {"total": 1, "critical": 0, "warning": 1, "info": 0}  # the level is high from the start
SITES = ("EMBALSE_01", "EMBALSE_02")


@pytest.fixture
async def fleet(tmp_path: Path, broker: Broker) -> AsyncIterator[tuple[list[Gateway], Relay]]:
    gateways = [Gateway(tmp_path / site, broker, site) for site in SITES]
    relay = Relay(tmp_path / "relay", broker)
    try:
        await asyncio.gather(*(p.start() for p in [*gateways, relay]))
        yield gateways, relay
    finally:
        await asyncio.gather(*(p.stop() for p in [*gateways, relay]))


async def sites_until(
    ws: ClientWebSocketResponse,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 5.0,
) -> dict[str, Any]:
    """The ``data`` of the first sites message that ``done`` accepts."""
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_json()
            is_sites = message.get("channel") == "sites" and message["type"] == "sites"
            if is_sites and done(message["data"]):
                data: dict[str, Any] = message["data"]
                return data


def settled(data: dict[str, Any]) -> bool:
    """Both sites online, their warnings counted, a reading heard from each."""
    return set(data) == set(SITES) and all(
        s["status"] == "online" and s["summary"] == WARNING and s["last_reading_at"]
        for s in data.values()
    )


async def follow_sites(session: ClientSession, relay: Relay) -> ClientWebSocketResponse:
    ws = await session.ws_connect(relay.url + "/ws")
    await ws.send_json({"action": "subscribe", "channel": "sites"})
    return ws


async def test_a_relay_tells_each_site_and_a_killed_gateway_going_offline(
    fleet: tuple[list[Gateway], Relay],
) -> None:
    gateways, relay = fleet
    async with ClientSession() as session:
        ws = await follow_sites(session, relay)
        await sites_until(ws, settled)
        assert gateways[0].process is not None
        gateways[0].process.send_signal(signal.SIGKILL)  # the broker sends its last will
        data = await sites_until(ws, lambda d: d["EMBALSE_01"]["status"] == "offline")
        await ws.close()
        async with session.get(relay.url + "/api/sites") as response:
            listed = await response.json()
    assert data["EMBALSE_01"]["offline_since"].endswith("Z")  # heard live: the relay's time
    assert data["EMBALSE_02"]["status"] == "online"
    assert listed["EMBALSE_01"]["status"] == "offline"


async def test_a_restarted_relay_rebuilds_the_sites_from_retained_messages_at_once(
    fleet: tuple[list[Gateway], Relay],
) -> None:
    gateways, relay = fleet
    async with ClientSession() as session:
        ws = await follow_sites(session, relay)
        await sites_until(ws, settled)
        await ws.close()
        await relay.stop()
        await gateways[1].stop()  # a clean goodbye while no relay listens: retained "offline"
        await relay.start()
        ws = await follow_sites(session, relay)
        # No gateway publishes anything new about EMBALSE_02: all of it is retained.
        data = await sites_until(
            ws, lambda d: d.get("EMBALSE_02", {}).get("status") == "offline", timeout=3.0
        )
        await ws.close()
    site = data["EMBALSE_02"]
    assert site["summary"] == WARNING
    assert site["last_reading_at"] is not None
    assert site["offline_since"] is None  # told by a retained message: when is not known


async def test_the_python_client_and_watch_follow_the_sites_channel(
    fleet: tuple[list[Gateway], Relay],
) -> None:
    _, relay = fleet
    async with GatewayClient(relay.url, channels=["sites"]) as client:
        async with asyncio.timeout(5):
            async for item in client:
                if isinstance(item, Sites) and settled(
                    {k: v.model_dump() for k, v in item.data.items()}
                ):
                    break
    assert item.channel == "sites"
    watch = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "watch", relay.url, "--channel", "sites",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert watch.stdout is not None
    try:
        async with asyncio.timeout(5):
            while True:
                line = (await watch.stdout.readline()).decode()
                if " sites: " in line:
                    break
    finally:
        watch.send_signal(signal.SIGINT)
        await watch.wait()
    assert "EMBALSE_01 online (critical 0, warning 1, info 0), read " in line
    assert "EMBALSE_02 online" in line
    assert line.split()[1] == "sites"  # the channel column
