"""The gateway's configuration: a TOML file, overridden key by key by the environment.

Call :func:`load_config` once at start (``check-config`` calls it too). It
returns a validated :class:`Config` or raises :class:`ConfigError` listing
every problem as ``path.to.key: message``, so a technician can fix a file in
one pass. Keys and defaults are fixed by the contract; docs/configuration.md
is the reference.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from drivers import errors as driver_errors
from drivers.errors import GatewayError
from drivers.modbus_pdu import BIT_TYPES
from drivers.modbus_tcp import DEFAULT_PORT as MODBUS_TCP_PORT
from drivers.model import MEASUREMENT_NAME, MEASUREMENTS, ModbusPoint
from drivers.tcp_line import parse_address

ENV_PREFIX = "GATEWAY_"
DEFAULT_NAME = "default.toml (embedded)"
#: Sensor keys that mean something only on a modbus-rtu bus.
MODBUS_KEYS = ("unit", "register", "register_type", "data_type", "word_order", "byte_order")
#: Sensor keys that mean something only on an ezo bus.
EZO_KEYS = ("circuit",)
#: ``circuit = ...`` of an EZO sensor: the circuit types ``i`` answers, in lower case.
Circuit = Literal["ph", "ec", "rtd", "do", "orp"]
#: Sensor keys that describe a register layout: not for coils and discrete inputs.
LAYOUT_KEYS = ("data_type", "word_order", "byte_order")
MODBUS_PROTOCOLS = ("modbus-rtu", "modbus-tcp")
MIN_SECRET_BYTES = 32  # RFC 7518: an HS256 key as long as the hash
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
_BOUNDS = ("critical_low", "warning_low", "info_low", "info_high", "warning_high", "critical_high")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_RATES = f"must be one of the standard rates {', '.join(map(str, BAUDRATES))}"
_TOPIC = re.compile(r"[^/+#]+(/[^/+#]+)*")

#: A problem found by a cross-field check: the key's path relative to the model, and a message.
Problem = tuple[tuple[str | int, ...], str]
_CHECKS = "config_checks"  # the pydantic error type that carries a list of Problems


def _raise_problems(problems: Sequence[Problem]) -> None:
    """Report cross-field problems from a model validator, each at its own key."""
    if problems:
        text = "; ".join(f"{_format_loc(loc)}: {message}" for loc, message in problems)
        raise PydanticCustomError(_CHECKS, text, {"problems": list(problems)})


def _rule(test: Callable[[Any], object], message: str) -> AfterValidator:
    """A check on one value, reported in ``message``'s words at that value's key."""

    def check(value: Any) -> Any:
        if not test(value):
            raise PydanticCustomError("invalid", message)
        return value

    return AfterValidator(check)


#: A measurement a sensor reads: any name of the contract's pattern (the seed's four or more).
MeasurementName = Annotated[
    str,
    _rule(
        MEASUREMENT_NAME.fullmatch,
        "must be a lower-case letter, then up to 31 lower-case letters, digits or '_'",
    ),
]


def _mqtt_url(url: str | None) -> bool:
    parts = urlsplit(url or "mqtt://host")
    return parts.scheme in ("mqtt", "mqtts") and bool(parts.hostname)


def _http_url(url: str) -> bool:
    parts = urlsplit(url or "http://host")
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _apprise_url(url: str) -> bool:
    from gateway.notify.targets import parse_url  # apprise loads its plugins: only when used

    return parse_url(url) is not None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ServerConfig(_Model):
    #: "localhost": 127.0.0.1 and ::1; a list of addresses; "0.0.0.0"/"::" for every interface.
    host: Annotated[
        str | list[str],
        _rule(
            lambda h: all(h) and (isinstance(h, str) or len(h) > 0),
            "must be an address or a non-empty list of addresses",
        ),
    ] = "localhost"
    port: int = Field(default=8000, ge=0, le=65535)  # 0: any free port
    sensor_interval: float = Field(default=10.0, gt=0)
    heartbeat_interval: float = Field(default=30.0, gt=0)
    allowed_origins: list[str] = []
    max_message_bytes: int = Field(default=65536, ge=128)
    client_queue: int = Field(default=256, ge=1)
    compression: bool = False
    history: int = Field(default=1000, ge=0)
    #: None: derived from the open-file limit at run time.
    max_connections: int | None = Field(default=None, ge=1)
    #: Client actions per second per connection (a token bucket); a refresh costs 5.
    action_rate: float = Field(default=20.0, gt=0)
    action_burst: int = Field(default=40, ge=5)
    #: The dashboard's address as people reach it ("https://gw.example.org"): notifications
    #: link to it. Empty: no link.
    public_url: Annotated[str, _rule(_http_url, "must look like https://host[:port][/path]")] = ""
    language: Literal["es", "en"] = "es"  # of notifications


def _long_enough(secret: str) -> bool:
    return not secret or len(secret.encode()) >= MIN_SECRET_BYTES


class AuthConfig(_Model):
    jwt_secret: Annotated[  # empty: no auth (unless a public key)
        str,
        _rule(_long_enough, "must be at least 32 bytes: make one with `openssl rand -hex 32`"),
    ] = Field(default="", repr=False)
    #: PEM text of a public key (RS256/ES256 tokens from the control room), or a file's path.
    jwt_public_key: str = ""


class StorageConfig(_Model):
    """The readings and alert history in SQLite."""

    retention_days: float = Field(default=30.0, gt=0)
    #: Closed alerts (cleared, or dismissed and back to normal) older than this are pruned
    #: with their events; active and still-latched ones never.
    alert_retention_days: float = Field(default=365.0, gt=0)
    readings_every: float = Field(default=10.0, gt=0)
    retry_interval: float = Field(default=2.0, gt=0, le=60)  # s between tries of held alert changes


class AlertsConfig(_Model):
    """Alarm management (the bounds themselves are ``[thresholds.<measurement>]``)."""

    #: The longest an operator may shelve a measurement's alerts (ISA-18.2: bounded).
    max_shelve_minutes: float = Field(default=480.0, gt=0, le=10080)


class MqttConfig(_Model):
    url: Annotated[str | None, _rule(_mqtt_url, "must look like mqtt://host:1883")] = None
    prefix: Annotated[str, _rule(_TOPIC.fullmatch, "must be a topic path without + or #")] = (
        "reservoirs"
    )
    client_id: str = ""  # empty: sensor-gateway-<reservoir_id> (relay: a random one)
    username: str = ""
    password: str = Field(default="", repr=False)
    tls_ca: str = ""  # CA bundle for mqtts:// (empty: the system's)
    qos: int = Field(default=1, ge=0, le=2)
    #: Readings and states kept on disk while the broker is away (oldest dropped first).
    #: Alert events are never dropped.
    outbox_readings: int = Field(default=100_000, ge=10)
    #: Home Assistant MQTT discovery: a retained config per measurement (gateway/mqtt/discovery.py).
    discovery: bool = False
    discovery_prefix: Annotated[
        str, _rule(_TOPIC.fullmatch, "must be a topic path without + or #")
    ] = "homeassistant"


class RelayConfig(_Model):
    """What ``sensor-gateway relay`` serves of what it hears on the broker."""

    #: Only these reservoirs (empty: any, up to max_reservoirs).
    reservoirs: list[
        Annotated[str, _rule(_NAME.fullmatch, "must be a reservoir_id (letters, digits, _ and -)")]
    ] = []
    #: Reservoirs served at most; those heard beyond it are ignored (one WARNING each).
    max_reservoirs: int = Field(default=64, ge=1)


# `register` is a contract key; pydantic warns that it shadows ABCMeta.register (harmless).
warnings.filterwarnings("ignore", message='Field name "register" in "SensorConfig"')


class SensorConfig(_Model):
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


class BusConfig(_Model):
    name: str = Field(min_length=1)
    port: Annotated[  # a device path, a pyserial URL, tcp://HOST:PORT, or sim://<device>
        str,
        Field(min_length=1),
        _rule(lambda p: p == p.strip(), "must not start or end with spaces"),
        _rule(lambda p: p != "sim://", "needs a device name, e.g. sim://ezo-ph"),
    ]
    protocol: Literal["ezo", "modbus-rtu", "modbus-tcp"]
    baudrate: Annotated[int, _rule(BAUDRATES.__contains__, _RATES)] = 9600
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
        _raise_problems(problems)
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


class ThresholdConfig(_Model):
    critical_low: float | None = None
    warning_low: float | None = None
    info_low: float | None = None
    info_high: float | None = None
    warning_high: float | None = None
    critical_high: float | None = None
    hysteresis: float = Field(default=0.0, ge=0)
    delay: int = Field(default=1, ge=1)
    stale_after: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        present = [(name, v) for name in _BOUNDS if (v := getattr(self, name)) is not None]
        problems: list[Problem] = []
        for (low_name, low), (name, value) in itertools.pairwise(present):
            across = low_name.endswith("_low") and name.endswith("_high")
            if value < low or (across and value == low):
                relation = "above" if across else "at least"
                problems.append(((name,), f"must be {relation} {low_name} ({low}), got {value}"))
        _raise_problems(problems)
        return self


class MeasurementConfig(_Model):
    """``[measurements.<name>]``: how a measurement is shown, and how often its probe
    wants calibrating."""

    label: str = ""  # empty: the dashboard's own name for the seed's four, else the key
    unit: str = ""  # empty: the seed's unit, or the EZO circuit's
    decimals: int | None = Field(default=None, ge=0, le=6)  # None: the seed's, else 2
    calibration_due_days: float | None = Field(default=None, gt=0)  # None: never due


NotifyEvent = Literal["raised", "escalated", "deescalated", "dismissed", "cleared", "offline"]
_MEASUREMENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


class NotifyTarget(_Model):
    """One ``[[notify]]`` table: where to send alert notifications, and which."""

    url: Annotated[
        str,
        Field(min_length=1, repr=False),
        _rule(_apprise_url, "not an apprise URL (mailto://, tgram://, ntfy://, json://...)"),
    ]
    min_severity: Literal["info", "warning", "critical"] = "warning"
    measurements: (
        list[Annotated[str, _rule(_MEASUREMENT_NAME.fullmatch, "must be a measurement name")]]
        | None
    ) = None  # None: all
    events: list[NotifyEvent] = Field(
        default=["raised", "escalated", "offline", "cleared"], min_length=1
    )
    repeat_minutes: float = Field(default=0.0, ge=0)  # 0: no reminders; fractions allowed


# The mapping load_config reads the environment from; settings_customise_sources is a
# classmethod, so this is how a per-call environ reaches it.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("gateway_config_environ", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {
            name if self.case_sensitive else name.lower(): value for name, value in environ.items()
        }


class Config(BaseSettings):
    """The whole configuration. Build it with :func:`load_config`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        allow_inf_nan=False,
    )

    reservoir_id: Annotated[  # it becomes part of MQTT topics
        str, _rule(_NAME.fullmatch, "must be letters, digits, '_' and '-' only")
    ] = "EMBALSE_01"
    data_dir: Path = Path("./data")
    server: ServerConfig = Field(default_factory=ServerConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    relay: RelayConfig = Field(default_factory=RelayConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    buses: list[BusConfig] = []
    measurements: dict[MeasurementName, MeasurementConfig] = {}
    thresholds: dict[MeasurementName, ThresholdConfig] = {}
    notify: list[NotifyTarget] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment first, so it beats the init kwargs (the file's values)."""
        environ = _ENVIRON.get()
        env = env_settings if environ is None else _MappingEnvSource(settings_cls, environ)
        return env, init_settings

    @field_validator("buses")
    @classmethod
    def _check_buses(cls, buses: list[BusConfig]) -> list[BusConfig]:
        """Runs once every bus is valid on its own, whatever else is wrong."""
        _raise_problems(list(_shared_problems(buses)))
        return buses

    @model_validator(mode="after")
    def _check_tables(self) -> Self:
        """A table for a name no bus reads is a typo; the seed's four may wait for a bus."""
        read = [s.measurement for bus in self.buses for s in bus.sensors]
        problems: list[Problem] = []
        for section in ("measurements", "thresholds"):
            for name in getattr(self, section):
                if name not in read and name not in MEASUREMENTS:
                    known = list(dict.fromkeys([*read, *MEASUREMENTS]))
                    message = _unknown(f"no bus reads {name!r}", name, known)
                    problems.append(((section, name), message))
        _raise_problems(problems)
        return self

    @field_validator("notify")
    @classmethod
    def _check_notify(cls, targets: list[NotifyTarget]) -> list[NotifyTarget]:
        first: dict[str, int] = {}
        problems: list[Problem] = []
        for j, target in enumerate(targets):
            i = first.setdefault(target.url, j)
            if i != j:
                problems.append(((j, "url"), f"the same target as notify[{i}]"))
        _raise_problems(problems)
        return targets


def _shared_problems(buses: Sequence[BusConfig]) -> Iterator[Problem]:
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


class ConfigError(GatewayError):
    """The configuration cannot be used; ``problems`` holds one line per fault."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def default_config_text() -> str:
    """The embedded default configuration (what ``make run`` uses), as TOML text."""
    return (files("gateway") / "default.toml").read_text(encoding="utf-8")


def load_config(path: Path | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (or the embedded default), apply ``GATEWAY_*`` variables, validate.

    ``environ`` defaults to ``os.environ``. Raises :class:`ConfigError` with every problem.
    """
    data = _read_toml(path)
    env = os.environ if environ is None else environ
    hidden = [f"{key}: unknown key" for key in data if key.startswith("_")]
    if hidden:  # BaseSettings would take these as its own init options
        raise ConfigError(hidden)
    token = _ENVIRON.set(env)
    try:
        return Config(**data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, env)) from None
    except SettingsError as exc:
        raise ConfigError([_settings_problem(exc, env)]) from None
    finally:
        _ENVIRON.reset(token)


def with_overrides(config: Config, changes: Mapping[str, Any]) -> Config:
    """``config`` with command-line values (``{"server": {"port": 99999}}``), validated as
    the file's are: raises :class:`ConfigError` naming the key (``server.port: ...``)."""
    data = config.model_dump(round_trip=True)
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, Mapping) else value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, {})) from None


