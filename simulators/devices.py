"""Simulated devices, speaking from the device side with the drivers' own codecs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drivers import ezo
from drivers.errors import ProtocolError
from drivers.modbus_pdu import (
    READ_FUNCTIONS,
    REGISTER_COUNT,
    ExceptionResponse,
    ReadRequest,
    ReadResponse,
    encode_value,
)
from drivers.modbus_rtu import RequestDecoder, frame
from drivers.model import ModbusPoint
from simulators.ezo_cal import model_for, oxygen_saturation
from simulators.pty import VirtualPort
from simulators.tcp_port import TcpPort
from simulators.world import FAULTS, Signal, World

log = logging.getLogger(__name__)


class Device:
    """What every simulated device shares: a port, a world, a fault, a clock.

    The port is a pty, or with ``tcp=True`` a socket listening on 127.0.0.1
    (a Modbus TCP device, or a serial server with the device behind it).
    """

    kind = "device"

    def __init__(
        self,
        name: str,
        world: World,
        *,
        link: Path | None = None,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
        baudrate: int = 9600,
        tcp: bool = False,
    ) -> None:
        self.name = name
        #: The only speed the device understands; at another it hears noise and says nothing.
        self.baudrate = baudrate
        self.world = world
        self.time_scale = time_scale
        self.clock = clock
        self.port: VirtualPort | TcpPort = (
            TcpPort(self.received) if tcp else VirtualPort(self.received, link, baudrate=baudrate)
        )
        self.fault: str | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    @property
    def measurements(self) -> tuple[str, ...]:
        raise NotImplementedError

    async def start(self) -> None:
        self.port.plug()

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.port.close()

    def set_fault(self, fault: str | None) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)} or null")
        self.fault = fault
        if fault == "unplug":
            self.port.unplug()
        elif not self.port.plugged:
            self.port.plug()
            self.replugged()

    def replugged(self) -> None:
        """The port came back (a replug powers the device up again)."""

    def hears(self) -> bool:
        """False while the driver has the port at another speed than the device's."""
        speed = self.port.baudrate()
        return speed is None or speed == self.baudrate

    def received(self, data: bytes) -> None:
        raise NotImplementedError

    def send_later(self, delay: float, data: bytes | Callable[[], bytes]) -> None:
        """Answer after the device's processing time, mangled by the fault in force.

        ``data`` may be a function, called when the answer goes out: a circuit
        reports what it measured at the end of its processing time.
        """
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            wire = data() if callable(data) else data
            if self.fault == "crc":
                wire = corrupt(wire, self.world.rng.randrange(len(wire)))
            elif self.fault == "garbage":
                wire = self.world.rng.randbytes(max(4, len(wire)))
            self.port.write(wire)

        handle = loop.call_later(delay * self.time_scale, fire)
        self._timers.add(handle)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "measurements": list(self.measurements),
            "path": self.port.path if self.port.plugged else None,
            "link": str(self.port.link) if self.port.link else None,
            "fault": self.fault,
        }


def corrupt(data: bytes, index: int) -> bytes:
    """Flip the bits of one byte, as line noise would."""
    out = bytearray(data)
    out[index] ^= 0xA5
    return bytes(out)


# EZO -------------------------------------------------------------------------

EZO_MEASUREMENT = {
    "pH": "ph",
    "EC": "conductivity",
    "RTD": "temperature",
    "DO": "dissolved_oxygen",
    "ORP": "orp",
}
#: Circuits that take a water temperature (``T``, ``RT``) to compensate their readings.
COMPENSATED = ("pH", "EC", "DO")
#: Stands in a reply for the value line, measured when the reply goes out.
READING = "<reading>"


