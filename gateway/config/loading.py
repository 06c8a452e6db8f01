"""The whole configuration: read the file, apply the environment, validate, dump."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from drivers.model import MEASUREMENTS
from gateway.config.base import (
    DEFAULT_NAME,
    ENV_PREFIX,
    NAME,
    ConfigError,
    Problem,
    raise_problems,
    rule,
    unknown,
)
from gateway.config.buses import BusConfig, shared_problems
from gateway.config.problems import error_lines, settings_problem
from gateway.config.sections import (
    AlertsConfig,
    AuthConfig,
    MeasurementConfig,
    MeasurementName,
    MqttConfig,
    NotifyTarget,
    RelayConfig,
    ServerConfig,
    StorageConfig,
    ThresholdConfig,
)


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
        str, rule(NAME.fullmatch, "must be letters, digits, '_' and '-' only")
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
        """The ``GATEWAY_*`` environment first, so it beats keyword arguments (what
        :func:`with_overrides` validates); :func:`load_config` adds the TOML file after both."""
        return env_settings, init_settings

    @field_validator("buses")
    @classmethod
    def _check_buses(cls, buses: list[BusConfig]) -> list[BusConfig]:
        """Runs once every bus is valid on its own, whatever else is wrong."""
        raise_problems(list(shared_problems(buses)))
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
                    message = unknown(f"no bus reads {name!r}", name, known)
                    problems.append(((section, name), message))
        raise_problems(problems)
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
        raise_problems(problems)
        return targets


def default_config_text() -> str:
    """The embedded default configuration (what ``make run`` uses), as TOML text."""
    return (files("gateway") / "default.toml").read_text(encoding="utf-8")


def load_config(path: Path | None = None) -> Config:
    """Read ``path`` (or the embedded default), apply ``GATEWAY_*`` variables, validate.

    Raises :class:`ConfigError` with every problem.
    """
    if path is not None and not path.is_file():  # the TOML source would skip it silently
        try:
            path.open("rb").close()
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read the file: {exc.strerror or exc}"]) from None
    try:
        sources = (EnvSettingsSource(Config), TomlFile(Config, path))  # the first wins
        # _build_sources is BaseSettings.__init__'s documented argument; the mypy plugin hides it
        return Config(_build_sources=(sources, {}))  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(error_lines(exc, os.environ, Config)) from None
    except SettingsError as exc:
        raise ConfigError([settings_problem(exc, os.environ)]) from None


def with_overrides(config: Config, changes: Mapping[str, Any]) -> Config:
    """``config`` with command-line values (``{"server": {"port": 99999}}``), validated as
    the file's are: raises :class:`ConfigError` naming the key (``server.port: ...``)."""
    data = config.model_dump(round_trip=True)
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, Mapping) else value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(error_lines(exc, {}, Config)) from None


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


class TomlFile(TomlConfigSettingsSource):
    """pydantic-settings' TOML source, reading ``path`` (default: the embedded default.toml)
    and reporting a file it cannot use as ``file: line L, column C: message``."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None = None) -> None:
        self.name = DEFAULT_NAME if path is None else str(path)
        file = files("gateway") / "default.toml" if path is None else path
        super().__init__(settings_cls, toml_file=file)

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            text = file_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                [f"{self.name}: cannot read the file: {exc.strerror or exc}"]
            ) from None
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{self.name}: not UTF-8 text (byte {exc.start})"]) from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            found = _TOML_WHERE.fullmatch(str(exc))
            if found is None:
                raise ConfigError([f"{self.name}: {exc}"]) from None
            where = f"line {found['line']}, column {found['column']}"
            raise ConfigError([f"{self.name}: {where}: {found['msg']}"]) from None