def dump_config(config: Config) -> str:
    """The normalized configuration as indented JSON, with secrets masked."""
    data = config.model_dump(mode="json")
    if data["auth"]["jwt_secret"]:
        data["auth"]["jwt_secret"] = "***"
    if data["mqtt"]["password"]:
        data["mqtt"]["password"] = "***"
    url = data["mqtt"]["url"]
    if url and (password := urlsplit(url).password):
        data["mqtt"]["url"] = url.replace(f":{password}@", ":***@", 1)
    from gateway.notify.targets import redact

    for target in data["notify"]:
        target["url"] = redact(target["url"])
    return json.dumps(data, indent=2, ensure_ascii=False)


# Reading the file -------------------------------------------------------------

_TOML_WHERE = re.compile(r"(?P<msg>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)")


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        name, text = DEFAULT_NAME, default_config_text()
    else:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{name}: cannot read the file: {exc.strerror or exc}"]) from None
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{name}: not UTF-8 text (byte {exc.start})"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_WHERE.fullmatch(str(exc))
        if found is None:
            raise ConfigError([f"{name}: {exc}"]) from None
        where = f"line {found['line']}, column {found['column']}"
        raise ConfigError([f"{name}: {where}: {found['msg']}"]) from None


# Turning pydantic's errors into `path.to.key: message` --------------------------


