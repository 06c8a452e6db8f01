"""Home Assistant MQTT discovery (``[mqtt] discovery = true``).

One retained config per measurement this gateway reads, under
``<discovery_prefix>/sensor/<reservoir_id>_<measurement>/config``: Home
Assistant then makes a sensor of it, reading the value out of the retained
``<prefix>/<reservoir_id>/sensors`` message (``value_json.data.<measurement>``)
and showing it unavailable while ``<prefix>/<reservoir_id>/status`` is
``offline`` (the gateway's last will). The uplink publishes them at every
connect (gateway/mqtt/uplink.py); docs/integrations.md shows the recipe.
"""

from __future__ import annotations

import importlib.metadata
import json
from typing import Any

from drivers.model import UNITS
from gateway.config import Config

#: Home Assistant's device class (and the unit it accepts) where one fits the measurement.
DEVICE_CLASSES: dict[str, tuple[str, str | None]] = {
    "temperature": ("temperature", "°C"),
    "ph": ("ph", None),  # Home Assistant's pH class takes no unit
    "conductivity": ("conductivity", "µS/cm"),
    "water_level": ("distance", "m"),
    "orp": ("voltage", "mV"),
}


#: Names shown where the configuration gives no ``label`` (else the name, capitalised).
LABELS = {"ph": "pH", "orp": "ORP", "do": "Dissolved oxygen"}


def measurements_of(config: Config) -> dict[str, tuple[str, str]]:
    """Each measurement read on some bus: (label, unit), from ``[measurements.<name>]``
    where the configuration has that table, else the name and the seed's unit."""
    tables: dict[str, Any] = dict(getattr(config, "measurements", None) or {})
    found: dict[str, tuple[str, str]] = {}
    for sensor in (s for bus in config.buses for s in bus.sensors):
        name = str(sensor.measurement)
        table = tables.get(name)
        default = LABELS.get(name) or name.replace("_", " ").capitalize()
        label = str(getattr(table, "label", "") or default)
        unit = str(getattr(table, "unit", "") or UNITS.get(name, ""))
        found.setdefault(name, (label, unit))
    return found


def configs(config: Config) -> list[tuple[str, bytes]]:
    """(topic, payload) of every discovery config; none unless ``[mqtt] discovery``."""
    if not config.mqtt.discovery:
        return []
    site = config.reservoir_id
    base = f"{config.mqtt.prefix}/{site}"
    device = {
        "identifiers": [f"sensor-gateway-{site}"],
        "name": f"Reservoir {site}",
        "manufacturer": "sensor-gateway",
        "model": "sensor-gateway",
        "sw_version": importlib.metadata.version("sensor-gateway"),
    }
    out = []
    for name, (label, unit) in measurements_of(config).items():
        entity: dict[str, Any] = {
            "name": label,
            "unique_id": f"{site}_{name}",
            "object_id": f"{site}_{name}".lower(),
            "state_topic": f"{base}/sensors",
            "value_template": f"{{{{ value_json.data.{name} }}}}",
            "state_class": "measurement",
            "availability_topic": f"{base}/status",
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        }
        entity |= _unit_and_class(name, unit)
        topic = f"{config.mqtt.discovery_prefix}/sensor/{site}_{name}/config"
        out.append((topic, json.dumps(entity, ensure_ascii=False).encode()))
    return out


def _unit_and_class(name: str, unit: str) -> dict[str, str]:
    """``device_class`` where Home Assistant has one for this measurement in this unit
    (it refuses a config whose unit does not fit the class), and the unit."""
    fitting = DEVICE_CLASSES.get(name)
    if fitting is not None and fitting[1] is None:
        return {"device_class": fitting[0]}
    out = {"unit_of_measurement": unit} if unit else {}
    if fitting is not None and fitting[1] == unit:
        out["device_class"] = fitting[0]
    return out
