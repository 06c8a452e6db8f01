"""A real Mosquitto on a free loopback port, and gateways that publish to it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from tests.processes import GatewayProcess, free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
if not Path(MOSQUITTO).exists():
    pytest.skip(
        "mosquitto is not installed (apt-get install mosquitto; .ci/run does it)",
        allow_module_level=True,
    )


class Broker:
    """Mosquitto with persistence, so it can be stopped and started like a real one."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {directory}/\n"
            "log_dest none\nmax_queued_messages 100000\n"
        )
        self.process: asyncio.subprocess.Process | None = None
        self.url = f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            MOSQUITTO, "-c", str(self.config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(5):
            while True:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.close()
                    await writer.wait_closed()
                    return
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 5)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    running = Broker(tmp_path / "broker")
    await running.start()
    yield running
    await running.stop()


GATEWAY_CONFIG = """
reservoir_id = "{reservoir}"
data_dir = "{data_dir}"
[server]
port = {port}
sensor_interval = 0.2
[mqtt]
url = "{broker}"
[[buses]]
name = "rs485-1"
port = "sim://modbus"
protocol = "modbus-rtu"
poll_interval = 0.1
  [[buses.sensors]]
  measurement = "water_level"
  unit = 1
  register = 0
[thresholds.water_level]
warning_high = 11.0    # the simulated level (12.5 m) is beyond it from the start
hysteresis = 0.05
"""


class Gateway(GatewayProcess):
    def __init__(self, directory: Path, broker: Broker, reservoir: str = "EMBALSE_01") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = directory / "gateway.toml"
        config.write_text(
            GATEWAY_CONFIG.format(
                reservoir=reservoir, data_dir=directory / "data", port=self.port, broker=broker.url
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

    def log(self) -> str:
        return (self.cwd / "relay.log").read_text(errors="replace")
