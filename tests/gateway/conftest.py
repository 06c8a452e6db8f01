"""A gateway on simulated devices, fast enough for tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.api.server import GATEWAY, build_app
from gateway.config import Config, load_config
from gateway.service import Gateway
from simulators.control import RIG
from simulators.rig import Rig

FAST_CONFIG = """
reservoir_id = "EMBALSE_01"
data_dir = "{data_dir}"

[server]
sensor_interval = {sensor_interval}
heartbeat_interval = {heartbeat_interval}
history = {history}
client_queue = 8
max_message_bytes = 1024
{server_extra}

[[buses]]
name = "ph-probe"
port = "sim://ezo-ph"
protocol = "ezo"
timeout = 0.3
poll_interval = 0.05
  [[buses.sensors]]
  measurement = "ph"

[[buses]]
name = "rs485-1"
port = "sim://modbus"
protocol = "modbus-rtu"
timeout = 0.3
poll_interval = 0.05
  [[buses.sensors]]
  measurement = "water_level"
  unit = 1
  register = 0

[thresholds.ph]
warning_low = 6.0
warning_high = 8.5
critical_high = 9.0
hysteresis = 0.1
delay = {delay}
stale_after = {stale_after}
[thresholds.water_level]
stale_after = {stale_after}

{extra}
"""


def write_config(tmp_path: Path, **overrides: Any) -> Path:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "sensor_interval": 0.1,
        "heartbeat_interval": 0.25,
        "history": 5,
        "stale_after": 5.0,
        "delay": 1,
        "server_extra": "",
        "extra": "",
    }
    values.update(overrides)
    path = tmp_path / "gateway.toml"
    path.write_text(textwrap.dedent(FAST_CONFIG.format(**values)))
    return path


def fast_config(tmp_path: Path, **overrides: Any) -> Config:
    return load_config(write_config(tmp_path, **overrides))


Client = TestClient[web.Request, web.Application]


@pytest.fixture
def make_client(aiohttp_client: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    """Start a simulated gateway (options as in FAST_CONFIG) and return a test client."""

    async def make(server_kwargs: dict[str, Any] | None = None, **overrides: Any) -> Client:
        app = build_app(fast_config(tmp_path, **overrides), simulate=True, sim_time_scale=0.0)
        pin(app[RIG])  # before the start: the very first readings are the pinned values
        client: Client = await aiohttp_client(app, server_kwargs=server_kwargs or {})
        return client

    return make


def pin(rig: Rig) -> None:
    for name, value in {"ph": 7.25, "water_level": 12.5, "temperature": 21.5}.items():
        rig.world.signals[name].set(value)


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> Client:
    client: Client = await make_client()
    return client


def gateway_of(client: Client) -> Gateway:
    return client.app[GATEWAY]
