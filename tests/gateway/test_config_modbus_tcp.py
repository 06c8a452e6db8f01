"""Configuration of Modbus TCP buses, RTU through a serial server, coils and discrete inputs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gateway.config import Config, ConfigError, dump_config, load_config

TCP_BUS = """
[[buses]]
name = "plc"
port = "{port}"
protocol = "{protocol}"
  [[buses.sensors]]
  measurement = "turbidity"
  unit = 1
  register = 0
  [[buses.sensors]]
  measurement = "pump"
  unit = 1
  register = 0
  register_type = "coil"
{extra}
"""


def load(tmp_path: Path, port: str, protocol: str = "modbus-tcp", extra: str = "") -> Config:
    path = tmp_path / "gateway.toml"
    path.write_text(textwrap.dedent(TCP_BUS.format(port=port, protocol=protocol, extra=extra)))
    return load_config(path)


def problems(tmp_path: Path, port: str, protocol: str = "modbus-tcp", extra: str = "") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, port, protocol, extra)
    return caught.value.problems


@pytest.mark.parametrize(
    ("port", "protocol"),
    [
        ("tcp://192.0.2.7:502", "modbus-tcp"),
        ("tcp://plc.local", "modbus-tcp"),  # 502 when left out
        ("tcp://192.0.2.8:4001", "modbus-rtu"),  # RTU through a serial server
    ],
)
def test_tcp_buses_load_and_their_dump_loads_again(
    tmp_path: Path, port: str, protocol: str
) -> None:
    config = load(tmp_path, port, protocol)
    [bus] = config.buses
    assert (bus.port, bus.protocol) == (port, protocol)
    assert [s.register_type for s in bus.sensors] == ["input", "coil"]
    dumped = json.loads(dump_config(config))
    assert "data_type" not in dumped["buses"][0]["sensors"][1]  # a coil has no layout
    assert "data_type" in dumped["buses"][0]["sensors"][0]
    again = tmp_path / "again.json"
    again.write_text(json.dumps(dumped))
    assert Config(**json.loads(again.read_text())).buses == config.buses


@pytest.mark.parametrize(
    ("port", "protocol", "problem"),
    [
        ("/dev/ttyUSB0", "modbus-tcp", "buses[0].port: modbus-tcp needs tcp://HOST:502"),
        ("tcp://192.0.2.8", "modbus-rtu", "buses[0].port: 'tcp://192.0.2.8' names no port"),
        ("tcp://plc:99999", "modbus-tcp", "buses[0].port: 'tcp://plc:99999': the port must be"),
        ("tcp://plc:502/unit1", "modbus-tcp", "buses[0].port: 'tcp://plc:502/unit1': only"),
    ],
)
def test_bad_tcp_ports_name_the_key(tmp_path: Path, port: str, protocol: str, problem: str) -> None:
    [found] = problems(tmp_path, port, protocol)
    assert found.startswith(problem), found


def test_a_coil_takes_no_register_layout(tmp_path: Path) -> None:
    extra = "  data_type = 'int16'\n  word_order = 'little'\n"
    assert problems(tmp_path, "tcp://plc:502", extra=extra) == [
        "buses[0].sensors[1].data_type: a coil is one bit (0 or 1): leave data_type out",
        "buses[0].sensors[1].word_order: a coil is one bit (0 or 1): leave word_order out",
    ]


def test_unknown_register_type_lists_the_four(tmp_path: Path) -> None:
    [found] = problems(
        tmp_path,
        "tcp://plc:502",
        extra="  [[buses.sensors]]\n  measurement = 'x'\n  register_type = 'relay'\n",
    )
    assert found.startswith("buses[0].sensors[2].register_type: must be 'input', 'holding', 'coil'")


def test_measurement_names_follow_the_pattern(tmp_path: Path) -> None:
    extra = "  [[buses.sensors]]\n  measurement = 'Turbidity 2'\n  register = 4\n"
    [found] = problems(tmp_path, "tcp://plc:502", extra=extra)
    assert found.startswith("buses[0].sensors[2].measurement: must be a lower-case letter")
