"""What ``sensor-gateway run`` loads, and when: the simulators only with ``--simulate``; the
MQTT client only with a broker, apprise only with ``[[notify]]`` targets; the web server
only once the buses have started (start-up time)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.configs import PH, bus, gateway_toml, table


def run_stderr(tmp_path: Path, *extra: str) -> list[str]:
    """Start ``run`` under ``python -X importtime``, stop it once it is listening, and
    return what it wrote to stderr: its log lines, and a line for each module it
    imported, in the order written."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        gateway_toml(
            tmp_path / "data",
            table("server", host="127.0.0.1"),
            bus("ph-probe", tmp_path / "no-such-tty", "ezo", PH),
            reservoir_id="EMBALSE_01",
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "gateway", "run", "-c", str(config),
         "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        deadline, banner = time.monotonic() + 8, b""
        while b"\n" not in banner and time.monotonic() < deadline:
            if select.select([process.stdout], [], [], 0.2)[0]:
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    break
                banner += chunk
        assert b" on http://" in banner, banner
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=8)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return err.decode(errors="replace").splitlines()


def module_of(line: str) -> str | None:
    """The module an ``import time:`` line names; None for any other line."""
    if line.startswith("import time:") and "|" in line:
        return line.rsplit("|", 1)[1].strip()
    return None


def imported_modules(tmp_path: Path, *extra: str) -> set[str]:
    """The names of every module ``run`` imported (see :func:`run_stderr`)."""
    return {name for line in run_stderr(tmp_path, *extra) if (name := module_of(line))}


def test_run_without_simulate_does_not_import_the_simulators(tmp_path: Path) -> None:
    names = imported_modules(tmp_path)
    assert "gateway.service" in names  # the list is real: the gateway itself is in it
    assert not {n for n in names if n.split(".")[0] == "simulators"}
    assert "gateway.mqtt.relay" not in names
    assert "gateway.client" not in names
    assert "aiomqtt" not in names  # no [mqtt] url
    assert "apprise" not in names  # no [[notify]]


def test_run_starts_its_buses_before_it_loads_the_web_server(tmp_path: Path) -> None:
    # The devices' start-up time then overlaps the imports of aiohttp and the API modules.
    lines = run_stderr(tmp_path, "--log-level", "DEBUG")
    started = next(i for i, line in enumerate(lines) if "buses started: ph-probe" in line)
    web = [
        i for i, line in enumerate(lines) if module_of(line) in ("aiohttp.web", "gateway.api.rest")
    ]
    assert len(web) == 2  # both loaded
    assert started < min(web)


def imported_by(code: str) -> set[str]:
    """The modules ``python -c code`` imports, from ``-X importtime``."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    return {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if "|" in line}


def test_the_simulators_import_the_drivers_model_not_serial_io() -> None:
    names = imported_by("import simulators.devices, simulators.modbus_tcp, simulators.rig")
    assert "drivers.model" in names  # the list is real
    serial_io = {"serial", "serial_asyncio_fast", "drivers.serial_line", "drivers.sensors"}
    assert not names & serial_io, sorted(names & serial_io)


def test_the_alert_engine_and_the_session_protocol_import_no_io() -> None:
    names = imported_by("import gateway.alerts.engine, gateway.api.session")
    assert {"gateway.alerts.engine", "gateway.api.session"} <= names
    io = {"asyncio", "aiohttp", "sqlite3", "socket", "serial", "gateway.api.hub"}
    assert not names & io, sorted(names & io)


def test_the_paths_the_seed_walkthrough_gave_still_import() -> None:
    from gateway.api import listen as api_listen
    from gateway.api import server as api_server
    from gateway.listen import listen
    from gateway.server import GATEWAY, build_app

    assert build_app is api_server.build_app
    assert GATEWAY is api_server.GATEWAY
    assert listen is api_listen.listen
