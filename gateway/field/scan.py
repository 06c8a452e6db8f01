"""``sensor-gateway scan``: what answers on a serial line, at which speed.

For each baud rate it first asks for an EZO circuit (``i`` -> ``?I,pH,2.16``;
a circuit has its UART to itself), then, if none answered, sends every unit
address a one-register read (function 3, register 0). Any reply from that
address with a valid CRC means a unit is there, an exception reply included:
"illegal data address" only says register 0 is not one of its registers.
The result is a ``[[buses]]`` snippet to paste into the configuration.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drivers import ezo
from drivers.errors import (
    DeviceTimeout,
    DriverError,
    GatewayError,
    ModbusExceptionReply,
    PortDisconnected,
    ProtocolError,
)
from drivers.modbus_rtu import READ_HOLDING_REGISTERS, ReadRequest, ResponseDecoder, frame
from drivers.model import EZO_CIRCUITS
from drivers.serial_line import SerialLine
from gateway.config import BAUDRATES, SensorConfig

BY_ID = Path("/dev/serial/by-id")
#: The EZO circuit's type, as ``i`` names it, -> the measurement it gives.
CIRCUIT_MEASUREMENT = {circuit.upper(): m for m, circuit in EZO_CIRCUITS.items()}


class ScanError(GatewayError):
    """The port cannot be scanned (cannot be opened); the message says what to do."""


@dataclass
class LineFound:
    """What answered at one baud rate."""

    baudrate: int
    circuit: str | None = None  # an EZO circuit's type (pH, EC, RTD...)
    firmware: str = ""
    #: Unit -> None for a normal reply, or the exception code it answered with.
    units: dict[int, int | None] = field(default_factory=dict)
    garbled: int = 0  # replies that were not valid frames: a wrong speed, noise, A/B swapped


def parse_bauds(text: str) -> list[int]:
    """``9600,19200`` -> ``[9600, 19200]`` (standard rates only)."""
    try:
        rates = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: baud rates are numbers, e.g. 9600,19200"
        ) from None
    bad = [r for r in rates if r not in BAUDRATES]
    if bad or not rates:
        raise argparse.ArgumentTypeError(
            f"{text!r}: each must be one of {', '.join(map(str, BAUDRATES))}"
        )
    return list(dict.fromkeys(rates))


def parse_units(text: str) -> list[int]:
    """``1-247``, ``3,7`` or ``1-10,20`` -> the unit addresses, in order."""
    units: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: units look like 1-247 or 3,7") from None
        if not 1 <= first <= last <= 247:
            raise argparse.ArgumentTypeError(f"{part!r}: units are 1..247, low to high")
        units.extend(range(first, last + 1))
    return list(dict.fromkeys(units))


async def scan(
    port: str,
    *,
    baudrates: Sequence[int],
    units: Sequence[int],
    timeout: float,
    progress: Callable[[str], None] = lambda _: None,
) -> list[LineFound]:
    """Scan ``port`` at each of ``baudrates``; a LineFound per rate where anything answered."""
    found = []
    for baudrate in baudrates:
        progress(f"{port} at {baudrate} baud: EZO circuit?")
        line = SerialLine(
            port, baudrate=baudrate, timeout=timeout, retries=0, settle=min(0.05, timeout / 2)
        )
        try:
            await line.open()
        except PortDisconnected as exc:
            raise ScanError(_open_hint(port, exc.reason)) from None
        try:
            result = await _scan_line(line, baudrate, units, progress)
        finally:
            await line.close()
        if result.circuit or result.units or result.garbled:
            found.append(result)
    return found


async def _scan_line(
    line: SerialLine, baudrate: int, units: Sequence[int], progress: Callable[[str], None]
) -> LineFound:
    result = LineFound(baudrate)
    try:
        reply = await line.request(
            ezo.encode_command("i"),
            lambda: ezo.Transaction("i"),
            timeout=ezo.COMMAND_TIME + line.timeout,
        )
        result.circuit, result.firmware = ezo.circuit_type(reply)
        return result  # an EZO circuit has the UART to itself
    except ProtocolError:
        result.garbled += 1
    except DriverError:
        pass
    progress(f"{line.port} at {baudrate} baud: Modbus units {_ranges(units)}")
    for unit in units:
        request = ReadRequest(unit, READ_HOLDING_REGISTERS, 0, 1)
        try:
            await line.request(frame(request), functools.partial(ResponseDecoder, request))
            result.units[unit] = None
        except ModbusExceptionReply as exc:
            result.units[unit] = exc.code
        except ProtocolError:
            result.garbled += 1
        except DeviceTimeout:
            pass
    return result


def _open_hint(port: str, reason: str) -> str:
    if "lock" in reason.lower():
        return (
            f"{port}: in use by another process; stop the gateway first "
            "(systemctl stop sensor-gateway)"
        )
    if "ermission" in reason:
        return (
            f"{port}: permission denied; add this user to dialout "
            "(sudo adduser $USER dialout, then log in again)"
        )
    return f"{port}: {reason}"


def stable_name(port: str, by_id: Path = BY_ID) -> str:
    """The /dev/serial/by-id link to ``port`` if there is one (it survives a replug)."""
    try:
        target = os.path.realpath(port)
        for link in sorted(by_id.iterdir()):
            if os.path.realpath(link) == target:
                return str(link)
    except OSError:
        pass
    return port


def _accepts(measurement: str) -> bool:
    try:
        SensorConfig.model_validate({"measurement": measurement})
    except ValueError:
        return False
    return True


def to_toml(port: str, found: Sequence[LineFound]) -> str:
    """``[[buses]]`` tables for what was found, ready to paste into a configuration."""
    out = [f"# sensor-gateway scan {port}"]
    spare = ["water_level", "temperature", "conductivity", "ph"]
    for result in found:
        if result.circuit:
            out += _ezo_bus(port, result, spare)
        elif result.units:
            out += _modbus_bus(port, result, spare)
        if result.garbled:
            out.append(
                f"# {result.baudrate} baud: {result.garbled} garbled replies "
                "(another speed? A/B swapped? missing termination?)"
            )
    return "\n".join(out) + "\n"


def _ezo_bus(port: str, result: LineFound, spare: list[str]) -> list[str]:
    circuit = result.circuit or ""
    measurement = CIRCUIT_MEASUREMENT.get(circuit.upper())
    lines = [f"# EZO {circuit} circuit, firmware {result.firmware}, at {result.baudrate} baud"]
    if measurement is None or measurement not in spare:
        return [*lines, "# (this gateway version cannot read that circuit yet)"]
    spare.remove(measurement)
    return [
        *lines,
        "[[buses]]",
        f'name = "{circuit.lower()}-probe"',
        f"port = {_quote(port)}",
        'protocol = "ezo"',
        f"baudrate = {result.baudrate}",
        "",
        "  [[buses.sensors]]",
        f'  measurement = "{measurement}"',
        "",
    ]


def _modbus_bus(port: str, result: LineFound, spare: list[str]) -> list[str]:
    lines = [
        f"# Modbus RTU units {', '.join(map(str, result.units))} at {result.baudrate} baud",
        "[[buses]]",
        f'name = "rs485-{result.baudrate}"',
        f"port = {_quote(port)}",
        'protocol = "modbus-rtu"',
        f"baudrate = {result.baudrate}",
        "",
    ]
    for unit, code in result.units.items():
        if code is None:
            note = "answered a read of holding register 0"
        else:
            note = f"answered holding register 0 with exception {code:#04x}"
        name = f"unit_{unit}"
        if not _accepts(name):
            name = spare.pop(0) if spare else ""
        sensor = [
            "  [[buses.sensors]]",
            f'  measurement = "{name}"   # unit {unit} {note}: name what it measures',
            f"  unit = {unit}",
            "  register = 0             # from the device's manual: 0-based register,",
            '  register_type = "holding"  # input or holding,',
            '  data_type = "uint16"     # and its data type',
            "",
        ]
        if not name:  # more units than this version has measurements: leave it to the user
            sensor = ["# " + text if text else "" for text in sensor]
        lines += sensor
    return lines


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ranges(units: Sequence[int]) -> str:
    if not units:
        return "(none)"
    if list(units) == list(range(units[0], units[-1] + 1)):
        return f"{units[0]}-{units[-1]}" if len(units) > 1 else str(units[0])
    return ",".join(map(str, units))


async def scan_command(
    port: str, baudrates: Sequence[int], units: Sequence[int], timeout: float
) -> int:
    """The ``scan`` command: progress on stderr, the snippet on stdout; 1 if nothing answered."""
    report = functools.partial(print, file=sys.stderr, flush=True)
    if timeout <= 0:
        report("--timeout: must be more than 0")
        return 1
    try:
        found = await scan(port, baudrates=baudrates, units=units, timeout=timeout, progress=report)
    except ScanError as exc:
        report(f"scan: {exc}")
        return 1
    if not any(result.circuit or result.units for result in found):
        report(
            f"scan: nothing answered on {port} at {', '.join(map(str, baudrates))} baud. "
            "Check the wiring (RS-485 A/B), power and termination, try other --baud rates "
            "and a longer --timeout."
        )
        return 1
    print(to_toml(stable_name(port), found), end="")
    return 0
