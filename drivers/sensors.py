"""Measurement drivers: devices on a serial line in, :class:`Reading` out.

A reading always carries a quality. Anything but ``good`` has no value: an
error is never a number (a busy device is not a reading of 0, a missing RTD
probe is not -1023 degrees).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from drivers.errors import DriverError, ModbusExceptionReply, SettingError
from drivers.modbus_pdu import (
    BIT_TYPES,
    READ_FUNCTIONS,
    REGISTER_COUNT,
    ReadBlock,
    ReadRequest,
    ReadResponse,
    check_layout,
    decode_value,
    plan_reads,
    validate_unit,
)
from drivers.modbus_rtu import RtuFraming
from drivers.serial_line import ReplyParser, SerialLine

log = logging.getLogger(__name__)

#: The seed's four measurements: always keys of sensor_update, null when not configured.
MEASUREMENTS = ("temperature", "ph", "conductivity", "water_level")
#: Any measurement name (the contract's second wave): lower case, digits, '_', 1..32.
MEASUREMENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
UNITS = {"temperature": "°C", "ph": "pH", "conductivity": "µS/cm", "water_level": "m"}
#: The EZO circuit a seed measurement expects when its sensor names no ``circuit``.
EZO_CIRCUITS = {"ph": "pH", "conductivity": "EC", "temperature": "RTD"}


class Quality(StrEnum):
    GOOD = "good"
    TIMEOUT = "timeout"
    CRC = "crc"
    GARBAGE = "garbage"
    EXCEPTION = "exception"
    DEVICE_ERROR = "device_error"
    DISCONNECTED = "disconnected"

    @classmethod
    def of(cls, error: DriverError) -> Quality:
        try:
            return cls(error.kind)
        except ValueError:
            return cls.DEVICE_ERROR


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement at one moment. ``value`` is None unless quality is good."""

    measurement: str
    value: float | None
    quality: Quality
    timestamp: float  # wall clock, seconds since the epoch
    source: str  # the bus it came from
    detail: str = ""

    def __post_init__(self) -> None:
        if (self.value is None) != (self.quality is not Quality.GOOD):
            raise ValueError(f"a {self.quality} reading cannot carry value {self.value!r}")

    @property
    def good(self) -> bool:
        return self.quality is Quality.GOOD


def _check_measurement(measurement: str) -> None:
    if not MEASUREMENT_NAME.fullmatch(measurement):
        raise SettingError(
            f"measurement {measurement!r} must be a lower-case letter, then up to 31 "
            "lower-case letters, digits or '_'"
        )


def _scaled(raw: float, scale: float, offset: float) -> float:
    """``raw * scale + offset``, without binary noise: 215 x 0.1 is 21.5, not 21.500000000000004."""
    return float(f"{raw * scale + offset:.12g}")


# Modbus (RTU or TCP) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModbusPoint:
    """One measurement held in registers (or one coil or discrete input) of one unit.

    Addresses are 0-based (PDU). A coil or discrete input reads 0 or 1 (times
    ``scale``, plus ``offset``); the register layout keys do not apply to it.
    """

    measurement: str
    unit: int
    register: int
    register_type: str = "input"
    data_type: str = "float32"
    word_order: str = "big"
    byte_order: str = "big"
    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        _check_measurement(self.measurement)
        validate_unit(self.unit)
        if self.register_type not in READ_FUNCTIONS:
            known = ", ".join(repr(t) for t in READ_FUNCTIONS)
            raise SettingError(f"register_type {self.register_type!r} is not one of {known}")
        check_layout(self.data_type, self.word_order, self.byte_order)
        if not 0 <= self.register <= 0x10000 - self.count:
            raise SettingError(f"register {self.register} is outside 0..{0x10000 - self.count}")

    @property
    def function(self) -> int:
        return READ_FUNCTIONS[self.register_type]

    @property
    def is_bit(self) -> bool:
        return self.register_type in BIT_TYPES

    @property
    def count(self) -> int:
        return 1 if self.is_bit else REGISTER_COUNT[self.data_type]

    def decode(self, values: Sequence[int]) -> float:
        """This point's registers (or bit) off the wire -> the raw number, before scaling."""
        if self.is_bit:
            return float(values[0])
        return decode_value(values, self.data_type, self.word_order, self.byte_order)


