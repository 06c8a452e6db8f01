"""gateway.config: the TOML file, the environment over it, and every problem at its key."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from drivers.model import MEASUREMENTS
from gateway.config import (
    Config,
    ConfigError,
    default_config_text,
    dump_config,
    load_config,
)

EZO_BUS = """
[[buses]]
name = "ph-probe"
port = "/dev/ttyUSB0"
protocol = "ezo"
  [[buses.sensors]]
  measurement = "ph"
"""

MODBUS_BUS = """
[[buses]]
name = "rs485-1"
port = "/dev/ttyUSB1"
protocol = "modbus-rtu"
  [[buses.sensors]]
  measurement = "water_level"
  unit = {unit}
"""

# The contract's example, every key written out; the sensor keys that are
# modbus-only sit on a modbus-rtu bus, where they are allowed.
CONTRACT = """
reservoir_id = "EMBALSE_01"
data_dir = "./data"

[server]
host = "127.0.0.1"
port = 8000
sensor_interval = 10.0
heartbeat_interval = 30.0
allowed_origins = []
max_message_bytes = 65536
client_queue = 256
compression = false
history = 1000

[auth]
jwt_secret = ""

[[buses]]
name = "ph-probe"
port = "/dev/ttyUSB0"
protocol = "ezo"
baudrate = 9600
timeout = 1.0
retries = 2
poll_interval = 2.0
request_gap = 0.0
echo = false
  [[buses.sensors]]
  measurement = "ph"
  scale = 1.0
  offset = 0.0

[[buses]]
name = "rs485-1"
port = "socket://192.0.2.10:4001"
protocol = "modbus-rtu"
baudrate = 19200
echo = true
  [[buses.sensors]]
  measurement = "water_level"
  scale = 1.0
  offset = 0.0
  unit = 1
  register = 0
  register_type = "input"
  data_type = "float32"
  word_order = "big"
  byte_order = "big"
  [[buses.sensors]]
  measurement = "temperature"
  scale = 0.1
  unit = 1
  register = 2
  data_type = "int16"

[thresholds.ph]
critical_low = 5.0
warning_low = 6.0
info_low = 6.5
info_high = 8.0
warning_high = 8.5
critical_high = 9.0
hysteresis = 0.1
delay = 2
stale_after = 30.0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (environ or {}).items():
            patch.setenv(name, value)
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, text))
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_embedded_default_loads() -> None:
    config = load_config()
    assert config.reservoir_id == "EMBALSE_01"
    assert config.data_dir == Path("data")
    assert config.server == Config().server.model_copy()  # written out: the defaults
    assert [(b.name, b.port, b.protocol) for b in config.buses] == [
        ("ph-probe", "sim://ezo-ph", "ezo"),
        ("ec-probe", "sim://ezo-ec", "ezo"),
        ("temperature-probe", "sim://ezo-rtd", "ezo"),
        ("rs485-1", "sim://modbus", "modbus-rtu"),
    ]
    assert [s.measurement for b in config.buses for s in b.sensors] == [
        "ph",
        "conductivity",
        "temperature",
        "water_level",
    ]
    assert {b.poll_interval for b in config.buses} == {2.0}
    assert set(config.thresholds) == set(MEASUREMENTS)
    ph = config.thresholds["ph"]
    assert (ph.critical_low, ph.info_low, ph.critical_high, ph.delay) == (5.0, 6.5, 9.0, 2)
    assert config.thresholds["water_level"].hysteresis == 0.05
    assert config.auth.jwt_secret == ""
    assert "[[buses]]" in default_config_text()


