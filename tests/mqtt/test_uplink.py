"""The gateway's MQTT uplink against a real Mosquitto: topics, outages, kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiohttp import ClientSession

from tests.mqtt.conftest import Broker, Gateway, subscriber

BASE = "reservoirs/EMBALSE_01"


class Collector:
    """Everything published under ``reservoirs/#``, reconnecting when the broker goes."""

    def __init__(self, broker: Broker, identifier: str = "test-collector") -> None:
        self.broker, self.identifier = broker, identifier
        self.messages: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        self._task = asyncio.create_task(self._run(), name="test.mqtt-collector")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with subscriber(self.broker, self.identifier) as client:
                    await client.subscribe("reservoirs/#", qos=1)
                    async for message in client.messages:
                        payload = bytes(message.payload)  # type: ignore[arg-type]
                        try:
                            body: Any = json.loads(payload)
                        except (ValueError, RecursionError):  # not JSON: the tests' garbage
                            body = payload.decode(errors="replace")
                        self.messages.append((str(message.topic), body))
                        self.arrived.set()
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    def on(self, topic: str) -> list[Any]:
        return [body for t, body in self.messages if t == f"{BASE}/{topic}"]

    async def until(self, condition: Callable[[], bool], timeout: float = 6.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self.arrived.clear()
                await self.arrived.wait()


def sensor_seqs(collector: Collector) -> list[int]:
    return [m["seq"] for m in collector.on("sensors")]


def contiguous(seqs: list[int]) -> bool:
    """In order with no gap; QoS 1 may repeat a message, never skip one."""
    unique = [s for i, s in enumerate(seqs) if i == 0 or s != seqs[i - 1]]
    return unique == list(range(unique[0], unique[0] + len(unique)))


@pytest.fixture
async def gateway(tmp_path: Path, broker: Broker) -> AsyncIterator[Gateway]:
    running = Gateway(tmp_path / "gw", broker)
    yield running
    await running.stop()


async def test_readings_and_events_on_the_documented_topics(
    broker: Broker, gateway: Gateway
) -> None:
    async with Collector(broker) as collector:
        await gateway.start()
        await collector.until(
            lambda: bool(collector.on("alerts/events")) and len(collector.on("sensors")) >= 2
        )
    assert "online" in collector.on("status")
    async with ClientSession() as http, http.get(gateway.url + "/healthz") as response:
        uplink = (await response.json())["mqtt"]
    assert uplink["connected"] is True
    assert uplink["sent"] >= 3
    sensors = collector.on("sensors")[-1]
    assert sensors["type"] == "sensor_update"
    assert sensors["data"]["water_level"] == pytest.approx(12.5, abs=0.5)
    assert sensors["data"]["reservoir_id"] == "EMBALSE_01"
    raised = collector.on("alerts/events")[0]
    assert raised["event"] == "raised"
    assert raised["alert"]["measurement"] == "water_level"
    assert raised["alert"]["severity"] == "warning"
    update = collector.on("alerts")[-1]
    assert update["type"] == "update"
    assert update["data"]["warning"] == 1


async def test_retained_state_and_last_will(broker: Broker, gateway: Gateway) -> None:
    async with Collector(broker) as collector:
        await gateway.start()
        await collector.until(
            lambda: bool(collector.on("alerts")) and bool(collector.on("sensors"))
        )
    await gateway.stop(signal.SIGKILL)  # no goodbye: the broker sends the will
    async with Collector(broker, "latecomer") as late:
        await late.until(
            lambda: (
                "offline" in late.on("status")
                and bool(late.on("sensors"))
                and bool(late.on("alerts"))
            )
        )
    assert late.on("alerts")[-1]["data"]["total"] == 1  # the retained summary


async def test_a_broker_outage_loses_nothing(broker: Broker, gateway: Gateway) -> None:
    async with Collector(broker) as collector, ClientSession() as http:
        await gateway.start()
        await collector.until(
            lambda: len(collector.on("sensors")) >= 3 and bool(collector.on("alerts/events"))
        )
        before = max(sensor_seqs(collector))
        await broker.stop()
        # Readings keep coming while the broker is away, and an alert clears.
        await http.put(gateway.url + "/api/simulator/water_level", json={"value": 10.0})
        await asyncio.sleep(3.0)  # the outage itself: time has to pass
        await broker.start()
        await collector.until(
            lambda: (
                max(sensor_seqs(collector)) >= before + 15
                and any(e["event"] == "cleared" for e in collector.on("alerts/events"))
            ),
            timeout=8,
        )
    assert contiguous(sensor_seqs(collector))
    assert [e["event"] for e in collector.on("alerts/events")] == ["raised", "cleared"]


async def test_a_kill_9_during_an_outage_loses_nothing_committed(
    broker: Broker, gateway: Gateway
) -> None:
    async with Collector(broker) as collector:
        await gateway.start()
        await collector.until(lambda: len(collector.on("sensors")) >= 2)
        before = max(sensor_seqs(collector))
        await broker.stop()
        await asyncio.sleep(1.5)  # readings pile up in the outbox on disk
        await gateway.stop(signal.SIGKILL)
        await broker.start()
        await gateway.start()  # same data_dir: the outbox drains
        await collector.until(lambda: sensor_seqs(collector)[-1] < before, timeout=8)
        await asyncio.sleep(0.5)  # let the drained backlog and the new run interleave
    seqs = sensor_seqs(collector)
    first_run = seqs[: next(i for i in range(1, len(seqs)) if seqs[i] < seqs[i - 1])]
    assert contiguous(first_run)
    assert first_run[-1] >= before + 5  # what piled up during the outage came through
