"""A serial port missing at start: the gateway runs without it, says so, and takes it
up when it appears. `run --require-ports` keeps the old exit 2."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.api.server import GATEWAY, build_app
from gateway.config import load_config
from simulators.rig import LINK_NAMES, Rig
from tests.helpers import until, until_true
from tests.ops.conftest import write_config


async def test_a_port_missing_at_start_is_down_then_polled_once_it_appears(
    aiohttp_client: Callable[..., Any],
    rig: Rig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await rig.devices["ezo-ph"].start()  # the EC adapter has not enumerated yet
    config = load_config(write_config(tmp_path))
    missing = str(tmp_path / "by-id" / LINK_NAMES["ezo-ec"])
    with caplog.at_level(logging.ERROR):
        client = await aiohttp_client(build_app(config))
    gateway = client.app[GATEWAY]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert missing in errors[0]

    health = await (await client.get("/healthz")).json()
    assert health["status"] == "degraded"
    assert health["buses"]["ec-probe"]["state"] == "down"
    await until(lambda: gateway.readings.value("ph") == 7.25)  # the other bus runs

    await rig.devices["ezo-ec"].start()  # now it appears

    async def healthy() -> bool:
        health = await (await client.get("/healthz")).json()
        return bool(health["status"] == "ok")

    await until_true(healthy)
    assert gateway.readings.value("conductivity") == 466.4
    health = await (await client.get("/healthz")).json()
    assert health["buses"]["ec-probe"]["state"] == "connected"


async def test_with_require_ports_a_missing_port_exits_2_naming_it(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "-c", str(path), "--port", "0",
        "--require-ports", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 9.0)
    assert process.returncode == 2
    lines = err.decode().strip().splitlines()
    assert lines[-1].startswith("sensor-gateway: cannot open serial port ")
    assert str(tmp_path / "by-id" / LINK_NAMES["ezo-ph"]) in lines[-1]
    assert "Traceback" not in err.decode()
    assert out == b""