def test_contract_example_loads_and_round_trips(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONTRACT))
    assert config.server.max_connections is None
    modbus = config.buses[1]
    points = [s.modbus_point() for s in modbus.sensors]
    assert [(p.unit, p.register, p.count, p.function) for p in points] == [
        (1, 0, 2, 4),
        (1, 2, 1, 4),
    ]
    assert modbus.echo is True
    assert modbus.baudrate == 19200
    dumped = json.loads(dump_config(config))
    assert dumped["buses"][1]["sensors"][1]["data_type"] == "int16"
    assert set(dumped["buses"][0]["sensors"][0]) == {"measurement", "scale", "offset"}
    assert Config.model_validate(dumped) == config


def test_defaults_fill_a_minimal_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, EZO_BUS))
    bus = config.buses[0]
    assert (bus.baudrate, bus.timeout, bus.retries, bus.poll_interval) == (9600, 1.0, 2, 2.0)
    assert (bus.request_gap, bus.echo) == (0.0, False)
    sensor = bus.sensors[0]
    assert (sensor.scale, sensor.offset, sensor.unit, sensor.register) == (1.0, 0.0, 1, 0)
    assert (sensor.register_type, sensor.data_type) == ("input", "float32")
    assert (sensor.word_order, sensor.byte_order) == ("big", "big")
    assert config.thresholds == {}
    assert config.server.port == 8000


