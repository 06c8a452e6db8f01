"""Home Assistant MQTT discovery against a real Mosquitto: the configs are retained, and
the topics they name carry the values (read the way Home Assistant reads them)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from tests.mqtt.conftest import Broker, Gateway, subscriber

TEMPLATE = re.compile(r"\{\{ value_json((?:\.[a-z][a-z0-9_]*)+) \}\}")


async def retained(broker: Broker, pattern: str, quiet: float = 0.5) -> dict[str, Any]:
    """What the broker holds retained under ``pattern``: it sends those at once on
    subscribe, so a short quiet spell after the last one means all have come."""
    found: dict[str, Any] = {}
    async with subscriber(broker, f"test-retained-{len(pattern)}") as client:
        await client.subscribe(pattern, qos=1)
        while True:
            try:
                async with asyncio.timeout(quiet):
                    message = await anext(aiter(client.messages))
            except TimeoutError:
                return found
            if message.retain:
                found[str(message.topic)] = json.loads(bytes(message.payload))  # type: ignore[arg-type]


async def first_on(broker: Broker, topic: str) -> bytes:
    async with subscriber(broker, "test-state") as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(client.messages))
    return bytes(message.payload)  # type: ignore[arg-type]


async def templated_values(broker: Broker, config: dict[str, Any]) -> AsyncIterator[Any]:
    """Each message on the config's state_topic, read through its value_template."""
    async with subscriber(broker, "test-values") as client:
        await client.subscribe(config["state_topic"], qos=1)
        async for message in client.messages:
            yield apply_template(config["value_template"], bytes(message.payload))  # type: ignore[arg-type]


def apply_template(template: str, payload: bytes) -> Any:
    """Home Assistant's ``{{ value_json.a.b }}``: the JSON payload, then each key."""
    match = TEMPLATE.fullmatch(template)
    assert match, template
    value: Any = json.loads(payload)
    for key in match.group(1).strip(".").split("."):
        value = value[key]
    return value


@pytest.fixture
async def discovering(tmp_path: Path, broker: Broker) -> AsyncIterator[Gateway]:
    running = Gateway(tmp_path / "gw", broker, discovery=True)
    await running.start()
    yield running
    await running.stop()


async def test_discovery_configs_are_retained_and_name_topics_that_carry_values(
    discovering: Gateway, broker: Broker
) -> None:
    async with asyncio.timeout(8):
        while not (configs := await retained(broker, "homeassistant/#")):
            pass
    assert list(configs) == ["homeassistant/sensor/EMBALSE_01_water_level/config"]
    config = configs["homeassistant/sensor/EMBALSE_01_water_level/config"]
    assert config["unique_id"] == "EMBALSE_01_water_level"
    assert config["unit_of_measurement"] == "m"
    assert config["device_class"] == "distance"
    assert config["device"]["identifiers"] == ["sensor-gateway-EMBALSE_01"]
    async with ClientSession() as http:  # the probe reads 4.2 m: the topic must say so
        response = await http.put(
            discovering.url + "/api/simulator/water_level", json={"value": 4.2}
        )
        assert response.status == 200
    async with asyncio.timeout(5):
        async for value in templated_values(broker, config):
            if value == pytest.approx(4.2, abs=0.01):
                break
    status = await first_on(broker, config["availability_topic"])
    assert status.decode() == config["payload_available"] == "online"


async def test_without_discovery_nothing_is_published_for_home_assistant(
    tmp_path: Path, broker: Broker
) -> None:
    running = Gateway(tmp_path / "gw", broker, discovery=False)
    await running.start()
    try:
        await first_on(broker, "reservoirs/EMBALSE_01/sensors")  # it is up and publishing
        assert await retained(broker, "homeassistant/#") == {}
    finally:
        await running.stop()
