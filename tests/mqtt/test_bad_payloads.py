"""Garbage on the broker, live and retained: the relay and the uplink log it and carry on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiomqtt
from aiohttp import ClientSession

from tests.helpers import until_true
from tests.mqtt.conftest import Broker, Gateway
from tests.mqtt.test_relay import Relay
from tests.mqtt.test_uplink import BASE, Collector

DEEP = b"[" * 20_000 + b"]" * 20_000
GARBAGE = [b"[]", b"42", b'{"data": 5}', b"\xff\xfe not utf-8", DEEP, b'{"seq": NaN}', b"", b"null"]
KINDS = ("sensors", "alerts", "alerts/active", "alerts/events", "status")


def sensor_update(seq: int, level: float) -> bytes:
    message = {
        "type": "sensor_update",
        "seq": seq,
        "timestamp": f"2030-01-01T00:00:{seq:02d}.000Z",
        "data": {"water_level": level, "reservoir_id": "EMBALSE_07"},
    }
    return json.dumps(message).encode()


async def publish(broker: Broker, messages: list[tuple[str, bytes]], *, retain: bool) -> None:
    async with aiomqtt.Client("127.0.0.1", port=broker.port, identifier="test-vandal") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1, retain=retain)


async def latest_level(session: ClientSession, relay: Relay) -> Any:
    async with session.get(relay.url + "/api/sensors/latest?reservoir=EMBALSE_07") as response:
        return (await response.json()).get("water_level") if response.status == 200 else None


async def test_a_relay_serves_on_through_garbage_live_and_retained(
    tmp_path: Path, broker: Broker
) -> None:
    # One retained bad payload on every topic a relay reads, for a site of its own each.
    retained = [
        (f"reservoirs/BAD_{i}/{kind}", payload)
        for i, payload in enumerate(GARBAGE)
        for kind in KINDS
    ]
    await publish(broker, retained, retain=True)
    relay = Relay(tmp_path / "relay", broker)
    await relay.start()
    try:
        async with ClientSession() as session:
            live = [(f"reservoirs/EMBALSE_07/{kind}", p) for p in GARBAGE for kind in KINDS]
            await publish(broker, live, retain=False)
            await publish(broker, [("reservoirs/EMBALSE_07/sensors", sensor_update(1, 3.5))],
                          retain=True)  # fmt: skip
            await until_true(lambda: _is(latest_level(session, relay), 3.5), timeout=6)
            # A relay restarted now gets every retained bad payload again, at once.
            await relay.stop()
            await relay.start()
            await until_true(lambda: _is(latest_level(session, relay), 3.5), timeout=6)
            await publish(broker, [("reservoirs/EMBALSE_07/sensors", sensor_update(2, 4.5))],
                          retain=False)  # fmt: skip
            await until_true(lambda: _is(latest_level(session, relay), 4.5), timeout=6)
            async with session.get(relay.url + "/api/sites") as response:
                sites = await response.json()
    finally:
        await relay.stop()
    # Garbage made no site (an empty array is a valid alerts/active: BAD_0 has no alerts).
    assert set(sites) == {"EMBALSE_07", "BAD_0"}
    log = relay.log()
    assert "Traceback" not in log
    warnings = [line for line in log.splitlines() if "WARNING" in line and "ignored" in line]
    assert any("reservoirs/BAD_0/sensors: the message: expected a JSON object" in w
               for w in warnings)  # fmt: skip
    assert any("BAD_3/alerts: not UTF-8" in w for w in warnings)
    assert any("nested deeper" in w for w in warnings)
    assert all(len(w) < 300 for w in warnings)  # one short line each


async def _is(value: Any, expected: float) -> bool:
    return bool(await value == expected)


async def test_the_uplink_takes_commands_after_garbage(tmp_path: Path, broker: Broker) -> None:
    gateway = Gateway(tmp_path / "gw", broker)
    async with Collector(broker) as collector:
        await gateway.start()
        try:
            await collector.until(lambda: bool(collector.on("alerts/events")))
            alert = collector.on("alerts/events")[0]["alert"]
            topic = f"{BASE}/commands/dismiss"
            bad = [(topic, p) for p in GARBAGE]
            bad += [(topic, b'{"alert_id": "\\ud800"}'), (f"{BASE}/commands/reboot", b"{}")]
            await publish(broker, bad, retain=False)
            await publish(broker, [(topic, DEEP)], retain=True)
            command = json.dumps({"alert_id": alert["id"], "by": "test"}).encode()
            await publish(broker, [(topic, command)], retain=False)
            await collector.until(
                lambda: any(e["event"] == "dismissed" for e in collector.on("alerts/events"))
            )
        finally:
            await publish(broker, [(f"{BASE}/commands/dismiss", b"")], retain=True)  # unretain
            assert await gateway.stop() == 0
    log = gateway.log()
    assert "Traceback" not in log
    assert f"MQTT: ignored {BASE}/commands/dismiss: nested deeper" in log
    assert f"MQTT: ignored {BASE}/commands/reboot: not a command" in log
