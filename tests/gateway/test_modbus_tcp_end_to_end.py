"""A gateway reading a Modbus TCP device (a turbidity transmitter, a pump coil and a
float switch) next to its serial buses, streamed on /ws/sensors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from simulators.modbus_tcp import ModbusTcpDevice
from tests.configs import bus
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import modbus_tcp_device


@pytest.fixture
async def plc() -> AsyncIterator[ModbusTcpDevice]:
    async with modbus_tcp_device(
        "plc", seed=11, turbidity=3.25, pump=1.0, float_switch=0.0
    ) as device:
        yield device


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
    tcp_bus = bus(
        "plc-1",
        plc.port.address,
        "modbus-tcp",
        {"measurement": "turbidity", "unit": 1, "register": 0},
        {"measurement": "pump", "unit": 2, "register": 0, "register_type": "coil"},
        {"measurement": "float_switch", "unit": 2, "register": 0, "register_type": "discrete"},
        timeout=0.3,
        poll_interval=0.05,
    )
    client: Client = await make_client(extra=tcp_bus)

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