class EzoDevice(Device):
    """An Atlas Scientific EZO circuit in UART mode. Boots in continuous mode."""

    kind = "ezo"

    def __init__(
        self,
        name: str,
        circuit: str,
        world: World,
        *,
        continuous_interval: float = 1.0,
        firmware: str = "2.16",
        link: Path | None = None,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
        baudrate: int = 9600,
    ) -> None:
        super().__init__(
            name, world, link=link, time_scale=time_scale, clock=clock, baudrate=baudrate
        )
        if circuit not in EZO_MEASUREMENT:
            raise ValueError(f"unknown EZO circuit {circuit!r}")
        self.circuit = circuit
        self.measurement = EZO_MEASUREMENT[circuit]
        self.firmware = firmware
        self.continuous_interval = continuous_interval
        self.commands: list[str] = []  # every command received, for tests and diagnosis
        self._splitter = ezo.LineSplitter()
        self._continuous_task: asyncio.Task[None] | None = None
        self.compensation = 25.0
        self.salinity = 0.0  # DO: uS/cm of the water, as the gateway said (S,<n>)
        #: The probe and the calibration the circuit applies (Cal commands change it).
        self.model = model_for(circuit)
        ensure_signals(world, (self.measurement,))
        self._reset_settings()

    @property
    def measurements(self) -> tuple[str, ...]:
        return (self.measurement,)

    def _reset_settings(self) -> None:
        self.continuous = True
        self.ok_enabled = True
        self.asleep = False
        self.outputs = dict.fromkeys(ezo.EC_OUTPUTS, True)
        self.do_outputs = {"MG": True, "%": False}
        self.temperature_unit = "c"

    async def start(self) -> None:
        await super().start()
        self._continuous_task = asyncio.create_task(
            self._continuous(), name=f"simulators.{self.name}.continuous"
        )

    async def stop(self) -> None:
        if self._continuous_task is not None:
            self._continuous_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._continuous_task
        await super().stop()

    def reboot(self, code: str = "*RE") -> None:
        """Restart the circuit: settings back to boot defaults, announced with ``code``."""
        self._reset_settings()
        self.port.write(code.encode() + ezo.CR)

    def replugged(self) -> None:
        self._reset_settings()

    async def _continuous(self) -> None:
        while True:
            await asyncio.sleep(self.continuous_interval)
            if self.continuous and not self.asleep and self.fault is None:
                self.port.write(self._reading_line() + ezo.CR)

    def received(self, data: bytes) -> None:
        if self.fault == "timeout" or not self.hears():
            return
        try:
            lines = self._splitter.feed(data)
        except ProtocolError:
            return  # noise on the line: a circuit ignores it
        for line in lines:
            self.commands.append(line)
            if self.asleep:
                self.asleep = False
                self.port.write(b"*WA" + ezo.CR)
                continue
            delay, reply = self._respond(line)
            status = reply.pop() if reply and reply[-1].startswith("*") else None
            if status is not None and (self.ok_enabled or status not in ("*OK", "*ER")):
                reply.append(status)
            if reply:
                self.send_later(delay, functools.partial(self._render, reply))

    def _render(self, reply: list[str]) -> bytes:
        lines = (self._reading_line() if r == READING else r.encode() for r in reply)
        return b"".join(line + ezo.CR for line in lines)

    def _respond(self, line: str) -> tuple[float, list[str]]:
        """(processing time, reply lines) for one command."""
        cmd, _, arg = line.partition(",")
        cmd = cmd.upper()
        quick = ezo.COMMAND_TIME
        if cmd == "R" and not arg:
            return ezo.READ_TIME[self.circuit], [READING, "*OK"]
        if cmd == "RT" and self.circuit in COMPENSATED:
            if (t := _number(arg)) is None:
                return quick, ["*ER"]
            self.compensation = t
            return ezo.READ_TIME[self.circuit], [READING, "*OK"]
        if cmd == "T" and self.circuit in COMPENSATED:
            if arg == "?":
                return quick, [f"?T,{self.compensation:.2f}", "*OK"]
            if (t := _number(arg)) is None:
                return quick, ["*ER"]
            self.compensation = t
            return quick, ["*OK"]
        if cmd == "C":
            if arg == "?":
                return quick, [f"?C,{int(self.continuous)}", "*OK"]
            self.continuous = arg not in ("0", "")
            return quick, ["*OK"]
        if cmd == "*OK":
            if arg == "?":
                return quick, [f"?*OK,{int(self.ok_enabled)}", "*OK"]
            self.ok_enabled = arg == "1"
            return quick, ["*OK"]
        if cmd == "I" and not arg:
            return quick, [f"?I,{self.circuit},{self.firmware}", "*OK"]
        if cmd == "STATUS":
            return quick, ["?Status,P,5.038", "*OK"]
        if cmd == "CAL":
            if arg == "?":
                return quick, [f"?Cal,{self.model.points}", "*OK"]
            return ezo.CAL_TIME, ["*OK" if self.model.command(arg) else "*ER"]
        if cmd == "SLOPE" and arg == "?" and (slope := self.model.slope()):
            return quick, [slope, "*OK"]
        if cmd == "O" and self.circuit == "EC":
            return quick, self._output(arg)
        if cmd == "O" and self.circuit == "DO":
            return quick, self._do_output(arg)
        if cmd == "S" and self.circuit == "DO":
            return quick, self._salinity(arg)
        if cmd == "S" and self.circuit == "RTD":
            if arg == "?":
                return quick, [f"?S,{self.temperature_unit}", "*OK"]
            if arg.lower() not in ("c", "k", "f"):
                return quick, ["*ER"]
            self.temperature_unit = arg.lower()
            return quick, ["*OK"]
        if cmd == "L":
            return quick, ["*OK"]
        if cmd == "SLEEP":
            self.asleep = True
            return quick, ["*SL"]
        return quick, ["*ER"]

    def _output(self, arg: str) -> list[str]:
        if arg == "?":
            enabled = [name for name in ezo.EC_OUTPUTS if self.outputs[name]]
            return [",".join(["?", "O", *enabled]), "*OK"]
        param, _, state = arg.partition(",")
        if param.upper() not in self.outputs or state not in ("0", "1"):
            return ["*ER"]
        self.outputs[param.upper()] = state == "1"
        return ["*OK"]

    def _do_output(self, arg: str) -> list[str]:
        param, _, state = arg.partition(",")
        if param.upper() not in self.do_outputs or state not in ("0", "1"):
            return ["*ER"]
        self.do_outputs[param.upper()] = state == "1"
        return ["*OK"]

    def _salinity(self, arg: str) -> list[str]:
        if arg == "?":
            return [f"?S,{self.salinity:.1f},uS", "*OK"]
        value, _, unit = arg.partition(",")
        number = _number(value)
        if number is None or number < 0 or unit.lower() not in ("", "ppt"):
            return ["*ER"]
        self.salinity = number / 0.00064 if unit else number
        return ["*OK"]

    def _reading_line(self) -> bytes:
        now = self.clock()
        value = self.model.reading(self.world.value(self.measurement, now))
        if self.circuit == "pH":
            return f"{value:.3f}".encode()
        if self.circuit == "ORP":
            return f"{value:.1f}".encode()
        if self.circuit == "DO":
            return self._oxygen_line(value, now)
        if self.circuit == "RTD":
            if self.temperature_unit == "k":
                value += 273.15
            elif self.temperature_unit == "f":
                value = value * 9 / 5 + 32
            return f"{value:.3f}".encode()
        fields = {"EC": f"{value:.1f}", "TDS": f"{value * 0.54:.0f}"}
        fields["S"] = f"{value * 0.00049:.2f}"
        fields["SG"] = f"{1.0 + value * 0.0000008:.3f}"
        return ",".join(fields[name] for name in ezo.EC_OUTPUTS if self.outputs[name]).encode()

    def _oxygen_line(self, value: float, now: float) -> bytes:
        """The probe senses oxygen's partial pressure; the circuit turns it into mg/L with
        the temperature and salinity it was told: right only when they are the water's."""
        actual = oxygen_saturation(
            self.world.value("temperature", now), self.world.value("conductivity", now)
        )
        told = oxygen_saturation(self.compensation, self.salinity)
        mg = value * told / actual
        fields = {"MG": f"{mg:.2f}", "%": f"{100 * value / actual:.1f}"}
        return ",".join(v for k, v in fields.items() if self.do_outputs[k]).encode()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# Modbus RTU --------------------------------------------------------------------