def _problems(exc: ValidationError, environ: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    for error in exc.errors():
        loc, owner = _resolve(error["loc"])
        if error["type"] == _CHECKS:
            found: list[Problem] = error.get("ctx", {})["problems"]
            found = [((*loc, *sub), message) for sub, message in found]
        else:
            found = [(loc, _message(error, loc, owner))]
        for where, message in found:
            line = f"{_format_loc(where)}: {message}{_env_hint(where, environ)}"
            if line not in problems:
                problems.append(line)
    return problems


def _resolve(raw: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], type[BaseModel] | None]:
    """Drop pydantic's internal loc parts; return the path and the model holding its last key."""
    loc: list[str | int] = []
    node: Any = Config
    owner: type[BaseModel] | None = None
    for part in raw:
        if part == "[key]":  # a dict key that failed: the path ends at the key
            break
        if isinstance(node, type) and issubclass(node, BaseModel):
            if isinstance(part, str):
                loc.append(part)
                owner = node
                field = node.model_fields.get(part)
                node = field.annotation if field else None
        elif get_origin(node) is list and isinstance(part, int):
            loc.append(part)
            node, owner = get_args(node)[0], None
        elif get_origin(node) is dict and isinstance(part, str):
            loc.append(part)
            node, owner = get_args(node)[1], None
    return tuple(loc), owner


