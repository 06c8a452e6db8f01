"""The command line, run as a user runs it: a real process."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import pytest
from aiohttp import ClientSession
from hypothesis import assume, event, given
from hypothesis import strategies as st

from drivers.ezo_sensor import EzoSensor
from drivers.serial_line import SerialLine
from gateway.cli import main, with_command_line
from gateway.cli_args import parse_args
from gateway.config import load_config
from tests.config_fuzz import FUZZ, assert_only_config_errors, text


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


# The command line, fuzzed ------------------------------------------------------------

COMMANDS = st.sampled_from(
    ["run", "relay", "simulate", "check-config", "watch", "token", "backup", "doctor",
     "notify-test", "scan", "", "frobnicate"]
)  # fmt: skip
SWITCHES = st.sampled_from(["--simulate", "--fast", "--require-ports", "--help", "--", "-x"])
VALUED = st.sampled_from(["--host", "--port", "--data-dir", "--log-level", "-c", "--config"])
ODD = text | st.sampled_from(
    ["0", "-1", "99999", "8000", "", "localhost", "::1", "nan", "1e400", "0x10", "DEBUG", "LOUD"]
)


def command_line(
    commands: st.SearchStrategy[str], options: st.SearchStrategy[tuple[str, ...]]
) -> st.SearchStrategy[list[str]]:
    """A command, then a few options, each one or more words."""
    return st.tuples(commands, st.lists(options, max_size=5)).map(
        lambda drawn: [drawn[0], *(word for option in drawn[1] for word in option)]
    )


#: Any command with switches, options with a value and stray words; and, as often, `run`
#: or `relay` with the overrides that reach the config (--host, --port, --data-dir).
ARGV = command_line(
    COMMANDS, st.tuples(VALUED, ODD) | st.tuples(SWITCHES) | st.tuples(ODD)
) | command_line(
    st.sampled_from(["run", "relay"]),
    st.tuples(st.sampled_from(["--host", "--port", "--data-dir"]), ODD)
    | st.tuples(st.sampled_from(["--simulate", "--fast"])),
)
USAGE = re.compile(r"^sensor-gateway( [a-z-]+)?: error: \S", re.MULTILINE)


@FUZZ
@given(argv=ARGV)
def test_any_command_line_gives_its_arguments_or_one_usage_line(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Arguments, or exit 1 with a line saying what is wrong (0 for --help); then --host,
    --port and --data-dir give a config or a ConfigError, never another exception. (No
    NUL byte or lone surrogate: a shell's words hold neither.)"""
    monkeypatch.chdir(tmp_path)  # the default data_dir, ./data, and relative --data-dir
    capsys.readouterr()
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        exit_code = exc.code
    else:
        exit_code = None
    if exit_code is not None:
        event(f"exit {exit_code}")
        err = capsys.readouterr().err
        assert exit_code in (0, 1), argv
        if exit_code == 1:  # after the usage; the words it quotes may hold a line break
            assert USAGE.search(err), err
        return
    event(f"parsed: {args.command}")
    if args.command in ("run", "relay"):
        data_dir = getattr(args, "data_dir", None)
        assume(data_dir is None or not (data_dir.is_absolute() or ".." in data_dir.parts))
        assert_only_config_errors(lambda: with_command_line(load_config(None), args))
