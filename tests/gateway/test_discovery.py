"""The Home Assistant discovery configs a configuration makes (gateway/mqtt/discovery.py)."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.mqtt import discovery
from tests.gateway.conftest import fast_config

DISCOVERY = '[mqtt]\nurl = "mqtt://127.0.0.1:1883"\ndiscovery = true\nprefix = "plant/water"\n'


def test_one_config_per_measurement_read_with_a_class_home_assistant_accepts(
    tmp_path: Path,
) -> None:
    configs = {
        t: json.loads(p) for t, p in discovery.configs(fast_config(tmp_path, extra=DISCOVERY))
    }
    assert sorted(configs) == [
        "homeassistant/sensor/EMBALSE_01_ph/config",
        "homeassistant/sensor/EMBALSE_01_water_level/config",
    ]
    ph = configs["homeassistant/sensor/EMBALSE_01_ph/config"]
    assert ph["name"] == "pH"
    assert ph["device_class"] == "ph"
    assert "unit_of_measurement" not in ph  # Home Assistant's pH class takes none
    assert ph["state_topic"] == "plant/water/EMBALSE_01/sensors"
    assert ph["availability_topic"] == "plant/water/EMBALSE_01/status"
    assert ph["value_template"] == "{{ value_json.data.ph }}"
    level = configs["homeassistant/sensor/EMBALSE_01_water_level/config"]
    assert (level["device_class"], level["unit_of_measurement"]) == ("distance", "m")


def test_no_configs_unless_asked(tmp_path: Path) -> None:
    extra = '[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n'
    assert discovery.configs(fast_config(tmp_path, extra=extra)) == []
