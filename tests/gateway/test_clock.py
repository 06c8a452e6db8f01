"""A gateway whose wall clock steps (NTP at boot on a box without an RTC): staleness runs
on the monotonic clock, so a step raises nothing and hides nothing. The probes are the
simulators on real ptys; only the wall clock is a fake."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from gateway.service import Gateway
from gateway.startup import resolve_ports
from simulators.rig import Rig
from tests.gateway.conftest import fast_config, pin
from tests.helpers import until

STALE_AFTER = 0.5  # s; the stale check runs every stale_after / 4


@asynccontextmanager
async def running(tmp_path: Path, wall: Callable[[], float]) -> AsyncIterator[tuple[Gateway, Rig]]:
    config = fast_config(tmp_path, stale_after=STALE_AFTER)
    rig = Rig(tmp_path / "by-id", time_scale=0.0)
    pin(rig)
    await rig.start()
    gateway = Gateway(config, ports=resolve_ports(config, rig), clock=wall)
    try:
        await gateway.restore()
        await gateway.open_ports()
        await gateway.start()
        yield gateway, rig
    finally:
        await gateway.stop()
        await rig.stop()


def requests(gateway: Gateway) -> float:
    value = gateway.metrics.registry.get_sample_value(
        "gateway_serial_requests_total", {"bus": "ph-probe"}
    )
    return value or 0.0


async def test_a_wall_clock_that_steps_forward_raises_no_offline(tmp_path: Path) -> None:
    steps = 0

    def wall() -> float:
        """Each reading an hour later than the one before: the worst of NTP steps."""
        nonlocal steps
        steps += 1
        return time.time() + 3600.0 * steps

    async with running(tmp_path, wall) as (gateway, _):
        await until(lambda: gateway.readings.value("ph") is not None)
        start, checked = requests(gateway), steps
        # Good readings keep coming for several stale_after (a dozen stale checks).
        await until(lambda: requests(gateway) >= start + 40, timeout=6.0)
        assert steps > checked  # the fake clock was read: the gateway did stamp things
        assert gateway.readings.value("ph") == 7.25
        assert gateway.active_alerts() == []
        assert gateway.hub.streams["alerts"].seq == 0  # no alert news at all, not even cleared


async def test_a_wall_clock_stepped_back_does_not_hide_a_silent_probe(tmp_path: Path) -> None:
    offset = 0.0
    async with running(tmp_path, lambda: time.time() + offset) as (gateway, rig):
        await until(lambda: gateway.readings.value("ph") is not None)
        offset = -3600.0  # the clock goes back an hour...
        rig.set_fault("ph", "timeout")  # ...and the pH probe falls silent
        await until(lambda: [a["kind"] for a in gateway.active_alerts()] == ["offline"], 4.0)
        (offline,) = gateway.active_alerts()
        assert offline["measurement"] == "ph"
        raised_at = datetime.fromisoformat(offline["raised_at"].replace("Z", "+00:00"))
        assert abs(raised_at.timestamp() - (time.time() - 3600.0)) < 30.0  # stamped: wall clock