class UnitBreaker:
    """Keeps a dead unit from eating its neighbours' time on a shared bus.

    After ``threshold`` failed polls in a row the unit is skipped; it is probed
    again (one attempt, no retries) after a backoff that doubles per failed
    probe, from ``base`` up to ``cap`` seconds. One good reply closes it.
    """

    def __init__(self, base: float, cap: float, threshold: int = 2) -> None:
        self.base, self.cap, self.threshold = base, cap, threshold
        self.failures = 0
        self.retry_at = float("-inf")

    @property
    def tripped(self) -> bool:
        return self.failures >= self.threshold

    def allows(self, now: float) -> bool:
        return not self.tripped or now >= self.retry_at

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = float("-inf")

    def failed(self, now: float) -> None:
        self.failures += 1
        if self.tripped:
            doublings = self.failures - self.threshold
            self.retry_at = now + min(self.cap, self.base * 2.0**doublings)


class Framing(Protocol):
    """How requests travel on a line: RTU frames or MBAP (modbus_rtu, modbus_tcp)."""

    name: str

    def encode(
        self, request: ReadRequest
    ) -> tuple[bytes, Callable[[], ReplyParser[ReadResponse]]]: ...


class ModbusBus:
    """The Modbus points on one line (RS-485, or TCP), read with as few requests as fit.

    ``framing`` is RTU (the default; also RTU through a serial server) or
    :class:`~drivers.modbus_tcp.TcpFraming` for Modbus TCP.
    """

    def __init__(
        self,
        line: SerialLine,
        points: Sequence[ModbusPoint],
        *,
        framing: Framing | None = None,
        poll_interval: float = 2.0,
        backoff_cap: float = 60.0,
        max_registers: int = 125,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.line = line
        self.points = tuple(points)
        self.framing: Framing = framing or RtuFraming()
        self._clock, self._wall = clock, wall_clock
        self._blocks = plan_reads(
            [(p.unit, p.function, p.register, p.count) for p in self.points], max_registers
        )
        units = {p.unit for p in self.points}
        self.breakers = {
            u: UnitBreaker(base=max(poll_interval, 1.0), cap=backoff_cap) for u in units
        }

    async def read(self) -> list[Reading]:
        """One poll of every point, in the order of ``points``.

        A skipped or failed point gets a bad-quality reading, never a value.
        """
        by_point: dict[int, Reading] = {}
        for block in list(self._blocks):
            by_point.update(zip(block.members, await self._read_block(block), strict=True))
        return [by_point[i] for i in range(len(self.points))]

    async def _read_block(self, block: ReadBlock) -> list[Reading]:
        request = block.request
        breaker = self.breakers[request.unit]
        if not breaker.allows(self._clock()):
            wait = breaker.retry_at - self._clock()
            detail = f"unit {request.unit} not answering; next try in {wait:.1f} s"
            return [self._failed(i, Quality.TIMEOUT, detail) for i in block.members]
        payload, parser = self.framing.encode(request)
        try:
            reply = await self.line.request(payload, parser, retries=0 if breaker.tripped else None)
        except ModbusExceptionReply as exc:
            breaker.succeeded()  # it answered: the unit is alive
            if not exc.retryable and len(block.members) > 1:
                self._split(block)  # maybe the merge crossed a hole; ask point by point
            return [self._failed(i, Quality.EXCEPTION, str(exc)) for i in block.members]
        except DriverError as exc:
            if exc.kind in ("timeout", "crc", "garbage"):
                breaker.failed(self._clock())
            return [self._failed(i, Quality.of(exc), str(exc)) for i in block.members]
        breaker.succeeded()
        now = self._wall()
        readings = []
        for i in block.members:
            point = self.points[i]
            raw = point.decode(block.slice(reply.values, point.register, point.count))
            if not math.isfinite(raw):
                readings.append(self._failed(i, Quality.DEVICE_ERROR, f"non-finite value {raw}"))
                continue
            value = _scaled(raw, point.scale, point.offset)
            readings.append(Reading(point.measurement, value, Quality.GOOD, now, self.line.name))
        return readings

    def _split(self, block: ReadBlock) -> None:
        index = self._blocks.index(block)
        singles = plan_reads(
            [
                (p.unit, p.function, p.register, p.count)
                for p in (self.points[i] for i in block.members)
            ],
            max_registers=1,  # never merges: one request per point
        )
        self._blocks[index : index + 1] = [
            ReadBlock(b.request, tuple(block.members[m] for m in b.members)) for b in singles
        ]
        log.warning(
            "%s: unit %d refused a merged read; reading its points one by one",
            self.line.name,
            block.request.unit,
        )

    def _failed(self, index: int, quality: Quality, detail: str) -> Reading:
        point = self.points[index]
        return Reading(point.measurement, None, quality, self._wall(), self.line.name, detail)
