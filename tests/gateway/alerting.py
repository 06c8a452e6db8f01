"""Alerts caused the real way: the simulated probe reads a value, the engine decides.

With the pH bounds of tests/gateway/conftest.py's write_config (warning 6.0 / 8.5,
critical 9.0, delay 1):
"""

from __future__ import annotations

from typing import Any

from tests.gateway.conftest import Client, gateway_of
from tests.helpers import until

ZERO = {"total": 0, "critical": 0, "warning": 0, "info": 0}
WARNING = {"total": 1, "critical": 0, "warning": 1, "info": 0}
CRITICAL = {"total": 1, "critical": 1, "warning": 0, "info": 0}
#: a pH the simulated probe reads -> the counts it leads to
PH = {7.25: ZERO, 4.0: WARNING, 8.7: WARNING, 9.5: CRITICAL}


async def simulate(client: Client, measurement: str, body: dict[str, Any]) -> None:
    """``PUT /api/simulator/<measurement>``, as an operator at the bench would."""
    response = await client.put(f"/api/simulator/{measurement}", json=body)
    assert response.status == 200, await response.text()


async def read_ph(client: Client, value: float) -> dict[str, int]:
    """Set the simulated pH; return once the gateway has told its clients the counts."""
    await simulate(client, "ph", {"value": value})
    gateway = gateway_of(client)
    await until(lambda: gateway.summary == PH[value])
    return PH[value]


async def unplug_ph(client: Client) -> None:
    """The pH probe is unplugged (readings of bad quality: no value for the engine).

    Unplugged rather than silent: a silent circuit that has not started yet takes its
    whole start-up sequence and retries to say so, an unplugged port says it at once."""
    await simulate(client, "ph", {"fault": "unplug"})
    readings = gateway_of(client).readings
    await until(lambda: readings.status()["ph"]["quality"] == "disconnected", timeout=5)


async def active_id(client: Client) -> str:
    """The id of the one active alert, from the REST API."""
    [alert] = await (await client.get("/api/alerts")).json()
    return str(alert["id"])