def test_an_empty_file_is_a_gateway_without_buses(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.buses == []
    assert config.mqtt.url is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            EZO_BUS + MODBUS_BUS.format(unit=0),
            "buses[1].sensors[0].unit: must be between 1 and 247, got 0 "
            "(0 is broadcast and never answers reads)",
            id="unit-broadcast",
        ),
        pytest.param(
            EZO_BUS + '  colour = "red"\n',
            "buses[0].sensors[0].colour: unknown key; known: measurement, scale, offset, unit, "
            "register, register_type, data_type, word_order, byte_order, circuit",
            id="unknown-key-lists-the-known",
        ),
        pytest.param(
            EZO_BUS.replace('protocol = "ezo"', 'protocol = "ezo"\npol_interval = 2.0'),
            "buses[0].pol_interval: unknown key; did you mean 'poll_interval'?",
            id="unknown-key-suggests",
        ),
        pytest.param(
            "reservoir = 'X'\n",
            "reservoir: unknown key; did you mean 'reservoir_id'?",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "[server]\nport = 'abc'\n", "server.port: must be a whole number, got 'abc'", id="type"
        ),
        pytest.param(
            "[server]\nport = 70000\n",
            "server.port: must be between 0 and 65535, got 70000",
            id="port-range",
        ),
        pytest.param(
            "[server]\nsensor_interval = 0\n",
            "server.sensor_interval: must be greater than 0, got 0",
            id="interval-positive",
        ),
        pytest.param(
            "[server]\nmax_connections = 0\n",
            "server.max_connections: must be at least 1, got 0",
            id="max-connections",
        ),
        pytest.param(
            "[server]\ncompression = 'maybe'\n",
            "server.compression: must be true or false, got 'maybe'",
            id="bool",
        ),
        pytest.param(
            "reservoir_id = 'EMBALSE 01'\n",
            "reservoir_id: must be letters, digits, '_' and '-' only, got 'EMBALSE 01'",
            id="reservoir-id",
        ),
        pytest.param(
            EZO_BUS + EZO_BUS.replace("ttyUSB0", "ttyUSB9").replace('"ph-probe"', '"ph-2"'),
            "buses[1].sensors[0].measurement: already read by buses[0].sensors[0]",
            id="duplicate-measurement",
        ),
        pytest.param(
            EZO_BUS + "  register = 3\n",
            "buses[0].sensors[0].register: only for Modbus buses (modbus-rtu, modbus-tcp)",
            id="modbus-key-on-ezo-bus",
        ),
        pytest.param(
            EZO_BUS + '  [[buses.sensors]]\n  measurement = "temperature"\n',
            "buses[0].sensors: an ezo bus has one circuit per port, found 2 sensors; "
            "give each circuit its own [[buses]]",
            id="ezo-one-circuit",
        ),
        pytest.param(
            EZO_BUS + '  circuit = "ph"\n' + MODBUS_BUS.format(unit=1) + '  circuit = "ec"\n',
            "buses[1].sensors[0].circuit: only for ezo buses",
            id="circuit-on-modbus",
        ),
        pytest.param(
            MODBUS_BUS.format(unit=1)
            + '  [[buses.sensors]]\n  measurement = "temperature"\n  register = 1\n',
            "buses[0].sensors[1].register: input registers 1..2 of unit 1 overlap sensors[0] "
            "(water_level, registers 0..1)",
            id="overlapping-registers",
        ),
        pytest.param(
            MODBUS_BUS.format(unit=1).replace("unit = 1", "register = 65535"),
            "buses[0].sensors[0].register: register 65535 is outside 0..65534",
            id="driver-register-range",
        ),
        pytest.param(
            MODBUS_BUS.format(unit=1) + "  data_type = 'int64'\n",
            "buses[0].sensors[0].data_type: must be 'int16', 'uint16', 'int32', 'uint32' or "
            "'float32', got 'int64'",
            id="literal",
        ),
        pytest.param(
            EZO_BUS.replace('protocol = "ezo"', 'protocol = "ezo"\nbaudrate = 9601'),
            "buses[0].baudrate: must be one of the standard rates 1200, 2400, 4800, 9600, "
            "19200, 38400, 57600, 115200, got 9601",
            id="baudrate",
        ),
        pytest.param(
            EZO_BUS.replace('protocol = "ezo"\n', ""),
            "buses[0].protocol: required key is missing",
            id="missing-key",
        ),
        pytest.param(
            "[[buses]]\nname = 'a'\nport = 'p'\nprotocol = 'ezo'\nsensors = []\n",
            "buses[0].sensors: must not be empty",
            id="no-sensors",
        ),
        pytest.param(
            EZO_BUS.replace('port = "/dev/ttyUSB0"', 'port = "sim://"'),
            "buses[0].port: needs a device name, e.g. sim://ezo-ph, got 'sim://'",
            id="sim-port",
        ),
        pytest.param(
            EZO_BUS + EZO_BUS.replace('"ph"', '"conductivity"').replace("USB0", "USB9"),
            "buses[1].name: already used by buses[0]",
            id="duplicate-name",
        ),
        pytest.param(
            EZO_BUS + EZO_BUS.replace('"ph"', '"conductivity"').replace('"ph-probe"', '"ec"'),
            "buses[1].port: already used by buses[0] (ph-probe)",
            id="duplicate-port",
        ),
        pytest.param(
            "[thresholds.ph]\ncritical_low = 5.0\nwarning_low = 4.0\n",
            "thresholds.ph.warning_low: must be at least critical_low (5.0), got 4.0",
            id="thresholds-unordered",
        ),
        pytest.param(
            "[thresholds.ph]\ninfo_low = 6.5\ninfo_high = 6.5\n",
            "thresholds.ph.info_high: must be above info_low (6.5), got 6.5",
            id="thresholds-low-meets-high",
        ),
        pytest.param(
            "[thresholds.temperature]\nwarning_low = 30.0\ncritical_high = 25.0\n",
            "thresholds.temperature.critical_high: must be above warning_low (30.0), got 25.0",
            id="thresholds-low-above-high",
        ),
        pytest.param(
            "[thresholds.phh]\nwarning_low = 4.0\n",
            "thresholds.phh: no bus reads 'phh'; did you mean 'ph'?",
            id="thresholds-unknown-measurement",
        ),
        pytest.param(
            "[thresholds.ph]\nstale_after = inf\n",
            "thresholds.ph.stale_after: must be a finite number, got inf",
            id="not-finite",
        ),
        pytest.param(
            "[thresholds.ph]\ndelay = 2.5\n",
            "thresholds.ph.delay: must be a whole number, got 2.5",
            id="whole-number",
        ),
        pytest.param(
            "[mqtt]\nurl = 'http://broker'\n",
            "mqtt.url: must look like mqtt://host:1883, got 'http://broker'",
            id="mqtt-url",
        ),
        pytest.param(
            "_env_file = '.env'\n", "_env_file: unknown key", id="settings-option-in-file"
        ),
    ],
)
def test_each_problem_is_reported_at_its_key(tmp_path: Path, text: str, expected: str) -> None:
    assert problems_of(tmp_path, text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(MODBUS_BUS.format(unit=1) + "  register_type = 'holding'\n", id="one"),
        pytest.param(
            MODBUS_BUS.format(unit=1)
            + '  [[buses.sensors]]\n  measurement = "temperature"\n  register = 2\n'
            + '  data_type = "int16"\n  [[buses.sensors]]\n  measurement = "ph"\n'
            + "  register = 0\n  register_type = 'holding'\n"
            + '  [[buses.sensors]]\n  measurement = "conductivity"\n  unit = 2\n',
            id="touching-or-other-unit-or-type",
        ),
        pytest.param("[thresholds.water_level]\nwarning_high = 15.0\n", id="no-bus-reads-it"),
        pytest.param("[thresholds.ph]\nwarning_low = 6.0\ncritical_low = 6.0\n", id="equal-lows"),
    ],
)
def test_what_is_allowed(tmp_path: Path, text: str) -> None:
    load_config(write(tmp_path, text))


