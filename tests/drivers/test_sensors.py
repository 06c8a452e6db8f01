"""Sensor drivers against the simulated devices, over real ptys."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from drivers.errors import SettingError
from drivers.ezo_sensor import EzoSensor
from drivers.model import ModbusPoint, Quality, Reading
from drivers.sensors import ModbusBus
from drivers.serial_line import SerialLine
from simulators.devices import ModbusBusDevice, SimUnit
from simulators.ezo_device import EzoDevice
from simulators.rig import Rig
from tests.helpers import running

FAST = {"timeout": 0.15, "retries": 2, "reconnect_min": 0.05, "reconnect_max": 0.2}


@pytest.fixture
async def lines() -> AsyncIterator[Callable[..., SerialLine]]:
    """Make SerialLines that are closed after the test."""
    made: list[SerialLine] = []

    def make(port: str, **options: object) -> SerialLine:
        line = SerialLine(port, name=Path(port).name[:24], **{**FAST, **options})  # type: ignore[arg-type]
        made.append(line)
        return line

    yield make
    for line in made:
        await line.close()


def ezo_sensor(line: SerialLine, measurement: str, **options: object) -> EzoSensor:
    return EzoSensor(line, measurement, read_time=0.0, command_time=0.0, **options)  # type: ignore[arg-type]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# EZO -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "measurement", "expected"),
    [("ezo-ph", "ph", 7.25), ("ezo-ec", "conductivity", 466.4), ("ezo-rtd", "temperature", 21.5)],
)
async def test_ezo_reads_each_circuit(
    rig: Rig, lines: Callable[..., SerialLine], device: str, measurement: str, expected: float
) -> None:
    sensor = ezo_sensor(lines(rig.devices[device].port.address), measurement)
    [reading] = await sensor.read()
    assert reading.quality is Quality.GOOD
    assert reading.value == pytest.approx(expected)
    assert reading.measurement == measurement


async def test_ezo_turns_continuous_mode_off_at_start(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-ph")
    assert device.continuous  # boots streaming a reading a second, like the real circuit
    line = lines(device.port.address)
    sensor = ezo_sensor(line, "ph")
    streamed = asyncio.Event()
    line.on_stale = lambda data: streamed.set()
    await line.open()
    # Let the circuit stream into the port before the driver sends anything.
    await asyncio.sleep(5 * device.continuous_interval)
    readings = [(await sensor.read())[0] for _ in range(5)]
    assert not device.continuous
    assert device.commands[:3] == ["*OK,1", "C,0", "i"]
    assert all(r.value == pytest.approx(7.25) for r in readings)
    assert any(f.direction == "drop" for f in line.frames)  # the streamed lines were flushed
    assert streamed.is_set()


async def test_ezo_ec_enables_the_ec_output_and_takes_its_field(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-ec")
    device.outputs["EC"] = False  # someone turned EC off: the reply would lead with TDS
    sensor = ezo_sensor(lines(device.port.address), "conductivity")
    [reading] = await sensor.read()
    assert "O,EC,1" in device.commands
    assert reading.value == pytest.approx(466.4)


async def test_ezo_sends_temperature_compensation(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-ph")
    sensor = ezo_sensor(lines(device.port.address), "ph", temperature=lambda: 14.25)
    [reading] = await sensor.read()
    assert reading.good
    assert "RT,14.25" in device.commands
    assert device.compensation == pytest.approx(14.25)


async def test_ezo_start_is_one_write_with_the_reading_in_it(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-rtd")
    line = lines(device.port.address)
    [reading] = await ezo_sensor(line, "temperature").read()
    assert reading.value == pytest.approx(21.5)
    assert device.commands == ["*OK,1", "C,0", "i", "S,c", "R"]  # no reading thrown away
    assert [f.data for f in line.frames if f.direction == "tx"] == [b"*OK,1\rC,0\ri\rS,c\rR\r"]


async def test_ezo_first_reading_waits_for_the_first_temperature(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-ph")
    temperature: list[float] = []
    sensor = ezo_sensor(
        lines(device.port.address),
        "ph",
        temperature=lambda: temperature[0] if temperature else None,
        temperature_wait=5.0,
    )
    asyncio.get_running_loop().call_later(0.1, temperature.append, 18.5)
    [reading] = await sensor.read()
    assert reading.good
    assert device.commands == ["*OK,1", "C,0", "i", "RT,18.50"]  # compensated from the first


async def test_ezo_first_reading_without_a_temperature_in_time_is_plain(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-ph")
    sensor = ezo_sensor(
        lines(device.port.address), "ph", temperature=lambda: None, temperature_wait=0.05
    )
    [reading] = await sensor.read()
    assert reading.good
    assert device.commands == ["*OK,1", "C,0", "i", "R"]


async def test_ezo_without_a_temperature_to_wait_for_reads_in_the_start_write(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-ph")
    line = lines(device.port.address)
    [reading] = await ezo_sensor(line, "ph", temperature=lambda: None).read()
    assert reading.good
    assert [f.data for f in line.frames if f.direction == "tx"] == [b"*OK,1\rC,0\ri\rR\r"]


class ReflashedPh(EzoDevice):
    """A circuit that takes RT until ``takes_rt`` is turned off (older firmware flashed)."""

    takes_rt = True

    def _respond(self, line: str) -> tuple[float, list[str]]:
        if not self.takes_rt and line.upper().startswith("RT,"):
            return 0.0, ["*ER"]
        return super()._respond(line)


class OldFirmwarePh(ReflashedPh):
    """A circuit whose firmware predates RT: it answers *ER."""

    takes_rt = False


async def test_ezo_falls_back_to_t_then_r_when_rt_is_unknown(
    rig: Rig, lines: Callable[..., SerialLine], tmp_path: Path
) -> None:
    device = OldFirmwarePh("old-ph", "pH", rig.world, link=tmp_path / "old-ph", time_scale=0.0)
    async with running(device):
        sensor = ezo_sensor(lines(device.port.address), "ph", temperature=lambda: 9.5)
        first, second = (await sensor.read())[0], (await sensor.read())[0]
    assert first.good
    assert second.good
    assert device.commands.count("RT,9.50") == 1  # asked once, then remembered
    assert device.commands[-3:] == ["R", "T,9.50", "R"]


async def test_ezo_unknown_command_is_reported_not_retried(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-ph")
    sensor = ezo_sensor(lines(device.port.address), "ph")
    await sensor.read()
    before = len(device.commands)
    with pytest.raises(SettingError.__mro__[1]) as info:  # DriverError
        await sensor.command("Bogus,1")
    assert "*ER" in str(info.value)
    assert device.commands[before:] == ["Bogus,1"]  # a wrong command is not sent again


async def test_ezo_restart_is_detected_and_settings_reapplied(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-ph")
    sensor = ezo_sensor(lines(device.port.address), "ph")
    assert (await sensor.read())[0].good
    device.reboot("*RE")  # back to continuous mode, announced unasked
    assert device.continuous
    after_reboot = (await sensor.read())[0]
    assert after_reboot.quality is Quality.DEVICE_ERROR  # the first reading after is not trusted
    assert after_reboot.value is None
    assert "*RE" in after_reboot.detail
    recovered = (await sensor.read())[0]
    assert recovered.good
    assert not device.continuous
    assert device.commands.count("C,0") == 2


async def test_ezo_after_a_replug_the_kept_reading_rides_in_the_start_write(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-ph")
    line = lines(device.port.address)
    sensor = ezo_sensor(line, "ph", temperature=lambda: 14.25)
    assert (await sensor.read())[0].good  # RT answered: the circuit takes it
    rig.set_fault("ph", "unplug")
    assert (await sensor.read())[0].quality is Quality.DISCONNECTED
    rig.set_fault("ph", None)  # a replugged circuit has just powered up
    sent = len([f for f in line.frames if f.direction == "tx"])
    del device.commands[:]
    [reading] = await sensor.read()
    assert reading.good
    # The first reading after the power-up is thrown away; the kept one follows it in the
    # same write, not a round trip later.
    assert device.commands == ["*OK,1", "C,0", "i", "R", "RT,14.25"]
    assert [f.data for f in line.frames if f.direction == "tx"][sent:] == [
        b"*OK,1\rC,0\ri\rR\rRT,14.25\r"
    ]


async def test_ezo_a_circuit_that_stops_taking_rt_after_a_restart_is_read_with_t(
    rig: Rig, lines: Callable[..., SerialLine], tmp_path: Path
) -> None:
    device = ReflashedPh("re-ph", "pH", rig.world, link=tmp_path / "re-ph", time_scale=0.0)
    async with running(device):
        sensor = ezo_sensor(lines(device.port.address), "ph", temperature=lambda: 9.5)
        assert (await sensor.read())[0].good  # RT answered
        device.reboot("*RE")
        assert "*RE" in (await sensor.read())[0].detail  # the restart, noticed
        device.takes_rt = False  # it came back with older firmware
        refused = (await sensor.read())[0]  # the start-up write with R and RT in it
        del device.commands[:]
        recovered = (await sensor.read())[0]
    assert refused.quality is Quality.DEVICE_ERROR
    assert "RT,9.50" in refused.detail
    assert recovered.good
    assert device.commands == ["RT,9.50", "T,9.50", "R"]  # RT once more, then T and R


async def test_ezo_restart_in_the_middle_of_a_reply(
    rig: Rig, lines: Callable[..., SerialLine], tmp_path: Path
) -> None:
    class RebootsOnRead(EzoDevice):
        armed = False

        def _respond(self, line: str) -> tuple[float, list[str]]:
            if self.armed and line == "R":
                self.armed = False
                self._reset_settings()
                return 0.0, ["7.0", "*RS", "*RE"]
            return super()._respond(line)

    device = RebootsOnRead("rb", "pH", rig.world, link=tmp_path / "rb", time_scale=0.0)
    async with running(device):
        sensor = ezo_sensor(lines(device.port.address), "ph")
        assert (await sensor.read())[0].good
        device.armed = True
        interrupted = (await sensor.read())[0]
        recovered = (await sensor.read())[0]
    assert interrupted.quality is Quality.DEVICE_ERROR
    assert interrupted.value is None
    assert recovered.good
    assert device.commands.count("C,0") == 2


async def test_ezo_wrong_circuit_on_the_port_is_named(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    port = rig.devices["ezo-ec"].port.address
    [reading] = await ezo_sensor(lines(port), "ph").read()
    assert reading.quality is Quality.DEVICE_ERROR
    assert reading.value is None
    assert "EC circuit" in reading.detail
    assert port in reading.detail


async def test_ezo_rtd_without_probe_is_not_a_temperature(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    rig.set_value("temperature", -1023.0)  # what the circuit reads with no probe attached
    [reading] = await ezo_sensor(lines(rig.devices["ezo-rtd"].port.address), "temperature").read()
    assert reading.quality is Quality.DEVICE_ERROR
    assert reading.value is None
    assert "no probe" in reading.detail


def test_ezo_circuit_must_be_a_known_type() -> None:
    with pytest.raises(SettingError, match="'ozone' is not one of ph, ec, rtd, do, orp"):
        EzoSensor(SerialLine("/dev/null"), "water_level", circuit="ozone")


# Faults, on both protocols -------------------------------------------------------


def _modbus_bus(rig: Rig, lines: Callable[..., SerialLine], **options: object) -> ModbusBus:
    points = [
        ModbusPoint("water_level", 1, 0),
        ModbusPoint("temperature", 2, 0, data_type="int16", scale=0.1),
    ]
    return ModbusBus(lines(rig.modbus.port.address), points, **options)  # type: ignore[arg-type]


async def _read_one(rig: Rig, lines: Callable[..., SerialLine], measurement: str) -> Reading:
    if measurement == "water_level":
        readings = await _modbus_bus(rig, lines).read()
    else:
        device = {"ph": "ezo-ph", "conductivity": "ezo-ec", "temperature": "ezo-rtd"}[measurement]
        readings = await ezo_sensor(lines(rig.devices[device].port.address), measurement).read()
    return next(r for r in readings if r.measurement == measurement)


@pytest.mark.parametrize("measurement", ["ph", "conductivity", "temperature", "water_level"])
@pytest.mark.parametrize(
    ("fault", "qualities"),
    [
        ("timeout", {Quality.TIMEOUT}),
        ("crc", {Quality.CRC, Quality.GARBAGE, Quality.TIMEOUT}),
        ("garbage", {Quality.GARBAGE, Quality.CRC, Quality.TIMEOUT}),
        ("unplug", {Quality.DISCONNECTED}),
    ],
)
async def test_a_fault_is_never_a_good_reading(
    rig: Rig,
    lines: Callable[..., SerialLine],
    measurement: str,
    fault: str,
    qualities: set[Quality],
) -> None:
    rig.set_fault(measurement, fault)
    reading = await _read_one(rig, lines, measurement)
    assert reading.value is None
    assert reading.quality in qualities
    assert reading.detail


async def test_modbus_crc_fault_is_retried_and_counted(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    rig.set_fault("modbus-1", "crc")
    bus = _modbus_bus(rig, lines)
    level, temperature = await bus.read()
    assert level.quality is Quality.CRC
    assert level.value is None
    assert bus.line.counters["crc"] == 3  # first try and two retries
    assert temperature.good  # its neighbour on the bus is untouched
    rig.set_fault("modbus-1", None)
    level, _ = await bus.read()
    assert level.value == pytest.approx(12.5)


async def test_modbus_garbage_is_counted(rig: Rig, lines: Callable[..., SerialLine]) -> None:
    rig.set_fault("modbus-1", "garbage")
    bus = _modbus_bus(rig, lines)
    level, _ = await bus.read()
    assert level.value is None
    errors = bus.line.counters
    assert errors["garbage"] + errors["crc"] + errors["timeout"] == 3
    assert any(f.direction == "rx" for f in bus.line.frames)  # the junk is kept for diagnosis


async def test_unplug_and_replug_recovered_without_restart(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    device = rig.ezo("ezo-ph")
    line = lines(device.port.address)
    sensor = ezo_sensor(line, "ph")
    assert (await sensor.read())[0].good
    rig.set_fault("ph", "unplug")
    assert not device.port.plugged
    assert not await asyncio.to_thread(Path(device.port.address).exists)
    unplugged = (await sensor.read())[0]
    assert unplugged.quality is Quality.DISCONNECTED
    rig.set_fault("ph", None)  # replugged: a new pty behind the same link
    reading = unplugged
    for _ in range(50):
        reading = (await sensor.read())[0]
        if reading.good:
            break
        await asyncio.sleep(0.02)  # the reopen backoff is a time, not an event
    assert reading.good
    assert reading.value == pytest.approx(7.25)
    assert line.counters["reconnects"] == 1
    assert line.generation == 2
    assert device.commands.count("C,0") == 2  # re-initialised after the replug


async def test_modbus_unplug_and_replug(rig: Rig, lines: Callable[..., SerialLine]) -> None:
    bus = _modbus_bus(rig, lines)
    assert all(r.good for r in await bus.read())
    rig.set_fault("water_level", "unplug")
    assert {r.quality for r in await bus.read()} == {Quality.DISCONNECTED}
    rig.set_fault("water_level", None)
    readings: list[Reading] = []
    for _ in range(50):
        readings = await bus.read()
        if all(r.good for r in readings):
            break
        await asyncio.sleep(0.02)
    assert [r.value for r in readings] == [pytest.approx(12.5), pytest.approx(21.5)]


# Modbus scheduling -----------------------------------------------------------------


async def test_adjacent_registers_are_read_in_one_request(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    points = [
        ModbusPoint("water_level", 1, 0, data_type="float32"),
        ModbusPoint("temperature", 1, 2, data_type="int16", scale=0.1),
    ]
    bus = ModbusBus(lines(rig.modbus.port.address), points)
    readings = await bus.read()
    assert [r.value for r in readings] == [pytest.approx(12.5), pytest.approx(21.5)]
    assert bus.line.counters["requests"] == 1
    assert rig.modbus.units[1].requests == 1


async def test_a_merged_read_refused_is_split_point_by_point(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    points = [
        ModbusPoint("temperature", 1, 2, data_type="int16", scale=0.1),
        ModbusPoint("ph", 1, 3, data_type="int16"),  # unit 1 has no register 3
    ]
    bus = ModbusBus(lines(rig.modbus.port.address), points)
    first = await bus.read()
    assert {r.quality for r in first} == {Quality.EXCEPTION}
    assert all(r.value is None for r in first)
    second = await bus.read()
    assert second[0].value == pytest.approx(21.5)
    assert second[1].quality is Quality.EXCEPTION
    assert "illegal data address" in second[1].detail


async def test_a_dead_unit_costs_its_neighbour_one_timeout_per_backoff_period(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    clock = FakeClock()
    bus = _modbus_bus(rig, lines, clock=clock, poll_interval=2.0, backoff_cap=8.0)
    rig.set_fault("modbus-2", "timeout")
    counters = bus.line.counters

    async def cycle() -> tuple[Reading, Reading, int]:
        before = counters["timeout"]
        level, temperature = await bus.read()
        return level, temperature, counters["timeout"] - before

    # Two failed polls (with their retries) trip the unit's breaker.
    for _ in range(2):
        level, temperature, timeouts = await cycle()
        assert level.good
        assert temperature.quality is Quality.TIMEOUT
        assert timeouts == 3
    # Tripped: the dead unit costs nothing until its backoff has passed ...
    waits = []
    for backoff in (2.0, 4.0, 8.0, 8.0):  # doubling from poll_interval up to the cap
        level, temperature, timeouts = await cycle()
        assert (level.good, temperature.value, timeouts) == (True, None, 0)
        assert "not answering" in temperature.detail
        waits.append(bus.breakers[2].retry_at - clock.now)
        clock.now += backoff
        # ... then one probe, a single attempt without retries.
        level, temperature, timeouts = await cycle()
        assert level.good
        assert timeouts == 1
    assert waits == [2.0, 4.0, 8.0, 8.0]
    # It comes back: one good reply closes the breaker.
    rig.set_fault("modbus-2", None)
    clock.now += 8.0
    level, temperature, _ = await cycle()
    assert temperature.value == pytest.approx(21.5)
    assert not bus.breakers[2].tripped


class BusyUnit(ModbusBusDevice):
    """Answers "busy" (exception 06) to the first ``busy_replies`` requests."""

    busy_replies = 0

    def _read(self, unit: SimUnit, request):  # type: ignore[no-untyped-def]
        from drivers.modbus_rtu import ExceptionResponse

        if self.busy_replies:
            self.busy_replies -= 1
            return ExceptionResponse(unit.unit, request.function, 0x06)
        return super()._read(unit, request)


@pytest.mark.parametrize(("busy", "good"), [(2, True), (10, False)])
async def test_busy_is_retried_and_never_a_value(
    rig: Rig, lines: Callable[..., SerialLine], tmp_path: Path, busy: int, good: bool
) -> None:
    device = BusyUnit(
        "busy",
        rig.world,
        [SimUnit(1, "level", [ModbusPoint("water_level", 1, 0)])],
        link=tmp_path / "busy",
        time_scale=0.0,
    )
    device.busy_replies = busy
    async with running(device):
        bus = ModbusBus(lines(device.port.address), [ModbusPoint("water_level", 1, 0)])
        [reading] = await bus.read()
    assert reading.good is good
    if good:
        assert reading.value == pytest.approx(12.5)
    else:
        assert reading.value is None
        assert reading.quality is Quality.EXCEPTION
        assert "busy" in reading.detail


async def test_non_finite_float_is_a_device_error(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    rig.world.signals["water_level"].set(math.nan)
    [reading] = await ModbusBus(
        lines(rig.modbus.port.address), [ModbusPoint("water_level", 1, 0)]
    ).read()
    assert reading.quality is Quality.DEVICE_ERROR
    assert reading.value is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"unit": 0}, "unit 0"),
        ({"unit": 248}, "unit 248"),
        ({"register_type": "relay"}, "register_type"),
        ({"data_type": "float64"}, "data_type"),
        ({"word_order": "middle"}, "word_order"),
        ({"register": 65535}, "register 65535"),
        ({"measurement": "Turbidity"}, "Turbidity"),
        ({"measurement": "9am_level"}, "9am_level"),
    ],
)
def test_point_mistakes_are_caught_at_configuration(
    options: dict[str, object], message: str
) -> None:
    settings: dict[str, object] = {"measurement": "water_level", "unit": 1, "register": 0}
    settings.update(options)
    with pytest.raises(SettingError, match=message):
        ModbusPoint(**settings)  # type: ignore[arg-type]


def test_a_reading_cannot_be_both_failed_and_valued() -> None:
    with pytest.raises(ValueError, match="cannot carry"):
        Reading("ph", 0.0, Quality.TIMEOUT, 0.0, "bus")
    with pytest.raises(ValueError, match="cannot carry"):
        Reading("ph", None, Quality.GOOD, 0.0, "bus")


# DO and ORP ------------------------------------------------------------------------


async def test_a_circuit_of_another_type_than_configured_names_the_port_and_both(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    port = rig.devices["ezo-orp"].port.address
    [reading] = await ezo_sensor(lines(port), "dissolved_oxygen", circuit="do").read()
    assert reading.quality is Quality.DEVICE_ERROR
    assert reading.detail == (
        f"{port} has an EZO ORP circuit, but dissolved_oxygen is configured for an EZO DO circuit"
    )


async def test_without_a_circuit_the_type_comes_from_i(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    rig.world.signals["orp"].set(-120.4)  # ORP may be negative
    sensor = ezo_sensor(
        lines(rig.devices["ezo-orp"].port.address), "redox", temperature=lambda: 9.0
    )
    [reading] = await sensor.read()
    assert (reading.value, sensor.circuit) == (-120.4, "ORP")
    assert not any(c.startswith(("T,", "RT,")) for c in rig.ezo("ezo-orp").commands)


async def test_do_is_compensated_by_temperature_and_salinity(
    rig: Rig, lines: Callable[..., SerialLine]
) -> None:
    for name, value in {
        "dissolved_oxygen": 7.5,
        "temperature": 12.0,
        "conductivity": 900.0,
    }.items():
        rig.world.signals[name].set(value)
    port = rig.devices["ezo-do"].port.address
    uncompensated = ezo_sensor(lines(port), "dissolved_oxygen", circuit="do")
    [off] = await uncompensated.read()
    assert off.value is not None
    assert abs(off.value - 7.5) > 0.5  # the circuit assumed 25 C and fresh water
    await uncompensated.line.close()
    sensor = ezo_sensor(
        lines(port), "dissolved_oxygen", circuit="do",
        temperature=lambda: 12.0, conductivity=lambda: 900.0,
    )  # fmt: skip
    [reading] = await sensor.read()
    assert reading.value == 7.5
    assert "S,900.0" in rig.ezo("ezo-do").commands
