"""Modbus over TCP on real 127.0.0.1 sockets: a Modbus TCP device and RTU through a
serial server, read by ModbusBus over a TcpLine; faults, dead units, reconnects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import PortDisconnected, SettingError
from drivers.modbus_pdu import ReadRequest, ReadResponse
from drivers.modbus_tcp import RequestDecoder, TcpFraming, encode_reply, encode_request
from drivers.model import ModbusPoint, Quality
from drivers.sensors import ModbusBus
from drivers.tcp_line import TcpLine, parse_address
from simulators.devices import ModbusBusDevice, SimUnit
from simulators.modbus_tcp import ModbusTcpDevice
from simulators.world import World
from tests.helpers import modbus_tcp_device

POINTS = [
    ModbusPoint("turbidity", 1, 0, "input", "float32"),
    ModbusPoint("pump", 2, 0, "coil"),
    ModbusPoint("float_switch", 2, 0, "discrete"),
]


@pytest.fixture
async def device() -> AsyncIterator[ModbusTcpDevice]:
    async with modbus_tcp_device(
        "tcp-sim", seed=5, turbidity=3.25, pump=1.0, float_switch=0.0
    ) as sim:
        yield sim


@pytest.fixture
async def line(device: ModbusTcpDevice) -> AsyncIterator[TcpLine]:
    tcp = TcpLine(device.port.address, name="tcp-1", timeout=0.3, retries=0, reconnect_min=0.05)
    yield tcp
    await tcp.close()


async def test_bus_reads_registers_coils_and_discrete_inputs(
    device: ModbusTcpDevice, line: TcpLine
) -> None:
    bus = ModbusBus(line, POINTS, framing=TcpFraming())
    readings = await bus.read()
    assert [(r.measurement, r.value) for r in readings] == [
        ("turbidity", 3.25),
        ("pump", 1.0),
        ("float_switch", 0.0),
    ]
    device.world.signals["float_switch"].set(1.0)
    device.world.signals["pump"].set(0.0)
    assert [r.value for r in await bus.read()] == [3.25, 0.0, 1.0]
    sent = [f.data for f in line.frames if f.direction == "tx"]
    assert sent[:3] == [
        encode_request(1, ReadRequest(1, 4, 0, 2)),
        encode_request(2, ReadRequest(2, 1, 0, 1)),
        encode_request(3, ReadRequest(2, 2, 0, 1)),
    ]
    assert line.counters["requests"] == 6


async def test_dead_unit_times_out_alone(device: ModbusTcpDevice, line: TcpLine) -> None:
    device.units[2].fault = "timeout"
    bus = ModbusBus(line, POINTS, framing=TcpFraming())
    readings = await bus.read()
    assert [r.quality for r in readings] == [Quality.GOOD, Quality.TIMEOUT, Quality.TIMEOUT]
    assert readings[0].value == 3.25


async def test_garbage_is_a_bad_reading_and_the_line_recovers(
    device: ModbusTcpDevice, line: TcpLine
) -> None:
    bus = ModbusBus(line, POINTS[:1], framing=TcpFraming())
    device.set_fault("garbage")
    [bad] = await bus.read()
    assert bad.quality in (Quality.GARBAGE, Quality.TIMEOUT)
    assert bad.value is None
    device.set_fault(None)
    [good] = await bus.read()
    assert good.value == 3.25


async def test_unplugged_device_is_reconnected_on_the_same_port(
    device: ModbusTcpDevice,
) -> None:
    now = [0.0]
    line = TcpLine(device.port.address, timeout=0.3, retries=0, clock=lambda: now[0])
    bus = ModbusBus(line, POINTS[:1], framing=TcpFraming(), clock=lambda: now[0])
    assert (await bus.read())[0].good
    device.set_fault("unplug")
    [gone] = await bus.read()
    assert gone.quality is Quality.DISCONNECTED
    [still_gone] = await bus.read()  # refused: the line backs off
    assert "next try in" in still_gone.detail or "cannot open" in still_gone.detail
    device.set_fault(None)
    now[0] += 60.0  # past any backoff
    [reading] = await bus.read()
    await line.close()
    assert reading.value == 3.25
    assert line.counters["reconnects"] == 1
    assert line.generation == 2


async def test_nobody_listening_names_the_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"  # bound, not listening
        line = TcpLine(address, timeout=0.3)
        with pytest.raises(PortDisconnected, match=address):
            await line.open()
    await line.close()


async def test_a_device_drops_a_client_that_sends_garbage(device: ModbusTcpDevice) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", device.tcp.tcp_port)
    writer.write(bytes.fromhex("00 01 00 07 00 06 01 03 00 00 00 01"))  # protocol id 7
    async with asyncio.timeout(2):
        assert await reader.read() == b""  # closed by the device
    writer.close()
    await writer.wait_closed()


async def test_rtu_through_a_serial_server() -> None:
    world = World(seed=2)
    world.signals["water_level"].set(12.5)
    units = [
        SimUnit(1, "level", [ModbusPoint("water_level", 1, 0), ModbusPoint("pump", 1, 3, "coil")])
    ]
    server = ModbusBusDevice("rs485-server", world, units, time_scale=0.0, tcp=True)
    world.signals["pump"].set(1.0)
    await server.start()
    line = TcpLine(server.port.address, timeout=0.3, retries=0)
    try:
        bus = ModbusBus(line, units[0].points)  # RTU framing, the default
        assert [r.value for r in await bus.read()] == [12.5, 1.0]
        server.units[1].fault = "crc"
        assert [r.quality for r in await bus.read()] == [Quality.CRC] * 2
    finally:
        await line.close()
        await server.stop()


@pytest.mark.parametrize(
    ("port", "words"),
    [
        ("tcp://", "names no host"),
        ("tcp://plc", "names no port"),
        ("tcp://plc:http", "must be a number"),
        ("tcp://plc:0", "must be a number"),
        ("tcp://plc:502/x", "nothing after the port"),
        ("socket://plc:502", "not a tcp://"),
    ],
)
def test_bad_addresses_are_config_errors(port: str, words: str) -> None:
    with pytest.raises(SettingError, match=words):
        parse_address(port)


def test_modbus_tcp_port_defaults_to_502() -> None:
    assert parse_address("tcp://plc", 502) == ("plc", 502)
    assert parse_address("tcp://[::1]:1502") == ("::1", 1502)


# Fuzzing the socket boundary -----------------------------------------------------

TURBIDITY_REPLY_VALUES = (0x4050, 0x0000)  # float32 3.25


async def garbage_then_good(garbage: list[bytes], close: bool) -> tuple[list[Quality], float]:
    """A server answers the first request with ``garbage`` (then maybe hangs up), later
    ones properly; the bus polls until a good reading, five more times at most. Returns
    the qualities and the last value."""
    decoder_by_conn: dict[int, RequestDecoder] = {}
    served = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        decoder = decoder_by_conn.setdefault(id(writer), RequestDecoder())
        while data := await reader.read(4096):
            for tid, request in decoder.feed(data):
                served += 1
                if served == 1:
                    for chunk in garbage:
                        writer.write(chunk)
                        await writer.drain()
                    if close:
                        writer.close()
                        return
                    continue
                reply = ReadResponse(request.unit, request.function, TURBIDITY_REPLY_VALUES)
                writer.write(encode_reply(tid, reply))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    now = [0.0]
    line = TcpLine(f"tcp://127.0.0.1:{port}", timeout=0.05, retries=0, clock=lambda: now[0])
    line.settle = 0.01
    bus = ModbusBus(line, POINTS[:1], framing=TcpFraming(), clock=lambda: now[0])
    qualities = []
    try:
        # Two polls suffice on an idle machine (the second may still meet late garbage);
        # the others absorb a loaded machine's missed 50 ms timeouts.
        for _ in range(6):
            [reading] = await bus.read()
            qualities.append(reading.quality)
            now[0] += 120.0  # past any backoff or breaker
            if len(qualities) > 1 and reading.quality is Quality.GOOD:
                break
    finally:
        await line.close()
        server.close()
        await server.wait_closed()
    return qualities, reading.value or 0.0


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=4), st.booleans())
@settings(max_examples=40, deadline=None)
def test_any_bytes_from_the_socket_give_bad_readings_and_the_line_goes_on(
    garbage: list[bytes], close: bool
) -> None:
    qualities, last = asyncio.run(garbage_then_good(garbage, close))
    assert qualities[-1] is Quality.GOOD
    assert last == 3.25
