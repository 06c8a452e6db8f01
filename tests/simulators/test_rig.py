"""The simulated devices and their control API, seen from outside."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from drivers import ezo
from simulators.control import control_app
from simulators.rig import LINK_NAMES, Rig
from simulators.world import Signal, World


@pytest.fixture
async def client(rig: Rig) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(control_app(rig), host="127.0.0.1")) as test_client:
        yield test_client


async def test_every_device_is_a_pty_behind_a_stable_link(rig: Rig, tmp_path: Path) -> None:
    for name, link_name in LINK_NAMES.items():
        port = rig.devices[name].port
        assert port.link == tmp_path / "by-id" / link_name
        target = await asyncio.to_thread(os.readlink, port.link)
        assert target == port.path
        assert port.path is not None
        assert port.path.startswith("/dev/pts/")
    lines = rig.summary()
    assert len(lines) == 7
    assert [str(tmp_path) in line for line in lines] == [True] * 6 + [False]  # a socket: no link
    assert "tcp://127.0.0.1:" in lines[-1]


async def test_unplug_removes_the_link_and_replug_restores_it(rig: Rig) -> None:
    port = rig.devices["ezo-ec"].port
    rig.set_fault("conductivity", "unplug")
    assert not port.plugged
    assert port.link is not None
    assert not await asyncio.to_thread(port.link.exists)
    rig.set_fault("conductivity", None)
    assert port.plugged
    assert await asyncio.to_thread(os.readlink, port.link) == port.path


async def test_ezo_circuit_boots_streaming_readings(rig: Rig) -> None:
    """Like the real circuits, the simulator is in continuous mode until told C,0."""
    port = rig.devices["ezo-ph"].port
    fd = await asyncio.to_thread(os.open, port.address, os.O_RDWR | os.O_NOCTTY)
    try:
        data = await asyncio.wait_for(asyncio.to_thread(os.read, fd, 64), 2.0)
    finally:
        os.close(fd)
    first = data.split(ezo.CR)[0].decode()
    assert float(first) == pytest.approx(7.25)


async def test_modbus_units_hear_only_their_address(rig: Rig) -> None:
    from drivers.modbus_rtu import ReadRequest, frame

    rig.modbus.received(frame(ReadRequest(9, 4, 0, 1)))  # nobody at 9
    rig.modbus.received(frame(ReadRequest(2, 4, 0, 1)))
    assert rig.modbus.units[2].requests == 1
    assert rig.modbus.units[1].requests == 0


def test_signals_wander_near_their_setpoint() -> None:
    world = World(seed=3)
    samples = [world.value("ph", t) for t in range(0, 1200, 10)]
    assert min(samples) > 7.0
    assert max(samples) < 7.8
    assert max(samples) - min(samples) > 0.05  # it does move
    signal = Signal(5.0, drift=1.0, noise=0.1)
    signal.set(6.5)
    assert {signal.sample(t, world.rng) for t in (0.0, 17.0, 300.0)} == {6.5}


async def test_put_value(client: TestClient[object, object], rig: Rig) -> None:
    response = await client.put("/api/simulator/ph", json={"value": 4.2})
    assert response.status == 200
    assert await response.json() == {"target": "ph", "value": 4.2}
    assert rig.world.value("ph", 0.0) == 4.2


async def test_put_fault_and_clear(client: TestClient[object, object], rig: Rig) -> None:
    response = await client.put("/api/simulator/water_level", json={"fault": "timeout"})
    assert response.status == 200
    assert rig.modbus.units[1].fault == "timeout"
    assert rig.modbus.units[2].fault is None
    response = await client.put("/api/simulator/water_level", json={"fault": None})
    assert response.status == 200
    assert rig.modbus.units[1].fault is None


async def test_put_unplug_by_device_name(client: TestClient[object, object], rig: Rig) -> None:
    response = await client.put("/api/simulator/modbus-2", json={"fault": "unplug"})
    assert response.status == 200
    assert not rig.modbus.port.plugged  # the adapter carries every unit
    await client.put("/api/simulator/modbus-2", json={"fault": None})
    assert rig.modbus.port.plugged


@pytest.mark.parametrize(
    ("target", "body", "status", "fragment"),
    [
        ("chlorine", {"value": 1}, 404, "chlorine"),
        ("modbus-tcp", {"fault": "crc"}, 422, "no CRC"),
        ("ezo-ph", {"probe": {"colour": 1}}, 422, "colour"),
        ("modbus", {"probe": {"offset": 1}}, 422, "not an EZO circuit"),
        ("ph", {"fault": "melted"}, 422, "fault"),
        ("ph", {"value": "high"}, 422, "value"),
        ("ph", {"colour": "blue"}, 422, "colour"),
        ("ph", {}, 422, "expected"),
        ("ph", [1, 2], 422, "body"),
        ("ezo-ph", {"value": 3}, 422, "measurement"),
    ],
)
async def test_bad_requests_say_what_was_wrong(
    client: TestClient[object, object],
    target: str,
    body: object,
    status: int,
    fragment: str,
) -> None:
    response = await client.put(f"/api/simulator/{target}", json=body)
    assert response.status == status
    payload = await response.json()
    assert fragment in payload["detail"]


async def test_not_json_is_refused(client: TestClient[object, object]) -> None:
    response = await client.put("/api/simulator/ph", data=b"{value: 4")
    assert response.status == 422
    assert (await response.json())["error"] == "invalid_body"


async def test_listing(client: TestClient[object, object]) -> None:
    response = await client.get("/api/simulator")
    payload = await response.json()
    assert [d["name"] for d in payload["devices"]] == [
        "ezo-ph", "ezo-ec", "ezo-rtd", "ezo-do", "ezo-orp", "modbus", "modbus-tcp",
    ]  # fmt: skip
    assert payload["setpoints"]["ph"] == 7.25