_PLAIN = {
    "missing": "required key is missing",
    "string_type": "must be text in quotes",
    "finite_number": "must be a finite number",
    "list_type": "must be a list",
    "path_type": "must be a path in quotes",
    **dict.fromkeys(("string_too_short", "too_short"), "must not be empty"),
    **dict.fromkeys(("int_type", "int_parsing", "int_from_float"), "must be a whole number"),
    **dict.fromkeys(("float_type", "float_parsing"), "must be a number"),
    **dict.fromkeys(("bool_type", "bool_parsing"), "must be true or false"),
    **dict.fromkeys(("model_type", "dict_type"), "must be a table"),
}


def _message(error: ErrorDetails, loc: tuple[str | int, ...], owner: type[BaseModel] | None) -> str:
    kind, key = error["type"], loc[-1] if loc else ""
    if kind == "extra_forbidden":
        return _unknown("unknown key", str(key), list(owner.model_fields) if owner else [])
    if "[key]" in error["loc"]:
        return f"not a measurement name: {error['msg']}, got {key!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal", "less_than"):
        message = _range(error, owner, str(key))
    elif kind in _PLAIN:
        message = _PLAIN[kind]
    else:
        message = error["msg"].removeprefix("Value error, ")
        message = re.sub(r"^Input should be\b", "must be", message)
    secret = owner is NotifyTarget and key == "url"  # apprise URLs carry passwords, tokens
    if kind != "missing" and not secret and not isinstance(error["input"], dict | list):
        message += f", got {error['input']!r}"
    if owner is SensorConfig and key == "unit":
        message += " (0 is broadcast and never answers reads)"
    return message


