"""What a reload (SIGHUP) may change while running, and what needs a restart.

:meth:`gateway.service.Gateway.reload` applies a re-read configuration: it asks
:func:`differences` what changed, keeps the running value of every key in
:data:`RESTART` (:func:`running_with`), and says which of those changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from gateway.config import BusConfig, Config

#: Keys read once at start (sockets, tokens, the broker session, task intervals, ids):
#: a reload keeps their running values and says they need a restart.
RESTART = (
    "reservoir_id",
    "data_dir",
    "server.host",
    "server.port",
    "server.sensor_interval",
    "server.heartbeat_interval",
    "server.history",
    "auth.jwt_secret",
    "auth.jwt_public_key",
    "mqtt",
    "storage.readings_every",
)


def differences(old: Config, new: Config) -> list[str]:
    """The keys whose values differ, as dotted paths; a bus as ``buses.<name>``."""
    found: list[str] = []
    for name in type(old).model_fields:
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        if name == "buses":
            found += [f"buses.{bus}" for bus in changed_buses(before, after)]
        elif isinstance(before, BaseModel) and name != "mqtt":
            found += [
                f"{name}.{key}"
                for key in type(before).model_fields
                if getattr(before, key) != getattr(after, key)
            ]
        elif isinstance(before, dict):
            keys = [*before, *(k for k in after if k not in before)]
            found += [f"{name}.{k}" for k in keys if before.get(k) != after.get(k)]
        else:
            found.append(name)
    return found


def changed_buses(old: Sequence[BusConfig], new: Sequence[BusConfig]) -> list[str]:
    """Names of the buses added, removed, or configured differently."""
    before = {bus.name: bus for bus in old}
    after = {bus.name: bus for bus in new}
    names = [*before, *(name for name in after if name not in before)]
    return [name for name in names if before.get(name) != after.get(name)]


def needs_restart(key: str) -> bool:
    return key in RESTART or key.split(".", 1)[0] in RESTART


def running_with(old: Config, new: Config) -> Config:
    """``new``, but with the running value of every key a reload cannot apply."""
    server = new.server.model_copy(
        update={
            key.split(".")[1]: getattr(old.server, key.split(".")[1])
            for key in RESTART
            if key.startswith("server.")
        }
    )
    storage = new.storage.model_copy(update={"readings_every": old.storage.readings_every})
    return new.model_copy(
        update={
            "reservoir_id": old.reservoir_id,
            "data_dir": old.data_dir,
            "server": server,
            "auth": old.auth,
            "mqtt": old.mqtt,
            "storage": storage,
        }
    )
