"""``[measurements.<name>]``, ``circuit`` and thresholds for any measurement a bus reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import ConfigError, dump_config
from tests.config_fuzz import FUZZ, load, problems, toml_value, values

DO_BUS = """
[[buses]]
name = "do-probe"
port = "/dev/ttyUSB3"
protocol = "ezo"
  [[buses.sensors]]
  measurement = "dissolved_oxygen"
  circuit = "do"
"""


def test_a_measurement_table_and_thresholds_for_a_new_name(tmp_path: Path) -> None:
    text = (
        DO_BUS
        + """
[measurements.dissolved_oxygen]
label = "Oxígeno disuelto"
unit = "mg/L"
decimals = 2
calibration_due_days = 30
[thresholds.dissolved_oxygen]
warning_low = 5.0
critical_low = 3.0
"""
    )
    config = load(tmp_path, text)
    table = config.measurements["dissolved_oxygen"]  # type: ignore[attr-defined]
    assert (table.label, table.unit, table.decimals, table.calibration_due_days) == (
        "Oxígeno disuelto", "mg/L", 2, 30.0,
    )  # fmt: skip
    assert config.thresholds["dissolved_oxygen"].warning_low == 5.0  # type: ignore[attr-defined]
    assert config.buses[0].sensors[0].circuit == "do"  # type: ignore[attr-defined]
    again = json.loads(dump_config(config))  # type: ignore[arg-type]
    assert again["buses"][0]["sensors"][0] == {
        "measurement": "dissolved_oxygen", "scale": 1.0, "offset": 0.0, "circuit": "do",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DO_BUS + "[thresholds.dissolved_oxygn]\nwarning_low = 5.0\n",
         "thresholds.dissolved_oxygn: no bus reads 'dissolved_oxygn'; "
         "did you mean 'dissolved_oxygen'?"),
        (DO_BUS + "[measurements.orp]\nlabel = 'ORP'\n",
         "measurements.orp: no bus reads 'orp'; known: dissolved_oxygen, temperature, ph, "
         "conductivity, water_level"),
        (DO_BUS + "[measurements.Bad-Name]\nlabel = 'x'\n",
         "measurements.Bad-Name: not a measurement name: must be a lower-case letter, then up "
         "to 31 lower-case letters, digits or '_', got 'Bad-Name'"),
        (DO_BUS + "[measurements.dissolved_oxygen]\ndecimals = 9\n",
         "measurements.dissolved_oxygen.decimals: must be between 0 and 6, got 9"),
        (DO_BUS.replace('"do"', '"ozone"'),
         "buses[0].sensors[0].circuit: must be 'ph', 'ec', 'rtd', 'do' or 'orp', got 'ozone'"),
    ],
)  # fmt: skip
def test_each_problem_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    assert problems(tmp_path, text) == [expected]


def test_the_seeds_thresholds_may_wait_for_their_bus(tmp_path: Path) -> None:
    config = load(tmp_path, DO_BUS + "[thresholds.ph]\nwarning_low = 6.0\n")
    assert "ph" in config.thresholds  # type: ignore[attr-defined]


_KEYS = st.sampled_from(["label", "unit", "decimals", "calibration_due_days", "colour"])


@FUZZ
@given(
    name=st.one_of(
        st.sampled_from(["dissolved_oxygen", "ph", "orp"]),
        st.from_regex(r"[A-Za-z_]{1,12}", fullmatch=True),
    ),
    table=st.dictionaries(_KEYS, values, max_size=4),
)
def test_any_measurements_table_loads_or_gives_config_errors(
    tmp_path: Path, name: str, table: dict[str, object]
) -> None:
    """Whatever the [measurements] table holds: a Config, or ConfigError lines naming keys."""
    text = f"[measurements.{name}]\n" + "".join(
        f"{k} = {toml_value(v)}\n" for k, v in table.items()
    )
    problems: list[str] = []
    try:
        load(tmp_path, DO_BUS + text)
    except ConfigError as exc:
        problems = exc.problems or ["(none)"]
    assert all(line.startswith(("measurements.", str(tmp_path))) for line in problems), problems