def test_several_problems_at_once(tmp_path: Path) -> None:
    text = (
        "reservoir_id = ''\n[server]\nport = -1\n"
        + EZO_BUS
        + MODBUS_BUS.format(unit=300)
        + "[thresholds.ph]\nwarning_high = 8.0\ncritical_high = 7.0\n"
    )
    assert problems_of(tmp_path, text) == [
        "reservoir_id: must be letters, digits, '_' and '-' only, got ''",
        "server.port: must be between 0 and 65535, got -1",
        "buses[1].sensors[0].unit: must be between 1 and 247, got 300 "
        "(0 is broadcast and never answers reads)",
        "thresholds.ph.critical_high: must be at least warning_high (8.0), got 7.0",
    ]


def test_buses_are_compared_whatever_else_is_wrong(tmp_path: Path) -> None:
    text = "[server]\nport = 'x'\n" + EZO_BUS + EZO_BUS + "[thresholds.ph]\ndelay = 0\n"
    assert problems_of(tmp_path, text) == [
        "server.port: must be a whole number, got 'x'",
        "buses[1].name: already used by buses[0]",
        "buses[1].port: already used by buses[0] (ph-probe)",
        "buses[1].sensors[0].measurement: already read by buses[0].sensors[0]",
        "thresholds.ph.delay: must be at least 1, got 0",
    ]


def test_cross_checks_of_one_bus_all_reported(tmp_path: Path) -> None:
    text = EZO_BUS + "  unit = 2\n  byte_order = 'little'\n"
    assert problems_of(tmp_path, text) == [
        "buses[0].sensors[0].unit: only for Modbus buses (modbus-rtu, modbus-tcp)",
        "buses[0].sensors[0].byte_order: only for Modbus buses (modbus-rtu, modbus-tcp)",
    ]


def test_bad_toml_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 8000\nhost = "127.0.0.1\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert problem == f"{path}: line 3, column 18: Illegal character '\\n'"


def test_duplicate_toml_key_is_a_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 1\nport = 2\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].startswith(f"{path}: line 3, column ")


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: cannot read the file: No such file or directory"]


