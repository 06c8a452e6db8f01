"""The ``[[buses]]`` tables: a line, its protocol and its sensors, and what buses must not
share."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from drivers import errors as driver_errors
from drivers.modbus_pdu import BIT_TYPES
from drivers.modbus_tcp import DEFAULT_PORT as MODBUS_TCP_PORT
from drivers.model import ModbusPoint
from drivers.tcp_line import parse_address
from gateway.config.base import (
    BAUDRATES,
    EZO_KEYS,
    LAYOUT_KEYS,
    MODBUS_KEYS,
    RATES,
    Circuit,
    Problem,
    raise_problems,
    rule,
)
from gateway.config.sections import MeasurementName, Section

# `register` is a contract key; pydantic warns that it shadows ABCMeta.register (harmless).
warnings.filterwarnings("ignore", message='Field name "register" in "SensorConfig"')


class SensorConfig(Section):
    measurement: MeasurementName
    scale: float = 1.0  # value = raw * scale + offset
    offset: float = 0.0
    unit: int = Field(default=1, ge=1, le=247)
    register: int = Field(default=0, ge=0, le=65535)  # 0-based, as in the frame
    register_type: Literal["input", "holding", "coil", "discrete"] = "input"
    data_type: Literal["int16", "uint16", "int32", "uint32", "float32"] = "float32"
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"
    #: ezo only: the circuit on the port (checked against its ``i``); None: whatever ``i`` says.
    circuit: Circuit | None = None

    def modbus_point(self) -> ModbusPoint:
        """The driver's point for this sensor on a Modbus bus (may raise its ConfigError)."""
        return ModbusPoint(**self.model_dump(exclude={"circuit"}))  # the same keys, by design


class BusConfig(Section):
    name: str = Field(min_length=1)
    port: Annotated[  # a device path, a pyserial URL, tcp://HOST:PORT, or sim://<device>
        str,
        Field(min_length=1),
        rule(lambda p: p == p.strip(), "must not start or end with spaces"),
        rule(lambda p: p != "sim://", "needs a device name, e.g. sim://ezo-ph"),
    ]
    protocol: Literal["ezo", "modbus-rtu", "modbus-tcp"]
    baudrate: Annotated[int, rule(BAUDRATES.__contains__, RATES)] = 9600
    timeout: float = Field(default=1.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    poll_interval: float = Field(default=2.0, gt=0)
    request_gap: float = Field(default=0.0, ge=0)
    echo: bool = False
    sensors: list[SensorConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_sensors(self) -> Self:
        problems = list(_port_problems(self.port, self.protocol))
        if self.protocol == "ezo":
            problems += _ezo_problems(self.sensors)
        else:
            problems += _modbus_problems(self.sensors)
        raise_problems(problems)
        return self

    @model_serializer(mode="wrap")
    def _drop_modbus_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Sensors without the keys that do not apply to them, so a dump loads again:
        an ezo bus's without the Modbus keys, a coil's without the register layout."""
        data: dict[str, Any] = handler(self)
        for sensor in data.get("sensors", []):
            if self.protocol == "ezo":
                for key in MODBUS_KEYS:
                    sensor.pop(key, None)
                if sensor.get("circuit") is None:
                    sensor.pop("circuit", None)
                continue
            sensor.pop("circuit", None)
            if sensor.get("register_type") in BIT_TYPES:
                for key in LAYOUT_KEYS:
                    sensor.pop(key, None)
        return data


def _port_problems(port: str, protocol: str) -> Iterator[Problem]:
    """modbus-tcp needs tcp://HOST[:PORT]; others may use tcp://HOST:PORT (a serial server)."""
    if port.startswith("sim://"):
        return
    if protocol == "modbus-tcp" and not port.startswith("tcp://"):
        yield ("port",), f"modbus-tcp needs tcp://HOST:{MODBUS_TCP_PORT}, got {port!r}"
    elif port.startswith("tcp://"):
        try:
            parse_address(port, MODBUS_TCP_PORT if protocol == "modbus-tcp" else None)
        except driver_errors.SettingError as exc:
            yield ("port",), str(exc)


def _ezo_problems(sensors: Sequence[SensorConfig]) -> Iterator[Problem]:
    if len(sensors) > 1:
        yield (
            ("sensors",),
            f"an ezo bus has one circuit per port, found {len(sensors)} sensors; "
            "give each circuit its own [[buses]]",
        )
    for i, sensor in enumerate(sensors):
        for key in MODBUS_KEYS:
            if key in sensor.model_fields_set:
                yield ("sensors", i, key), "only for Modbus buses (modbus-rtu, modbus-tcp)"


def _modbus_problems(sensors: Sequence[SensorConfig]) -> Iterator[Problem]:
    """Check each point as the driver will, then that no two share a register."""
    points: list[tuple[int, ModbusPoint]] = []
    for i, sensor in enumerate(sensors):
        for key in EZO_KEYS:
            if key in sensor.model_fields_set:
                yield ("sensors", i, key), "only for ezo buses"
        if sensor.register_type in BIT_TYPES:
            for key in LAYOUT_KEYS:
                if key in sensor.model_fields_set:
                    yield (
                        ("sensors", i, key),
                        f"a {sensor.register_type} is one bit (0 or 1): leave {key} out",
                    )
        try:
            points.append((i, sensor.modbus_point()))
        except driver_errors.SettingError as exc:
            key = str(exc).split(" ", 1)[0]
            yield ("sensors", i, *([key] if key in SensorConfig.model_fields else [])), str(exc)
    for (i, a), (j, b) in itertools.combinations(points, 2):
        if (a.unit, a.register_type) == (b.unit, b.register_type) and (
            a.register < b.register + b.count and b.register < a.register + a.count
        ):
            yield (
                ("sensors", j, "register"),
                f"{b.register_type} registers {_span(b)} of unit {b.unit} overlap "
                f"sensors[{i}] ({a.measurement}, registers {_span(a)})",
            )


def _span(point: ModbusPoint) -> str:
    last = point.register + point.count - 1
    return str(point.register) if last == point.register else f"{point.register}..{last}"


def shared_problems(buses: Sequence[BusConfig]) -> Iterator[Problem]:
    """What buses must not share: a name, a port, a measurement."""
    first: dict[tuple[str, str], int] = {}
    read_by: dict[str, str] = {}
    for j, bus in enumerate(buses):
        for key, value in (("name", bus.name), ("port", bus.port)):
            i = first.setdefault((key, value), j)
            if i != j:
                what = f"buses[{i}] ({buses[i].name})" if key == "port" else f"buses[{i}]"
                yield (j, key), f"already used by {what}"
        for k, sensor in enumerate(bus.sensors):
            here = f"buses[{j}].sensors[{k}]"
            there = read_by.setdefault(sensor.measurement, here)
            if there != here:
                yield (j, "sensors", k, "measurement"), f"already read by {there}"
