"""``sensor-gateway doctor`` against the simulators' ptys: each fault, one `fail` line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.model import ModbusPoint
from drivers.serial_line import SerialLine
from gateway.cli import main
from gateway.field.doctor import check_data_dir, may_read_write
from simulators.devices import Device, ModbusBusDevice, SimUnit
from simulators.ezo_device import EzoDevice
from simulators.world import World
from tests.configs import CONDUCTIVITY, PH, bus, gateway_toml, table
from tests.processes import free_port


@pytest.fixture
async def devices() -> AsyncIterator[dict[str, Device]]:
    world = World(seed=3)
    found: dict[str, Device] = {
        "ph": EzoDevice("ezo-ph", "pH", world, time_scale=0.0, continuous_interval=0.02),
        "ec": EzoDevice("ezo-ec", "EC", world, time_scale=0.0, continuous_interval=0.02),
        "ec2": EzoDevice("ezo-ec2", "EC", world, time_scale=0.0, continuous_interval=0.02),
        "modbus": ModbusBusDevice(
            "rs485",
            world,
            [SimUnit(1, "level", [ModbusPoint("water_level", 1, 0)])],
            time_scale=0.0,
        ),
    }
    for device in found.values():
        await device.start()
    yield found
    for device in found.values():
        await device.stop()


def _bus(name: str, port: str, protocol: str, *sensors: dict[str, Any]) -> str:
    # 0.5 s: a device that answers does so in milliseconds; the margin is for a loaded
    # machine (only the dead unit's check waits it out).
    return bus(name, port, protocol, *sensors, timeout=0.5, retries=0)


def _config(tmp_path: Path, buses: list[str], extra: str = "") -> Path:
    config = tmp_path / "site.toml"
    config.write_text(
        gateway_toml(tmp_path / "data", table("server", port=free_port()), extra, *buses)
    )
    return config


async def _doctor(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = await asyncio.to_thread(main, ["doctor", "-c", str(config)])
    return code, capsys.readouterr().out.splitlines()


def _port(device: Device) -> str:
    assert device.port.path is not None
    return device.port.path


async def test_a_healthy_site_has_no_fail_line(
    devices: dict[str, Device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        [
            _bus("ph-probe", _port(devices["ph"]), "ezo", PH),
            _bus("rs485-1", _port(devices["modbus"]), "modbus-rtu", {"measurement": "water_level"}),
        ],
    )
    code, lines = await _doctor(config, capsys)
    assert code == 0, "\n".join(lines)
    assert not [line for line in lines if line.startswith("fail")]
    assert "ok   bus ph-probe EZO: pH circuit, firmware 2.16" in lines
    assert "ok   bus ph-probe EZO calibration: 3 point(s)" in lines
    assert any(line.startswith("ok   bus rs485-1 unit 1 water_level: reads ") for line in lines)
    assert any(line.startswith(("ok   clock", "warn clock")) for line in lines)
    assert any(line.startswith("ok   data_dir") for line in lines)
    assert not (tmp_path / "data").exists()  # checked, not created


async def test_each_fault_gives_one_fail_line_saying_what_to_do(
    devices: dict[str, Device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = _port(devices["ec2"])
    os.chmod(locked, 0)
    broker = free_port()  # nothing listens there
    config = _config(
        tmp_path,
        [
            # the EC circuit's port configured as the pH probe
            _bus("ph-probe", _port(devices["ec"]), "ezo", PH),
            _bus("ec-probe", locked, "ezo", CONDUCTIVITY),
            _bus(
                "rs485-1",
                _port(devices["modbus"]),
                "modbus-rtu",
                {"measurement": "water_level"},
                {"measurement": "temperature", "unit": 5},
            ),
        ],
        extra=table("mqtt", url=f"mqtt://127.0.0.1:{broker}"),
    )
    code, lines = await _doctor(config, capsys)
    assert code == 1
    fails = [line for line in lines if line.startswith("fail")]
    assert len(fails) == 4, "\n".join(lines)
    wrong, permission, dead, mqtt = fails
    assert wrong.startswith("fail bus ph-probe EZO: an EZO EC circuit answers, but ph needs pH")
    assert "fix the port or the measurement" in wrong
    assert permission.startswith(f"fail bus ec-probe {locked}: c---------")
    assert "cannot read and write it; add the user to its group" in permission
    assert dead.startswith("fail bus rs485-1 unit 5 temperature: timeout")
    assert f"sensor-gateway scan {_port(devices['modbus'])}" in dead
    assert mqtt.startswith(f"fail mqtt broker 127.0.0.1:{broker}: unreachable")
    assert "check mqtt.url" in mqtt
    assert any(line.startswith("ok   bus rs485-1 unit 1 water_level") for line in lines)


async def test_a_held_port_and_a_taken_listening_port_fail(
    devices: dict[str, Device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _port(devices["ph"])
    holder = SerialLine(port)
    await holder.open()
    config = _config(tmp_path, [_bus("ph-probe", port, "ezo", PH)])
    listening = int(config.read_text().split("port = ", 1)[1].split()[0])
    with socket.create_server(("127.0.0.1", listening)):
        try:
            code, lines = await _doctor(config, capsys)
        finally:
            await holder.close()
    fails = [line for line in lines if line.startswith("fail")]
    assert code == 1
    assert len(fails) == 2, "\n".join(lines)
    assert fails[0].startswith(
        f"fail bus ph-probe {port}: held by another process (pid {os.getpid()}"
    )
    assert fails[1].startswith(f"fail listen 127.0.0.1:{listening}: port in use")


async def test_a_bad_config_is_one_fail_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = -1\n")
    code, lines = await _doctor(config, capsys)
    assert code == 1
    assert lines == [
        "fail config: server.port: must be between 0 and 65535, got -1; "
        f"run `sensor-gateway check-config {config}`"
    ]


def test_the_mode_check_does_not_let_root_through() -> None:
    info = os.stat_result((stat.S_IFCHR | 0o660, 0, 0, 1, 0, 20, 0, 0, 0, 0))
    assert may_read_write(info, 0, {0})  # root:dialout crw-rw----, as root
    assert may_read_write(info, 1000, {20})  # a user in dialout
    assert not may_read_write(info, 1000, {1000})  # a user not in dialout
    closed = os.stat_result((stat.S_IFCHR | 0o000, 0, 0, 1, 0, 20, 0, 0, 0, 0))
    assert not may_read_write(closed, 0, {0})  # root could open it; the service user could not


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs for a full data_dir needs root and mount(8)")
    point = tmp_path / "full"
    point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)],
        capture_output=True, text=True, check=False, timeout=10,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield point
    subprocess.run(["umount", str(point)], check=False, timeout=10)


def test_a_full_data_dir_fails(tiny_tmpfs: Path) -> None:
    check = check_data_dir(tiny_tmpfs)
    assert check.state == "fail"
    assert str(check).startswith(f"fail data_dir {tiny_tmpfs}: only 1.0 MiB free")
    assert "free space or move data_dir" in check.detail
    filler = (tiny_tmpfs / "filler").open("wb", buffering=0)
    with filler, contextlib.suppress(OSError):  # ENOSPC: full to the last block
        while filler.write(b"\0" * 65536):
            pass
    check = check_data_dir(tiny_tmpfs)  # so full a 4 KiB write fails
    assert check.state == "fail"
    assert "not writable (No space left on device)" in check.detail
