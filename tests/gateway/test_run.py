"""`sensor-gateway run` and `check-config` as real processes, as a field technician runs them."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, WSMsgType

from tests.gateway.conftest import write_config
from tests.helpers import until_true


async def gateway(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), 9.0)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def banner(process: asyncio.subprocess.Process) -> tuple[str, str]:
    """The first line on stdout, and the URL it gives."""
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 9.0)).decode()
    assert "EMBALSE_01 on http://127.0.0.1:" in line, line
    return line, line.split(" on ")[1].split()[0]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """The embedded default, simulated, on a free port: what `make run` starts."""
    process = await gateway(
        "run", "--simulate", "--port", "0", "--data-dir", str(tmp_path / "data"), cwd=tmp_path
    )
    _, url = await banner(process)
    yield process, url
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_run_serves_live_readings_and_stops_cleanly_on_sigterm(
    running: tuple[asyncio.subprocess.Process, str],
) -> None:
    process, url = running
    ws_url = url.replace("http", "ws") + "/ws/alerts"
    async with ClientSession() as session, session.ws_connect(ws_url) as alerts:
        assert (await alerts.receive_json(timeout=5))["type"] == "initial"
        await alerts.send_json({"action": "ping"})
        assert (await alerts.receive_json(timeout=5))["type"] == "pong"
        async with session.get(url + "/healthz") as response:
            health = await response.json()
        assert set(health["buses"]) == {"ph-probe", "ec-probe", "temperature-probe", "rs485-1"}
        process.send_signal(signal.SIGTERM)
        closing = await alerts.receive(timeout=5)
    assert closing.type is WSMsgType.CLOSE
    assert closing.data == 1001
    code, _, err = await finished(process)
    assert code == 0
    assert "Traceback" not in err


async def test_sensors_stream_carries_simulated_values(
    running: tuple[asyncio.subprocess.Process, str],
) -> None:
    _, url = running
    ws_url = url.replace("http", "ws") + "/ws/sensors"
    async with ClientSession() as session, session.ws_connect(ws_url) as ws:
        first = await ws.receive_json(timeout=5)
    assert first["type"] == "sensor_update"
    assert first["data"]["reservoir_id"] == "EMBALSE_01"


async def test_config_errors_exit_1_naming_each_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        """
[server]
port = "eighty"

[[buses]]
name = "rs485"
port = "/dev/ttyUSB0"
protocol = "modbus-rtu"
  [[buses.sensors]]
  measurement = "water_level"
  unit = 0
"""
    )
    for command in (["run", "-c", str(bad)], ["check-config", str(bad)]):
        code, _, err = await finished(await gateway(*command, cwd=tmp_path))
        assert code == 1
        assert "server.port:" in err
        assert "buses[0].sensors[0].unit:" in err
        assert "Traceback" not in err


async def test_check_config_prints_the_normalized_config(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    code, out, _ = await finished(await gateway("check-config", str(path), cwd=tmp_path))
    assert code == 0
    assert '"reservoir_id": "EMBALSE_01"' in out
    assert '"poll_interval": 0.05' in out


def one_missing_probe(tmp_path: Path) -> Path:
    """A config whose one bus is a pH circuit on a port that does not exist."""
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[[buses]]
name = "ph-probe"
port = "/dev/serial/by-id/usb-Atlas_missing"
protocol = "ezo"
  [[buses.sensors]]
  measurement = "ph"
"""
    )
    return path


async def test_a_port_that_cannot_be_opened_leaves_its_bus_down_and_the_gateway_up(
    tmp_path: Path,
) -> None:
    process = await gateway(
        "run", "-c", str(one_missing_probe(tmp_path)), "--port", "0", cwd=tmp_path
    )
    assert process.stdout is not None
    banner = (await asyncio.wait_for(process.stdout.readline(), 9.0)).decode()
    process.send_signal(signal.SIGTERM)
    code, _, err = await finished(process)
    assert code == 0
    assert "EMBALSE_01 on http://127.0.0.1:" in banner
    assert banner.rstrip().endswith("(1 bus)"), banner
    assert "bus ph-probe: cannot open serial port /dev/serial/by-id/usb-Atlas_missing" in err


async def test_with_require_ports_a_port_that_cannot_be_opened_exits_2_naming_it(
    tmp_path: Path,
) -> None:
    path = one_missing_probe(tmp_path)
    code, _, err = await finished(
        await gateway("run", "-c", str(path), "--port", "0", "--require-ports", cwd=tmp_path)
    )
    assert code == 2
    assert "/dev/serial/by-id/usb-Atlas_missing" in err
    assert "Traceback" not in err


async def test_simulated_ports_need_simulate(tmp_path: Path) -> None:
    code, _, err = await finished(
        await gateway("run", "--port", "0", "--data-dir", str(tmp_path), cwd=tmp_path)
    )
    assert code == 1
    assert "buses[0].port: sim://ezo-ph" in err
    assert "--simulate" in err


async def test_fast_needs_simulate(tmp_path: Path) -> None:
    code, _, err = await finished(
        await gateway("run", "--fast", "--port", "0", "--data-dir", str(tmp_path), cwd=tmp_path)
    )
    assert code == 1
    assert "run: --fast applies to the simulated devices: add --simulate" in err
    assert "Traceback" not in err


async def test_fast_simulated_devices_say_so_and_read(tmp_path: Path) -> None:
    process = await gateway(
        "run", "--simulate", "--fast", "--port", "0", "--data-dir", str(tmp_path), cwd=tmp_path
    )  # fmt: skip
    line, url = await banner(process)
    assert "(simulated devices, answering at once)" in line, line
    ws_url = url.replace("http", "ws") + "/ws/sensors"
    async with ClientSession() as session, session.ws_connect(ws_url) as ws:
        async with asyncio.timeout(5):  # the pH circuit's reading, compensated by the RTD's
            while (await ws.receive_json()).get("data", {}).get("ph") is None:
                pass  # heartbeats carry no data
    process.send_signal(signal.SIGTERM)
    code, _, err = await finished(process)
    assert code == 0, err


async def test_a_long_poll_does_not_hold_up_a_stop(
    running: tuple[asyncio.subprocess.Process, str],
) -> None:
    process, url = running
    async with ClientSession() as session:
        async with session.get(url + "/api/alerts/summary") as response:
            seq = response.headers["X-Seq"]
        poll = asyncio.create_task(
            session.get(url + f"/api/alerts/summary?wait=25&since={seq}"), name="test.long-poll"
        )
        held = 'gateway_long_polls{stream="alerts"} 1.0'

        async def poll_is_held() -> bool:  # it has reached the server and waits there
            async with session.get(url + "/metrics") as metrics:
                return held in await metrics.text()

        await until_true(poll_is_held, timeout=5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        response = await asyncio.wait_for(poll, 5)
        assert response.status == 200
        code, _, _ = await finished(process)
    assert code == 0
    assert time.monotonic() - started < 5  # not the 25 s the poll asked for
