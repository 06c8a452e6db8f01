"""``sensor-gateway scan`` on the simulators' ptys: units, circuits, the speed they answer at."""

from __future__ import annotations

import argparse
import asyncio
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.model import ModbusPoint
from drivers.serial_line import SerialLine
from gateway.cli import main
from gateway.field.scan import (
    LineFound,
    ScanError,
    parse_bauds,
    parse_units,
    scan,
    stable_name,
    to_toml,
)
from simulators.devices import ModbusBusDevice, SimUnit
from simulators.ezo_device import EzoDevice
from simulators.world import World


@pytest.fixture
async def modbus_line(tmp_path: Path) -> AsyncIterator[ModbusBusDevice]:
    """Units 3 and 7 on one line at 19200 baud: 3 holds holding register 0, 7 only inputs."""
    units = [
        SimUnit(3, "level", [ModbusPoint("water_level", 3, 0, "holding", "uint16")]),
        SimUnit(7, "temperature", [ModbusPoint("temperature", 7, 0, "input", "int16")]),
    ]
    device = ModbusBusDevice(
        "rs485", World(seed=1), units, baudrate=19200, time_scale=0.0,
        link=tmp_path / "by-id" / "usb-FTDI_USB-RS485_Cable_SIM-if00-port0",
    )  # fmt: skip
    await device.start()
    yield device
    await device.stop()


@pytest.fixture
async def ph_circuit() -> AsyncIterator[EzoDevice]:
    device = EzoDevice("ezo-ph", "pH", World(seed=1), time_scale=0.0, continuous_interval=0.02)
    await device.start()
    yield device
    await device.stop()


async def test_the_simulated_line_answers_only_at_its_own_speed(
    modbus_line: ModbusBusDevice,
) -> None:
    # What the scan relies on: a pty passes the speed the driver set, and the device minds it.
    found = await scan(modbus_line.port.address, baudrates=[9600], units=[3], timeout=0.05)
    assert found == []
    assert modbus_line.port.baudrate() == 9600
    assert modbus_line.units[3].requests == 0
    found = await scan(modbus_line.port.address, baudrates=[19200], units=[3], timeout=0.5)
    assert [f.units for f in found] == [{3: None}]


async def test_scan_finds_units_3_and_7_at_19200_baud(
    modbus_line: ModbusBusDevice, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = modbus_line.port.address
    argv = ["scan", port, "--baud", "9600,19200", "--units", "1-8", "--timeout", "0.2"]
    code = await asyncio.to_thread(main, argv)
    out = capsys.readouterr().out
    assert code == 0, out
    snippet = tomllib.loads(out)
    [bus] = snippet["buses"]
    assert (bus["protocol"], bus["baudrate"], bus["port"]) == ("modbus-rtu", 19200, port)
    assert [s["unit"] for s in bus["sensors"]] == [3, 7]
    assert "exception 0x02" in out  # unit 7 has no holding register 0: still a unit
    # Pasted into a configuration, it passes check-config.
    config = tmp_path / "site.toml"
    config.write_text(f'reservoir_id = "EMBALSE_01"\ndata_dir = "{tmp_path}"\n\n{out}')
    assert main(["check-config", str(config)]) == 0, capsys.readouterr().err


async def test_scan_finds_an_ezo_ph_circuit_at_9600(
    ph_circuit: EzoDevice, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["scan", ph_circuit.port.address, "--baud", "19200,9600", "--units", "1"]
    assert await asyncio.to_thread(main, [*argv, "--timeout", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "EZO pH circuit, firmware 2.16, at 9600 baud" in out
    [bus] = tomllib.loads(out)["buses"]
    assert (bus["protocol"], bus["baudrate"]) == ("ezo", 9600)
    assert bus["sensors"] == [{"measurement": "ph"}]
    assert "i" in ph_circuit.commands
    config = tmp_path / "site.toml"
    config.write_text(out)
    assert main(["check-config", str(config)]) == 0, capsys.readouterr().err


async def test_nothing_answering_exits_1_with_what_to_check(
    modbus_line: ModbusBusDevice, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["scan", modbus_line.port.address, "--baud", "9600", "--units", "1-2"]
    assert await asyncio.to_thread(main, [*argv, "--timeout", "0.05"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "nothing answered" in captured.err
    assert "A/B" in captured.err


async def test_a_port_held_by_the_gateway_is_named(modbus_line: ModbusBusDevice) -> None:
    holder = SerialLine(modbus_line.port.address, baudrate=19200)
    await holder.open()
    try:
        with pytest.raises(ScanError, match="in use by another process; stop the gateway"):
            await scan(modbus_line.port.address, baudrates=[19200], units=[3], timeout=0.05)
    finally:
        await holder.close()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--baud", "9601"], "each must be one of"),
        (["--units", "0-3"], "units are 1..247"),
        (["--units", "x"], "units look like"),
    ],
)
def test_bad_arguments_exit_1_naming_them(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["scan", "/dev/null", *args])
    assert exit_info.value.code == 1
    assert error in capsys.readouterr().err


def test_stable_name_prefers_the_by_id_link(tmp_path: Path) -> None:
    target = tmp_path / "ttyUSB0"
    target.touch()
    (tmp_path / "by-id").mkdir()
    link = tmp_path / "by-id" / "usb-FTDI-if00-port0"
    link.symlink_to(target)
    assert stable_name(str(target), tmp_path / "by-id") == str(link)
    assert stable_name("/dev/ttyS9", tmp_path / "by-id") == "/dev/ttyS9"


def test_more_units_than_names_leaves_the_rest_commented() -> None:
    result = LineFound(9600, units={u: None for u in range(1, 7)})
    text = to_toml("/dev/ttyUSB0", [result])
    sensors = tomllib.loads(text)["buses"][0]["sensors"]
    assert 4 <= len(sensors) <= 6  # every uncommented one is a valid sensor
    assert "unit = 6" in text


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=30))
def test_unit_and_baud_lists_raise_only_their_own_error(text: str) -> None:
    for parse in (parse_units, parse_bauds):
        try:
            values = parse(text)
        except argparse.ArgumentTypeError:
            continue
        assert values
        assert all(1 <= v <= 247 for v in values) or parse is parse_bauds
