"""The gateway (in this process) with a real Mosquitto: a failure in one part stops no other
part, and ``stop()`` closes the buses and the store whatever failed before."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from gateway.config import load_config
from gateway.service import Gateway
from gateway.startup import resolve_ports
from simulators.rig import Rig
from tests.helpers import until
from tests.mqtt.conftest import Broker, gateway_config, subscriber
from tests.processes import free_port

BASE = "reservoirs/EMBALSE_01"


class DismissBreaks(Gateway):
    """A gateway whose dismissal fails (as when its store cannot commit)."""

    async def dismiss(self, alert_id: str, by: str | None = None) -> bool:
        raise RuntimeError(f"cannot dismiss {alert_id}: the store is gone")


class FlushBreaks(Gateway):
    """A gateway whose last write of the readings fails (a disk that filled up)."""

    async def store_readings(self) -> None:
        raise OSError(28, "No space left on device")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    running = Rig(tmp_path / "by-id", time_scale=0.0)
    await running.start()
    yield running
    await running.stop()


async def started(kind: type[Gateway], tmp_path: Path, url: str, rig: Rig) -> Gateway:
    text = gateway_config(tmp_path / "data", port=free_port(), broker=url)
    (tmp_path / "gateway.toml").write_text(text)
    config = load_config(tmp_path / "gateway.toml")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    gateway = kind(config, ports=resolve_ports(config, rig))
    await gateway.restore()
    await gateway.open_ports()
    await gateway.start()
    return gateway


def closed(gateway: Gateway) -> bool:
    return not gateway.store.is_open and not any(p.line.connected for p in gateway.pollers)


async def test_a_failing_dismissal_does_not_stop_the_uplink(
    tmp_path: Path, broker: Broker, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = await started(DismissBreaks, tmp_path, broker.url, rig)
    try:
        async with subscriber(broker, "test-failures") as client:
            await client.subscribe(f"{BASE}/sensors", qos=1)
            await until(lambda: gateway.uplink is not None and gateway.uplink.sent > 0, 5)
            with caplog.at_level(logging.ERROR, "gateway.mqtt"):
                command = json.dumps({"alert_id": "EMBALSE_01-A-1"})
                await client.publish(f"{BASE}/commands/dismiss", command, qos=1)
                await until(lambda: "dismiss EMBALSE_01-A-1 failed" in caplog.text, 5)
            sent = gateway.uplink.sent if gateway.uplink else 0
            # The uplink carries on: newer readings still reach the broker.
            seqs: list[int] = []
            async with asyncio.timeout(5):
                async for message in client.messages:
                    seqs.append(json.loads(bytes(message.payload))["seq"])  # type: ignore[arg-type]
                    if gateway.uplink is not None and gateway.uplink.sent > sent + 2:
                        break
    finally:
        await gateway.stop()
    assert closed(gateway)
    assert len(seqs) >= 2


async def test_stop_closes_buses_and_store_when_the_broker_is_gone_and_the_disk_full(
    tmp_path: Path, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    gone = f"mqtt://127.0.0.1:{free_port()}"  # nobody listens there
    gateway = await started(FlushBreaks, tmp_path, gone, rig)
    await until(lambda: any(p.polls for p in gateway.pollers), 5)
    with caplog.at_level(logging.ERROR, "gateway.service"):
        await asyncio.wait_for(gateway.stop(), 5)
    assert closed(gateway)
    assert "stopping the store failed" in caplog.text
    assert "No space left on device" in caplog.text


async def test_the_uplink_reconnects_after_the_broker_restarts(
    tmp_path: Path, broker: Broker, rig: Rig
) -> None:
    gateway = await started(Gateway, tmp_path, broker.url, rig)
    try:
        assert gateway.uplink is not None
        uplink = gateway.uplink
        await until(lambda: uplink.connected, 5)
        await broker.stop()
        await until(lambda: not uplink.connected, 5)
        await broker.start()
        await until(lambda: uplink.connected, 8)
        async with aiomqtt.Client("127.0.0.1", port=broker.port) as client:
            await client.subscribe(f"{BASE}/status", qos=1)
            async with asyncio.timeout(5):
                status = await anext(aiter(client.messages))
        assert status.payload == b"online"
    finally:
        await gateway.stop()
    assert closed(gateway)
