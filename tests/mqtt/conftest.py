"""A real Mosquitto on a free loopback port, and gateways that publish to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from bench.loopback import Broker, mosquitto_installed
from tests.configs import WATER_LEVEL, bus, gateway_toml, table
from tests.processes import GatewayProcess, free_port

if not mosquitto_installed():
    pytest.skip(
        "mosquitto is not installed (apt-get install mosquitto; .ci/run does it)",
        allow_module_level=True,
    )

__all__ = ["Broker"]


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    running = Broker(tmp_path / "broker")
    await running.start()
    yield running
    await running.stop()


def gateway_config(
    data_dir: Path, *, port: int, broker: str, reservoir: str = "EMBALSE_01", **mqtt: Any
) -> str:
    """A gateway on the simulated water level, publishing to ``broker``; ``mqtt`` adds
    keys to its [mqtt] table."""
    return gateway_toml(
        data_dir,
        table("server", port=port, sensor_interval=0.2),
        table("mqtt", url=broker, **mqtt),
        bus("rs485-1", "sim://modbus", "modbus-rtu", WATER_LEVEL, poll_interval=0.1),
        # the simulated level (12.5 m) is beyond warning_high from the start
        table("thresholds.water_level", warning_high=11.0, hysteresis=0.05),
        reservoir_id=reservoir,
    )


class Gateway(GatewayProcess):
    """A gateway process on gateway_config; ``mqtt`` adds keys to its [mqtt] table."""

    def __init__(
        self, directory: Path, broker: Broker, reservoir: str = "EMBALSE_01", **mqtt: Any
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = directory / "gateway.toml"
        config.write_text(
            gateway_config(
                directory / "data", port=self.port, broker=broker.url, reservoir=reservoir, **mqtt
            )
        )
        super().__init__(config)


def subscriber(broker: Broker, identifier: str) -> aiomqtt.Client:
    """A client with a persistent session: what is published while it is away waits for it."""
    return aiomqtt.Client(
        "127.0.0.1", port=broker.port, identifier=identifier, clean_session=False, timeout=5
    )


class Relay(GatewayProcess):
    """``sensor-gateway relay``; ``server`` and ``extra`` add to its [server] table and
    the end of its config."""

    def __init__(self, directory: Path, broker: Broker, server: str = "", extra: str = "") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = directory / "relay.toml"
        config.write_text(
            f'[server]\nport = {self.port}\n{server}\n[mqtt]\nurl = "{broker.url}"\n{extra}\n'
        )
        super().__init__(config, command="relay", args=())
