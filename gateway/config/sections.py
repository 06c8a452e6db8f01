"""The configuration's tables: ``[server]``, ``[auth]``, ``[storage]``, ``[alerts]``,
``[mqtt]``, ``[relay]``, ``[thresholds.*]``, ``[measurements.*]`` and ``[[notify]]``."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from drivers.model import MEASUREMENT_NAME
from gateway.config.base import BOUNDS, MIN_SECRET_BYTES, NAME, TOPIC, Problem, raise_problems, rule

#: A measurement a sensor reads: any name of the contract's pattern (the seed's four or more).
MeasurementName = Annotated[
    str,
    rule(
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


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ServerConfig(Section):
    #: "localhost": 127.0.0.1 and ::1; a list of addresses; "0.0.0.0"/"::" for every interface.
    host: Annotated[
        str | list[str],
        rule(
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
    public_url: Annotated[str, rule(_http_url, "must look like https://host[:port][/path]")] = ""
    language: Literal["es", "en"] = "es"  # of notifications


def _long_enough(secret: str) -> bool:
    return not secret or len(secret.encode()) >= MIN_SECRET_BYTES


class AuthConfig(Section):
    jwt_secret: Annotated[  # empty: no auth (unless a public key)
        str,
        rule(_long_enough, "must be at least 32 bytes: make one with `openssl rand -hex 32`"),
    ] = Field(default="", repr=False)
    #: PEM text of a public key (RS256/ES256 tokens from the control room), or a file's path.
    jwt_public_key: str = ""


class StorageConfig(Section):
    """The readings and alert history in SQLite."""

    retention_days: float = Field(default=30.0, gt=0)
    #: Closed alerts (cleared, or dismissed and back to normal) older than this are pruned
    #: with their events; active and still-latched ones never.
    alert_retention_days: float = Field(default=365.0, gt=0)
    readings_every: float = Field(default=10.0, gt=0)
    retry_interval: float = Field(default=2.0, gt=0, le=60)  # s between tries of held alert changes


class AlertsConfig(Section):
    """Alarm management (the bounds themselves are ``[thresholds.<measurement>]``)."""

    #: The longest an operator may shelve a measurement's alerts (ISA-18.2: bounded).
    max_shelve_minutes: float = Field(default=480.0, gt=0, le=10080)


class MqttConfig(Section):
    url: Annotated[str | None, rule(_mqtt_url, "must look like mqtt://host:1883")] = None
    prefix: Annotated[str, rule(TOPIC.fullmatch, "must be a topic path without + or #")] = (
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
        str, rule(TOPIC.fullmatch, "must be a topic path without + or #")
    ] = "homeassistant"


class RelayConfig(Section):
    """What ``sensor-gateway relay`` serves of what it hears on the broker."""

    #: Only these reservoirs (empty: any, up to max_reservoirs).
    reservoirs: list[
        Annotated[str, rule(NAME.fullmatch, "must be a reservoir_id (letters, digits, _ and -)")]
    ] = []
    #: Reservoirs served at most; those heard beyond it are ignored (one WARNING each).
    max_reservoirs: int = Field(default=64, ge=1)


class ThresholdConfig(Section):
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
        present = [(name, v) for name in BOUNDS if (v := getattr(self, name)) is not None]
        problems: list[Problem] = []
        for (low_name, low), (name, value) in itertools.pairwise(present):
            across = low_name.endswith("_low") and name.endswith("_high")
            if value < low or (across and value == low):
                relation = "above" if across else "at least"
                problems.append(((name,), f"must be {relation} {low_name} ({low}), got {value}"))
        raise_problems(problems)
        return self


class MeasurementConfig(Section):
    """``[measurements.<name>]``: how a measurement is shown, and how often its probe
    wants calibrating."""

    label: str = ""  # empty: the dashboard's own name for the seed's four, else the key
    unit: str = ""  # empty: the seed's unit, or the EZO circuit's
    decimals: int | None = Field(default=None, ge=0, le=6)  # None: the seed's, else 2
    calibration_due_days: float | None = Field(default=None, gt=0)  # None: never due


NotifyEvent = Literal["raised", "escalated", "deescalated", "dismissed", "cleared", "offline"]


class NotifyTarget(Section):
    """One ``[[notify]]`` table: where to send alert notifications, and which."""

    url: Annotated[
        str,
        Field(min_length=1, repr=False),
        rule(_apprise_url, "not an apprise URL (mailto://, tgram://, ntfy://, json://...)"),
    ]
    min_severity: Literal["info", "warning", "critical"] = "warning"
    measurements: (
        list[Annotated[str, rule(MEASUREMENT_NAME.fullmatch, "must be a measurement name")]] | None
    ) = None  # None: all
    events: list[NotifyEvent] = Field(
        default=["raised", "escalated", "offline", "cleared"], min_length=1
    )
    repeat_minutes: float = Field(default=0.0, ge=0)  # 0: no reminders; fractions allowed
