"""A gateway whose buses read the simulator's devices through their by-id links,
so that a test can start a device after the gateway (an adapter that enumerates late)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.rig import LINK_NAMES, Rig
from simulators.world import World
from tests.configs import CONDUCTIVITY, PH, bus, gateway_toml, table


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
    """A pH and a conductivity probe on the simulator's by-id links (or ``text`` as it is)."""
    ph, ec = (tmp_path / "by-id" / LINK_NAMES[device] for device in ("ezo-ph", "ezo-ec"))
    path = tmp_path / "gateway.toml"
    path.write_text(
        text
        if text is not None
        else gateway_toml(
            tmp_path / "data",
            table("server", sensor_interval=0.1, heartbeat_interval=0.5),
            bus("ph-probe", ph, "ezo", PH, timeout=0.3, poll_interval=0.05),
            bus("ec-probe", ec, "ezo", CONDUCTIVITY, timeout=0.3, poll_interval=0.05),
            table("thresholds.ph", warning_low=6.0, warning_high=ph_high, delay=1, stale_after=5.0),
            table("thresholds.conductivity", stale_after=5.0),
            reservoir_id="EMBALSE_01",
        )
    )
    return path