@dataclass
class SimUnit:
    """One unit on the simulated line, holding its points in the driver's own terms
    (value = raw * scale + offset, so the device stores (value - offset) / scale)."""

    unit: int
    name: str
    points: Sequence[ModbusPoint]
    fault: str | None = None
    requests: int = field(default=0)

    def __post_init__(self) -> None:
        if any(point.unit != self.unit for point in self.points):
            raise ValueError(f"unit {self.unit}: every point must name unit {self.unit}")


class ModbusBusDevice(Device):
    """Several Modbus RTU units sharing one RS-485 line (one port).

    With ``tcp=True`` the line sits behind a serial server: RTU frames, CRC
    included, through a TCP socket.
    """

    kind = "modbus-rtu"

    def __init__(
        self,
        name: str,
        world: World,
        units: Sequence[SimUnit],
        *,
        baudrate: int = 9600,
        turnaround: float = 0.005,
        link: Path | None = None,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
        tcp: bool = False,
    ) -> None:
        super().__init__(
            name, world, link=link, time_scale=time_scale, clock=clock, baudrate=baudrate, tcp=tcp
        )
        if tcp:
            self.kind = "modbus-rtu-tcp"
        self.units = {u.unit: u for u in units}
        ensure_signals(world, self.measurements)
        self.turnaround = turnaround
        self.decoder = RequestDecoder()

    @property
    def measurements(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.measurement for u in self.units.values() for p in u.points))

    def unit_for(self, measurement: str) -> SimUnit | None:
        for unit in self.units.values():
            if any(p.measurement == measurement for p in unit.points):
                return unit
        return None

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info["units"] = {
            u.unit: {
                "name": u.name,
                "fault": u.fault,
                "measurements": [p.measurement for p in u.points],
            }
            for u in self.units.values()
        }
        return info

    def received(self, data: bytes) -> None:
        if not self.hears():
            return
        for request in self.decoder.feed(data):
            unit = self.units.get(request.unit)
            if unit is None or self.fault == "timeout" or unit.fault == "timeout":
                continue  # nobody at that address answers
            unit.requests += 1
            if isinstance(request, ReadRequest):
                reply = self._read(unit, request)
            else:
                reply = request.reply()
            wire = frame(reply)
            if unit.fault in ("crc", "garbage") and self.fault is None:
                wire = (
                    corrupt(wire, len(wire) - 1)
                    if unit.fault == "crc"
                    else self.world.rng.randbytes(len(wire))
                )
            char_time = 11 / self.baudrate
            self.send_later(self.turnaround + char_time * (8 + len(wire)), wire)

    def _read(self, unit: SimUnit, request: ReadRequest) -> ReadResponse | ExceptionResponse:
        return answer_read(unit, request, self.world, self.clock())

    def registers(self, unit: SimUnit, function: int) -> dict[int, int]:
        """The unit's register (or bit) map for a read function, values taken now."""
        return unit_table(unit, function, self.world, self.clock())


