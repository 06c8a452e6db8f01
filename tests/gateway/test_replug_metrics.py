"""Counters that add up: each unplug is one ``disconnected``, each reopen one reconnect."""

from __future__ import annotations

import pytest

from simulators.control import RIG
from simulators.rig import Rig
from tests.gateway.alerting import simulate
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import until

CYCLES = 4


@pytest.mark.parametrize(("measurement", "bus"), [("ph", "ph-probe"), ("water_level", "rs485-1")])
async def test_n_unplugs_are_n_disconnects_and_n_reconnects_in_metrics(
    client: Client, measurement: str, bus: str
) -> None:
    status = gateway_of(client).readings.status
    poller = next(p for p in gateway_of(client).pollers if p.name == bus)
    for _ in range(CYCLES):
        await until(lambda: status()[measurement]["quality"] == "good", timeout=5)
        await simulate(client, measurement, {"fault": "unplug"})
        await until(lambda: status()[measurement]["quality"] == "disconnected", timeout=5)
        # Several polls are refused while it is away: none of them counts again.
        refused_from = poller.polls + 3
        await until(lambda: poller.polls >= refused_from, timeout=5)  # noqa: B023
        await simulate(client, measurement, {"fault": None})
    await until(lambda: status()[measurement]["quality"] == "good", timeout=5)

    metrics = await (await client.get("/metrics")).text()
    assert f'gateway_serial_errors_total{{bus="{bus}",kind="disconnected"}} {CYCLES}.0' in metrics
    assert f'gateway_serial_reconnects_total{{bus="{bus}"}} {CYCLES}.0' in metrics


async def test_a_replug_before_the_loss_is_noticed_still_counts_once(client: Client) -> None:
    """Pulled and pushed back between two polls: the old descriptor is dead all the same."""
    rig: Rig = client.app[RIG]
    status = gateway_of(client).readings.status
    await until(lambda: status()["ph"]["quality"] == "good", timeout=5)
    rig.set_fault("ph", "unplug")
    rig.set_fault("ph", None)
    line = next(p.line for p in gateway_of(client).pollers if p.name == "ph-probe")
    await until(lambda: line.counters["reconnects"] == 1, timeout=5)
    await until(lambda: status()["ph"]["quality"] == "good", timeout=5)
    assert line.counters["disconnected"] == 1
