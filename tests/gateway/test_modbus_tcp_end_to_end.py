"""A gateway reading a Modbus TCP device (a turbidity transmitter, a pump coil and a
float switch) next to its serial buses, streamed on /ws/sensors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from simulators.modbus_tcp import ModbusTcpDevice, default_tcp_units
from simulators.world import World
from tests.gateway.conftest import Client, gateway_of

TCP_BUS = """
[[buses]]
name = "plc-1"
port = "{address}"
protocol = "modbus-tcp"
timeout = 0.3
poll_interval = 0.05
  [[buses.sensors]]
  measurement = "turbidity"
  unit = 1
  register = 0
  [[buses.sensors]]
  measurement = "pump"
  unit = 2
  register = 0
  register_type = "coil"
  [[buses.sensors]]
  measurement = "float_switch"
  unit = 2
  register = 0
  register_type = "discrete"
"""


@pytest.fixture
async def plc() -> AsyncIterator[ModbusTcpDevice]:
    world = World(seed=11)
    device = ModbusTcpDevice("plc", world, default_tcp_units(), time_scale=0.0)
    for name, value in {"turbidity": 3.25, "pump": 1.0, "float_switch": 0.0}.items():
        world.signals[name].set(value)
    await device.start()
    try:
        yield device
    finally:
        await device.stop()


async def next_update(ws: Any, want: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first sensor_update whose data satisfies ``want`` (the stream ticks every 0.1 s)."""
    for _ in range(50):
        message = await ws.receive_json(timeout=2)
        if message["type"] == "sensor_update" and want(message["data"]):
            return dict(message["data"])
    raise AssertionError("no sensor_update with the wanted values in 50 messages")


async def test_modbus_tcp_points_stream_with_the_serial_ones(
    make_client: Callable[..., Any], plc: ModbusTcpDevice
) -> None:
    client: Client = await make_client(extra=TCP_BUS.format(address=plc.port.address))

    async with client.ws_connect("/ws/sensors") as ws:
        data = await next_update(ws, lambda d: None not in (d["turbidity"], d["ph"]))
        assert data["turbidity"] == 3.25
        assert (data["pump"], data["float_switch"]) == (1, 0)
        assert data["ph"] == 7.25  # the EZO bus still streams
        for seed_key in ("temperature", "ph", "conductivity", "water_level", "reservoir_id"):
            assert seed_key in data  # the seed's keys stay, null when not configured
        assert data["conductivity"] is None

        plc.world.signals["pump"].set(0.0)
        plc.world.signals["float_switch"].set(1.0)
        data = await next_update(ws, lambda d: d.get("pump") == 0)
        assert data["float_switch"] == 1

    poller = next(p for p in gateway_of(client).pollers if p.name == "plc-1")
    health = poller.health()
    assert (health["state"], health["protocol"]) == ("connected", "modbus-tcp")
    assert poller.line.counters["requests"] >= 3
