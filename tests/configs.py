"""Gateway TOML configs for tests, built from parts each test spells out.

``gateway_toml(data_dir, table("server", ...), bus(...), table("thresholds.ph", ...))``
gives the same text a test would otherwise write out by hand: a test still shows every
value it starts from; only the TOML syntax is written once, here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The sensors of the simulated devices, as a bus's ``[[buses.sensors]]`` entries.
PH = {"measurement": "ph"}
CONDUCTIVITY = {"measurement": "conductivity"}
TEMPERATURE = {"measurement": "temperature"}
WATER_LEVEL = {"measurement": "water_level", "unit": 1, "register": 0}


def value(item: Any) -> str:
    """One TOML value: a string or path quoted, a bool lower case, a list bracketed."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, (int, float)):
        return repr(item)
    if isinstance(item, (list, tuple)):
        return "[" + ", ".join(value(each) for each in item) + "]"
    return json.dumps(str(item))


def keys(indent: str = "", /, **pairs: Any) -> str:
    return "".join(f"{indent}{key} = {value(item)}\n" for key, item in pairs.items())


def table(header: str, /, **pairs: Any) -> str:
    """``[header]`` and its keys, in the order given."""
    return f"[{header}]\n" + keys(**pairs)


def entry(array: str, /, **pairs: Any) -> str:
    """``[[array]]`` (one entry of an array of tables) and its keys."""
    return f"[[{array}]]\n" + keys(**pairs)


def bus(
    name: str, port: str | Path, protocol: str, *sensors: dict[str, Any], **options: Any
) -> str:
    """One ``[[buses]]`` entry: ``options`` (timeout, poll_interval, ...) follow the
    protocol, then one ``[[buses.sensors]]`` per sensor."""
    head = entry("buses", name=name, port=port, protocol=protocol, **options)
    return head + "".join("  [[buses.sensors]]\n" + keys("  ", **s) for s in sensors)


def gateway_toml(data_dir: Path, *sections: str, **top: Any) -> str:
    """A whole config: ``top`` keys (reservoir_id, ...) and data_dir, then the sections
    (tables, buses, or raw TOML) in the order given, a blank line between."""
    return "\n".join([keys(**top, data_dir=data_dir), *sections])