def test_environment_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "reservoir_id = 'EMBALSE_01'\n[server]\nport = 8000\nhost = '0.0.0.0'\n")
    environ = {
        "GATEWAY_SERVER__PORT": "9001",
        "gateway_reservoir_id": "EMBALSE_02",  # names are case-insensitive
        "GATEWAY_THRESHOLDS__PH__WARNING_LOW": "6.2",
        "GATEWAY_SERVER__ALLOWED_ORIGINS": '["https://scada.example.org"]',
        "OTHER": "ignored",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config = load_config(path)
    assert config.server.port == 9001
    assert config.server.host == "0.0.0.0"  # the rest of [server] still from the file
    assert config.reservoir_id == "EMBALSE_02"
    assert config.thresholds["ph"].warning_low == 6.2
    assert config.server.allowed_origins == ["https://scada.example.org"]


def test_buses_from_the_environment_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buses = [
        {"name": "a", "port": "/dev/ttyS0", "protocol": "ezo", "sensors": [{"measurement": "ph"}]}
    ]
    monkeypatch.setenv("GATEWAY_BUSES", json.dumps(buses))
    config = load_config(write(tmp_path, EZO_BUS))
    assert [b.name for b in config.buses] == ["a"]


def test_the_process_environment_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[server]\nport = 8000\n")
    assert load_config(path).server.port == 8000
    monkeypatch.setenv("GATEWAY_SERVER__PORT", "1234")
    assert load_config(path).server.port == 1234


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param(
            {"GATEWAY_SERVER__PORT": "x"},
            "server.port: must be a whole number, got 'x' (from GATEWAY_SERVER__PORT)",
            id="value",
        ),
        pytest.param(
            {"GATEWAY_SERVER__PROT": "1"},
            "server.prot: unknown key; did you mean 'port'? (from GATEWAY_SERVER__PROT)",
            id="unknown-key",
        ),
        pytest.param(
            {"GATEWAY_RESERVOIR_ID": "a/b"},
            "reservoir_id: must be letters, digits, '_' and '-' only, got 'a/b' "
            "(from GATEWAY_RESERVOIR_ID)",
            id="top-level",
        ),
        pytest.param(
            {"GATEWAY_BUSES": "[{"},
            "buses: lists and tables in the environment must be JSON (Expecting property name "
            "enclosed in double quotes: line 1 column 3 (char 2)) (from GATEWAY_BUSES)",
            id="not-json",
        ),
        pytest.param(
            {"GATEWAY_SERVER__ALLOWED_ORIGINS": "https://a"},
            "server: lists and tables in the environment must be JSON (Expecting value: line 1 "
            "column 1 (char 0)) (from GATEWAY_SERVER__ALLOWED_ORIGINS)",
            id="list-not-json",
        ),
    ],
)
def test_bad_environment_names_the_key(
    tmp_path: Path, environ: dict[str, str], expected: str
) -> None:
    assert problems_of(tmp_path, EZO_BUS, environ) == [expected]


def test_a_file_error_is_not_blamed_on_the_environment(tmp_path: Path) -> None:
    environ = {"GATEWAY_SERVER__HOST": "0.0.0.0", "GATEWAY_SERVERX": "1"}
    assert problems_of(tmp_path, "[server]\nport = 'x'\n", environ) == [
        "server.port: must be a whole number, got 'x'"
    ]


def test_dump_masks_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_AUTH__JWT_SECRET", "hunter2-is-not-a-secret-but-is-long-enough")
    config = load_config()
    assert config.auth.jwt_secret == "hunter2-is-not-a-secret-but-is-long-enough"
    text = dump_config(config)
    assert "hunter2-is-not-a-secret-but-is-long-enough" not in text
    assert json.loads(text)["auth"]["jwt_secret"] == "***"
    assert "hunter2-is-not-a-secret-but-is-long-enough" not in repr(config)
    monkeypatch.delenv("GATEWAY_AUTH__JWT_SECRET")
    assert json.loads(dump_config(load_config()))["auth"]["jwt_secret"] == ""


def test_dump_masks_an_mqtt_password(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[mqtt]\nurl = 'mqtt://u:pw@broker:1883'\n"))
    assert json.loads(dump_config(config))["mqtt"]["url"] == "mqtt://u:***@broker:1883"
