"""The command line, run as a user runs it: a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest
from aiohttp import ClientSession

from drivers.ezo_sensor import EzoSensor
from drivers.serial_line import SerialLine
from gateway.cli import main


async def test_simulate_prints_devices_serves_control_and_stops_cleanly(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "simulate",
        "--control-port",
        "0",
        "--fast",
        "--link-dir",
        str(tmp_path / "by-id"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        lines = []
        while not (lines and lines[-1].startswith("control API:")):
            raw = await asyncio.wait_for(process.stdout.readline(), 8.0)
            assert raw, "simulate exited early"
            lines.append(raw.decode().strip())
        devices, control = lines[:-1], lines[-1].split()[-1]
        assert [line.split()[0] for line in devices] == [
            "ezo-ph", "ezo-ec", "ezo-rtd", "ezo-do", "ezo-orp", "modbus", "modbus-tcp",
        ]  # fmt: skip
        ph_link = devices[0].split()[3]
        assert ph_link.startswith(str(tmp_path))

        async with ClientSession() as session:
            async with session.put(f"{control}/ph", json={"value": 6.1}) as response:
                assert response.status == 200
            async with session.get(control) as response:
                assert json.loads(await response.text())["setpoints"]["ph"] == 6.1

        line = SerialLine(ph_link, timeout=0.5)
        try:
            [reading] = await EzoSensor(line, "ph", read_time=0.0, command_time=0.0).read()
        finally:
            await line.close()
        assert reading.value == 6.1
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 8.0)
    assert code == 0
    assert not await asyncio.to_thread(Path(ph_link).exists)  # links removed on the way out


async def test_control_port_in_use_exits_2_naming_it(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "simulate",
            "--control-port",
            str(port),
            "--link-dir",
            str(tmp_path),
            stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )
        _, err = await asyncio.wait_for(process.communicate(), 8.0)
    finally:
        server.close()
        await server.wait_closed()
    assert process.returncode == 2
    assert f"control port {port}" in err.decode()
    assert "Traceback" not in err.decode()


async def test_usage_mistakes_exit_1_without_traceback() -> None:
    for argv in (["frobnicate"], ["simulate", "--log-level", "LOUD"], [], ["simulate", "-x"]):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            *argv,
            stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )
        _, err = await asyncio.wait_for(process.communicate(), 8.0)
        assert process.returncode == 1, (argv, err)
        assert "Traceback" not in err.decode()


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["run", "--port", "99999"], "server.port: must be between 0 and 65535, got 99999"),
        (["run", "--port", "-1"], "server.port: must be between 0 and 65535, got -1"),
        (["run", "--host", ""], "server.host: must be an address or a non-empty list of addresses"),
        (["relay", "--port", "70000"], "server.port: must be between 0 and 65535, got 70000"),
    ],
)
def test_command_line_overrides_are_validated_like_the_config(
    argv: list[str], line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\n')
    assert main([*argv, "-c", str(config)]) == 1
    assert capsys.readouterr().err.splitlines() == [line]


def test_a_data_dir_that_cannot_be_created_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["run", "--data-dir", str(blocker / "data")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"data_dir: cannot create {blocker / 'data'}: Not a directory"
    ]
