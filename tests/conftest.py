"""Shared fixtures: real ptys through the simulator rig, and a guard against leaked tasks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.rig import Rig
from simulators.world import World


@pytest.fixture(autouse=True)
def no_gateway_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests load configurations from their own files: a GATEWAY_* variable of the shell
    running pytest must not change them. A test sets its own with ``monkeypatch.setenv``."""
    for name in list(os.environ):
        if name.upper().startswith("GATEWAY_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks running behind it."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    left = [
        t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()
    ]
    for task in left:
        task.cancel()
    assert not left, f"tasks left running: {[t.get_name() for t in left]}"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """The default simulated devices, answering at once (no processing delays).

    Values are pinned (no drift, no noise) so tests can assert exact readings;
    each device is reachable under ``tmp_path/by-id/<stable link>``.
    """
    world = World(seed=7)
    for name, value in {"ph": 7.25, "conductivity": 466.4, "temperature": 21.5}.items():
        world.signals[name].set(value)
    world.signals["water_level"].set(12.5)
    sim = Rig(tmp_path / "by-id", world=world, time_scale=0.0, continuous_interval=0.02)
    await sim.start()
    yield sim
    await sim.stop()
