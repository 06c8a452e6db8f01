"""The gateway's configuration: a TOML file, overridden key by key by the environment.

Call :func:`load_config` once at start (``check-config`` calls it too). It
returns a validated :class:`Config` or raises :class:`ConfigError` listing
every problem as ``path.to.key: message``, so a technician can fix a file in
one pass. Keys and defaults are fixed by the contract; docs/configuration.md
is the reference.

The package: ``base`` (keys, limits, a problem at a key, :class:`ConfigError`),
``sections`` and ``buses`` (the tables), ``loading`` (:class:`Config`, reading and
validating), ``problems`` (pydantic's errors as ``path.to.key: message`` lines).
"""

from gateway.config.base import BAUDRATES, ConfigError
from gateway.config.buses import BusConfig, SensorConfig
from gateway.config.loading import (
    Config,
    default_config_text,
    dump_config,
    load_config,
    with_overrides,
)
from gateway.config.sections import (
    AlertsConfig,
    AuthConfig,
    MeasurementConfig,
    MqttConfig,
    NotifyTarget,
    RelayConfig,
    ServerConfig,
    StorageConfig,
    ThresholdConfig,
)

__all__ = [
    "BAUDRATES",
    "AlertsConfig",
    "AuthConfig",
    "BusConfig",
    "Config",
    "ConfigError",
    "MeasurementConfig",
    "MqttConfig",
    "NotifyTarget",
    "RelayConfig",
    "SensorConfig",
    "ServerConfig",
    "StorageConfig",
    "ThresholdConfig",
    "default_config_text",
    "dump_config",
    "load_config",
    "with_overrides",
]
