"""SIGHUP on a real `sensor-gateway run`: a changed threshold raises its alert on the
WebSocket a client already holds; a broken file changes nothing."""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from gateway.api.server import GATEWAY, build_app
from gateway.config import load_config
from simulators.rig import Rig
from tests.helpers import next_news, next_of, until, until_true
from tests.ops.conftest import write_config
from tests.processes import GatewayProcess


@pytest.fixture
async def gateway(rig: Rig, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    await rig.start()
    process = GatewayProcess(write_config(tmp_path), args=["--port", "0"])
    await process.start()
    yield process
    await process.stop()


async def reloads(session: ClientSession, url: str, result: str) -> float:
    async with session.get(url + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(f'gateway_config_reloads_total{{result="{result}"}}'):
            return float(line.split()[-1])
    raise AssertionError("no gateway_config_reloads_total")


async def test_sighup_applies_a_threshold_to_a_connected_client_and_a_bad_file_changes_nothing(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    assert gateway.process is not None
    url = gateway.url
    ws_url = url.replace("http", "ws") + "/ws/alerts"
    async with ClientSession() as session, session.ws_connect(ws_url) as ws:
        initial = await ws.receive_json(timeout=5)
        assert initial["type"] == "initial"
        assert initial["data"]["warning"] == 0  # pH 7.25 under warning_high 8.5

        write_config(tmp_path, ph_high=7.0)
        gateway.process.send_signal(signal.SIGHUP)
        update = await next_of(ws, "update", timeout=5.0)  # the same connection: no reconnect
        assert update["data"]["warning"] == 1
        async with session.get(url + "/api/alerts") as response:
            [alert] = await response.json()
        assert (alert["measurement"], alert["bound"]) == ("ph", 7.0)

        path = write_config(tmp_path, ph_high=7.0)
        path.write_text(path.read_text().replace("delay = 1", "delay = 0"))
        gateway.process.send_signal(signal.SIGHUP)

        async def refused() -> bool:
            return await reloads(session, url, "failed") == 1

        await until_true(refused)
        assert await reloads(session, url, "ok") == 1
        async with session.get(url + "/api/alerts") as response:
            assert await response.json() == [alert]
        await ws.send_json({"action": "ping"})  # still the same, live connection
        while (await ws.receive_json(timeout=5))["type"] != "pong":
            pass
    log = gateway.log()
    assert "reload: thresholds.ph.delay: must be at least 1" in log
    assert "reload: applied thresholds.ph" in log


async def test_reload_restarts_only_changed_buses_and_applies_origins_and_targets(
    aiohttp_client: Any, rig: Rig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await rig.start()
    path = write_config(tmp_path)
    client = await aiohttp_client(build_app(load_config(path)))
    gateway = client.app[GATEWAY]
    ph, ec = gateway.pollers
    origin = {"Origin": "https://control.example.org"}
    before = await client.get("/api/info", headers=origin)
    assert "Access-Control-Allow-Origin" not in before.headers

    text = path.read_text().replace("poll_interval = 0.05\n  [[buses.sensors]]\n  measurement "
                                    '= "conductivity"', "poll_interval = 0.06\n  [[buses.sensors]]"
                                    '\n  measurement = "conductivity"')  # fmt: skip
    text = text.replace(
        "heartbeat_interval = 0.5",
        'heartbeat_interval = 0.5\nport = 9999\nallowed_origins = ["https://control.example.org"]',
    )
    text += '\n[[notify]]\nurl = "json://127.0.0.1:9/hook"\n'
    path.write_text(text)
    with caplog.at_level(logging.INFO):
        applied = await gateway.reload(load_config(path))

    assert set(applied) == {"server.allowed_origins", "buses.ec-probe", "notify"}
    assert gateway.pollers[0] is ph  # only ec restarted
    assert gateway.pollers[1] is not ec
    await until(lambda: gateway.pollers[1].polls > 0)
    after = await client.get("/api/info", headers=origin)
    assert after.headers["Access-Control-Allow-Origin"] == "https://control.example.org"
    assert [s["url"] for s in await gateway.notifier.status()] == ["json://127.0.0.1"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("server.port changed; restart the gateway" in w for w in warnings), warnings
    assert gateway.config.server.port != 9999  # still what it listens on


async def test_a_sighup_while_it_starts_is_applied_once_it_listens(
    rig: Rig, tmp_path: Path
) -> None:
    """SIGHUP's default action ends a process: before it listens, `run` keeps it instead."""
    await rig.start()
    gateway = GatewayProcess(write_config(tmp_path), args=["--port", "0", "--log-level", "DEBUG"])
    await gateway.launch()
    assert gateway.process is not None
    try:
        # Its buses have started; the web server is still loading (gateway/startup.py).
        await until(lambda: "buses started" in gateway.log(), timeout=9)
        write_config(tmp_path, ph_high=7.0)
        gateway.process.send_signal(signal.SIGHUP)
        await gateway.announced()
        ws_url = gateway.url.replace("http", "ws") + "/ws/alerts"
        async with ClientSession() as session, session.ws_connect(ws_url) as ws:
            counts = await next_news(ws)  # the initial counts, or an update after them
            while counts["data"]["warning"] != 1:  # pH 7.25 is over 7.0: raised
                counts = await next_of(ws, "update", timeout=5.0)
    finally:
        code = await gateway.stop()
    assert code == 0
    log = gateway.log()
    assert "SIGHUP came while starting; applying it now" in log
    assert "reload: applied thresholds.ph" in log
