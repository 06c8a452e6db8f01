"""Simulated devices, speaking from the device side with the drivers' own codecs: the
:class:`Device` base (a port, faults on demand) and the Modbus RTU bus.

The EZO circuits are in simulators/ezo_device.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


class ModbusUnits(Device):
    """A device that answers for Modbus units (a serial line of them, or a TCP server):
    the units, the measurements they give, and their state in :meth:`describe`."""

    units: dict[int, SimUnit]

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


class ModbusBusDevice(ModbusUnits):
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