_WORDS = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}


def _range(error: ErrorDetails, owner: type[BaseModel] | None, key: str) -> str:
    field = owner.model_fields.get(key) if owner else None
    meta = field.metadata if field else []
    bounds = {k: v for m in meta for k in ("ge", "le") if (v := getattr(m, k, None)) is not None}
    if "ge" in bounds and "le" in bounds:
        return f"must be between {bounds['ge']} and {bounds['le']}"
    ctx = error.get("ctx", {})
    op = next(k for k in _WORDS if k in ctx)
    return f"must be {_WORDS[op]} {ctx[op]:g}"


def _unknown(what: str, key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"{what}; did you mean {close[0]!r}?"
    return f"{what}; known: {', '.join(known)}" if known else what


def _env_hint(loc: tuple[str | int, ...], environ: Mapping[str, str]) -> str:
    """Name the variables a value came from, when the environment set it."""
    keys = [str(p) for p in itertools.takewhile(lambda p: isinstance(p, str), loc)]
    for n in range(len(keys), 0, -1):
        name = (ENV_PREFIX + "__".join(keys[:n])).upper()
        found = [v for v in environ if v.upper() == name]
        if n == len(keys):  # variables below the key set it too
            found += [v for v in environ if v.upper().startswith(name + "__")]
        if found:
            return f" (from {', '.join(sorted(found))})"
    return ""


def _settings_problem(exc: SettingsError, environ: Mapping[str, str]) -> str:
    found = re.search(r'field "(\w+)"', str(exc))
    key = found[1] if found else "environment"
    cause = f" ({exc.__cause__})" if exc.__cause__ else ""
    hint = _env_hint((key,), environ)
    return f"{key}: lists and tables in the environment must be JSON{cause}{hint}"


def _format_loc(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text or "(top level)"
