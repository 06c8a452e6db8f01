"""How long compensated EZO circuits wait at start for the first temperature."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.ezo_sensor import EzoSensor
from gateway.poller import temperature_wait_for
from tests.gateway.conftest import fast_config


def test_no_temperature_bus_no_wait(tmp_path: Path) -> None:
    config = fast_config(tmp_path)  # a pH circuit and a water level: nothing reads temperature
    assert temperature_wait_for(config.buses) == 0.0


def test_an_rtd_bus_is_waited_for_its_reading_time_and_timeout(tmp_path: Path) -> None:
    config = fast_config(
        tmp_path,
        extra='[[buses]]\nname = "rtd"\nport = "sim://ezo-rtd"\nprotocol = "ezo"\ntimeout = 0.5\n'
        '  [[buses.sensors]]\n  measurement = "temperature"\n',
    )
    assert temperature_wait_for(config.buses) == pytest.approx(EzoSensor.RTD_READ_TIME + 0.5)