#: What the probes of the measurements beyond the seed's four see, by default:
#: turbidity in NTU, a running pump (coil) and a float switch at rest (discrete input).
EXTRA_SIGNALS: dict[str, tuple[float, float, float]] = {
    "dissolved_oxygen": (8.6, 0.5, 0.02),  # mg/L
    "orp": (245.0, 15.0, 0.5),  # mV
    "level_downstream": (3.4, 0.2, 0.002),  # m, below the dam
    "turbidity": (1.8, 0.4, 0.01),
    "pump": (1.0, 0.0, 0.0),
    "float_switch": (0.0, 0.0, 0.0),
}


def ensure_signals(world: World, measurements: Sequence[str]) -> None:
    """Give the world a signal for every measurement a device holds (0 when unknown)."""
    for name in measurements:
        setpoint, drift, noise = EXTRA_SIGNALS.get(name, (0.0, 0.0, 0.0))
        world.signals.setdefault(name, Signal(setpoint, drift, noise))


def answer_read(
    unit: SimUnit, request: ReadRequest, world: World, now: float
) -> ReadResponse | ExceptionResponse:
    """A unit's answer to a read, RTU or TCP alike: values, or exception 2 for a hole."""
    table = unit_table(unit, request.function, world, now)
    wanted = range(request.address, request.address + request.count)
    if any(r not in table for r in wanted):
        return ExceptionResponse(unit.unit, request.function, 0x02)
    return ReadResponse(unit.unit, request.function, tuple(table[r] for r in wanted))


def unit_table(unit: SimUnit, function: int, world: World, now: float) -> dict[int, int]:
    """What a unit holds for one read function: address -> register word, or bit.

    A point stores ``(value - offset) / scale``; a coil or discrete input is 1
    when that is at least 0.5.
    """
    out: dict[int, int] = {}
    for point in unit.points:
        if READ_FUNCTIONS[point.register_type] != function:
            continue
        raw = (world.value(point.measurement, now) - point.offset) / point.scale
        if point.is_bit:
            out[point.register] = int(raw >= 0.5)
            continue
        words = encode_value(raw, point.data_type, point.word_order, point.byte_order)
        for offset in range(REGISTER_COUNT[point.data_type]):
            out[point.register + offset] = words[offset]
    return out
