"""What the config tests share: a file loaded from text, its problems, and the pieces of
the fuzzed boundary (odd values, their TOML, the check that only ConfigError comes out)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from gateway.config import Config, ConfigError, load_config


def load(tmp_path: Path, text: str, name: str = "gateway.toml") -> Config:
    """``text`` written to ``tmp_path / name`` and loaded."""
    path = tmp_path / name
    path.write_text(text)
    return load_config(path)


def problems(tmp_path: Path, text: str, name: str = "gateway.toml") -> list[str]:
    """The problem lines of the ConfigError that loading ``text`` must raise."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, name)
    return caught.value.problems


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
#: ``path.to.key: message``, or ``<file>: line L, column C: message``.
PROBLEM = re.compile(r"\S[^\n]*: \S[^\n]*")
text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)
scalars = (
    st.integers(-(2**70), 2**70)
    | st.floats()
    | st.booleans()
    | text
    | st.sampled_from(["mqtt://h:1883", "mqtts://", "0", "-1", "1e400", "nan", "EMBALSE_01"])
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # ints, floats, and strings (JSON's escapes are TOML's)


def assert_only_config_errors(load: Any) -> Config | None:
    """Call ``load``: it gives a Config (returned), or a ConfigError whose every line names
    a key or the file (None)."""
    problems: list[str] = []
    try:
        config = load()
    except ConfigError as exc:
        problems = exc.problems or ["(a ConfigError with no problems)"]
    else:
        assert isinstance(config, Config)
        return config
    for line in problems:
        assert PROBLEM.fullmatch(line), line
    return None
