"""The fan-out benchmark still runs: the gateway, 20 load clients, 3 updates (a smoke test)."""

from __future__ import annotations

import pytest

from bench import fanout


@pytest.mark.timeout(30)
async def test_every_load_client_gets_every_update_from_the_gateway() -> None:
    figures = await fanout.smoke(clients=20, updates=3)
    assert figures["healthy"] == 20
    assert figures["deliveries"] == 20 * 3
    assert figures["complete_share"] == 1.0
    assert figures["latency_ms_p50"] is not None
