"""Alerts end to end: a simulated probe crosses a bound, the screen hears it, a kill -9
loses nothing. The gateway runs as a real process with the simulators' real timing."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse

from tests.configs import PH, WATER_LEVEL, bus, gateway_toml, table
from tests.helpers import next_news, until_true
from tests.processes import GatewayProcess


def config_text(data_dir: Path) -> str:
    return gateway_toml(
        data_dir,
        table("server", sensor_interval=1.0),
        bus("ph-probe", "sim://ezo-ph", "ezo", PH, poll_interval=0.5),
        bus("rs485-1", "sim://modbus", "modbus-rtu", WATER_LEVEL, poll_interval=0.2),
        # the simulated water (pH 7.4) is beyond warning_high from the start; delay itself
        # is the engine tests' business: here, speed
        table("thresholds.ph", warning_high=7.0, critical_high=9.0, hysteresis=0.1, delay=1),
        # the simulated level (12.5 m) too
        table("thresholds.water_level", warning_high=11.0, hysteresis=0.05),
    )


class Gateway(GatewayProcess):
    def __init__(self, config: Path) -> None:
        super().__init__(config, args=("--simulate", "--port", "0"))

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    config = tmp_path / "gateway.toml"
    config.write_text(config_text(tmp_path / "data"))
    running = Gateway(config)
    await running.start()
    yield running
    await running.stop()


async def counts(ws: ClientWebSocketResponse, until: dict[str, int]) -> dict[str, Any]:
    """Read alert messages until the counts include ``until``."""
    async with asyncio.timeout(8):
        while True:
            message = await ws.receive_json()
            data = message.get("data", {})
            if message["type"] in ("initial", "update") and data.items() >= until.items():
                return message


async def test_alert_raised_dismissed_and_restored_after_kill_9(gateway: Gateway) -> None:
    async with ClientSession() as session:
        ws_url = gateway.url.replace("http", "ws") + "/ws/alerts"
        async with session.ws_connect(ws_url) as ws:
            await counts(ws, {"warning": 2})  # pH and level both beyond warning_high
            started = time.monotonic()
            await session.put(gateway.url + "/api/simulator/ph", json={"value": 9.6})
            await counts(ws, {"critical": 1, "warning": 1})
            print(f"critical pH on screen {time.monotonic() - started:.2f} s after the PUT")
            alerts = await (await session.get(gateway.url + "/api/alerts")).json()
            by_measurement = {a["measurement"]: a for a in alerts}
            ph_id = by_measurement["ph"]["id"]
            assert by_measurement["ph"]["severity"] == "critical"
            level_id = by_measurement["water_level"]["id"]
            response = await session.post(
                gateway.url + "/alerts/dismiss", json={"alert_id": level_id}
            )
            assert response.status == 200
            dismissed = await next_news(ws)
            assert dismissed == {**dismissed, "type": "dismissed", "alert_id": level_id}
            update = await counts(ws, {"total": 1})
            assert update["seq"] == dismissed["seq"] + 1

    await gateway.kill()  # no shutdown handler runs
    await gateway.start()  # same data_dir
    async with ClientSession() as session:
        alerts = await (await session.get(gateway.url + "/api/alerts")).json()
        assert [a["id"] for a in alerts] == [ph_id]  # back, with its id
        # The level is still beyond its bound, but its dismissal was latched: it stays quiet.

        async def level_polled_again() -> bool:
            health = await (await session.get(gateway.url + "/healthz")).json()
            return int(health["buses"]["rs485-1"]["counters"].get("requests", 0)) >= 5

        await until_true(level_polled_again)
        alerts = await (await session.get(gateway.url + "/api/alerts")).json()
        assert "water_level" not in {a["measurement"] for a in alerts}
        history = await (await session.get(gateway.url + "/api/alerts/history?since=0")).json()
    raised = [e for e in history if e["event"] == "raised"]
    assert [e["measurement"] for e in raised].count("water_level") == 1
    assert len({e["alert_id"] for e in raised}) == len(raised)  # ids never reused
