"""The drivers' data model: readings, their quality, measurement names, Modbus points.

Plain data, no I/O: the simulators and the gateway import this without the serial
code. A reading always carries a quality. Anything but ``good`` has no value: an
error is never a number (a busy device is not a reading of 0, a missing RTD probe
is not -1023 degrees).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from drivers.errors import DriverError, SettingError
from drivers.modbus_pdu import (
    BIT_TYPES,
    READ_FUNCTIONS,
    REGISTER_COUNT,
    check_layout,
    decode_value,
    validate_unit,
)

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


def check_measurement(measurement: str) -> None:
    """Raise SettingError unless ``measurement`` is a valid measurement name."""
    if not MEASUREMENT_NAME.fullmatch(measurement):
        raise SettingError(
            f"measurement {measurement!r} must be a lower-case letter, then up to 31 "
            "lower-case letters, digits or '_'"
        )


def scaled(raw: float, scale: float, offset: float) -> float:
    """``raw * scale + offset``, without binary noise: 215 x 0.1 is 21.5, not 21.500000000000004."""
    return float(f"{raw * scale + offset:.12g}")


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
        check_measurement(self.measurement)
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
