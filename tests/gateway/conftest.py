"""A gateway on simulated devices, fast enough for tests."""

from __future__ import annotations

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
from tests.configs import PH, WATER_LEVEL, bus, gateway_toml, table


def write_config(
    tmp_path: Path,
    *,
    data_dir: Path | None = None,
    sensor_interval: float = 0.1,
    heartbeat_interval: float = 0.25,
    history: int = 5,
    stale_after: float = 5.0,
    delay: int = 1,
    server_extra: str = "",
    extra: str = "",
) -> Path:
    """The fast config: a pH probe and a water level, polled quickly. ``server_extra`` is
    raw TOML added to [server], ``extra`` raw TOML at the end."""
    fast = {"timeout": 0.3, "poll_interval": 0.05}
    path = tmp_path / "gateway.toml"
    path.write_text(
        gateway_toml(
            data_dir or tmp_path / "data",
            table(
                "server",
                sensor_interval=sensor_interval,
                heartbeat_interval=heartbeat_interval,
                history=history,
                client_queue=8,
                max_message_bytes=1024,
            )
            + server_extra,
            bus("ph-probe", "sim://ezo-ph", "ezo", PH, **fast),
            bus("rs485-1", "sim://modbus", "modbus-rtu", WATER_LEVEL, **fast),
            table(
                "thresholds.ph",
                warning_low=6.0,
                warning_high=8.5,
                critical_high=9.0,
                hysteresis=0.1,
                delay=delay,
                stale_after=stale_after,
            ),
            table("thresholds.water_level", stale_after=stale_after),
            extra,
            reservoir_id="EMBALSE_01",
        )
    )
    return path


def fast_config(tmp_path: Path, **overrides: Any) -> Config:
    return load_config(write_config(tmp_path, **overrides))


Client = TestClient[web.Request, web.Application]


@pytest.fixture
def make_client(aiohttp_client: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    """Start a simulated gateway (options as in write_config) and return a test client."""

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
