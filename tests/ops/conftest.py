"""A gateway whose buses read the simulator's devices through their by-id links,
so that a test can start a device after the gateway (an adapter that enumerates late)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.rig import LINK_NAMES, Rig
from simulators.world import World

CONFIG = """
reservoir_id = "EMBALSE_01"
data_dir = "{data_dir}"

[server]
sensor_interval = 0.1
heartbeat_interval = 0.5

[[buses]]
name = "ph-probe"
port = "{ph}"
protocol = "ezo"
timeout = 0.3
poll_interval = 0.05
  [[buses.sensors]]
  measurement = "ph"

[[buses]]
name = "ec-probe"
port = "{ec}"
protocol = "ezo"
timeout = 0.3
poll_interval = 0.05
  [[buses.sensors]]
  measurement = "conductivity"

[thresholds.ph]
warning_low = 6.0
warning_high = {ph_high}
delay = 1
stale_after = 5.0
[thresholds.conductivity]
stale_after = 5.0
"""


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """The simulated devices, answering at once, not yet started (start each one)."""
    world = World(seed=7)
    world.signals["ph"].set(7.25)
    world.signals["conductivity"].set(466.4)
    world.signals["temperature"].set(21.5)
    sim = Rig(tmp_path / "by-id", world=world, time_scale=0.0, continuous_interval=0.02)
    yield sim
    await sim.stop()


def write_config(tmp_path: Path, *, ph_high: float = 8.5, text: str | None = None) -> Path:
    links = tmp_path / "by-id"
    path = tmp_path / "gateway.toml"
    path.write_text(
        text
        if text is not None
        else CONFIG.format(
            data_dir=tmp_path / "data",
            ph=links / LINK_NAMES["ezo-ph"],
            ec=links / LINK_NAMES["ezo-ec"],
            ph_high=ph_high,
        )
    )
    return path
