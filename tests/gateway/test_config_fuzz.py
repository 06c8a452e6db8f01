"""The configuration boundary, fuzzed: a file and the GATEWAY_* environment (the command
line: tests/test_cli.py).

Whatever a technician (or a cat on the keyboard) writes, load_config gives a Config or a
ConfigError whose lines name a key or the file, never another exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import load_config
from tests.config_fuzz import FUZZ, assert_only_config_errors, text, toml_value, values

KEYS = {
    "": ["reservoir_id", "data_dir", "nonsense"],
    "server": ["host", "port", "sensor_interval", "heartbeat_interval", "allowed_origins",
               "max_message_bytes", "client_queue", "compression", "history",
               "max_connections", "action_rate", "action_burst"],
    "auth": ["jwt_secret", "jwt_public_key"],
    "mqtt": ["url", "prefix", "qos", "client_id", "outbox_readings", "tls_ca"],
    "storage": ["readings_every", "retention_days"],
    "thresholds.ph": ["warning_low", "warning_high", "critical_high", "hysteresis", "delay"],
}  # fmt: skip


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_text_in_the_file_gives_a_config_or_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text(content, encoding="utf-8", errors="surrogateescape")
    assert_only_config_errors(lambda: load_config(path))


@FUZZ
@given(st.binary(max_size=100))
def test_any_bytes_in_the_file_give_a_config_or_config_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(raw)
    assert_only_config_errors(lambda: load_config(path))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(list(KEYS)).flatmap(
            lambda section: st.tuples(st.just(section), st.sampled_from(KEYS[section]))
        ),
        values,
        max_size=6,
    )
)
def test_odd_values_for_every_key_give_a_config_or_config_error(
    tmp_path: Path, settings_: dict[tuple[str, str], Any]
) -> None:
    sections: dict[str, list[str]] = {}
    for (section, key), value in settings_.items():
        sections.setdefault(section, []).append(f"{key} = {toml_value(value)}")
    lines = [*sections.pop("", [])]
    for section, body in sections.items():
        lines += [f"[{section}]", *body]
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert_only_config_errors(lambda: load_config(path))


ENV = [
    "GATEWAY_SERVER__PORT", "GATEWAY_SERVER__HOST", "GATEWAY_SERVER__ALLOWED_ORIGINS",
    "GATEWAY_MQTT__URL", "GATEWAY_MQTT__QOS", "GATEWAY_RESERVOIR_ID", "GATEWAY_BUSES",
    "GATEWAY_THRESHOLDS", "GATEWAY_SERVER", "GATEWAY_AUTH__JWT_SECRET", "GATEWAY_DATA_DIR",
    "GATEWAY_THRESHOLDS__PH__WARNING_LOW", "GATEWAY_STORAGE__RETENTION_DAYS",
]  # fmt: skip


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(ENV),
        text | st.sampled_from(["[", "{}", "[1,", '{"a": 1}', "nan", "1e999", "-0", "[]"]),
        max_size=4,
    )
)
def test_odd_environment_values_give_a_config_or_config_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert_only_config_errors(lambda: load_config(None))
