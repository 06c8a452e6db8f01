"""Interoperability with pymodbus 3.16, an independent Modbus RTU implementation.

Our driver reads a pymodbus serial server, and a pymodbus client reads our
simulator, both over real ptys. Expected registers come from the field notes'
constants and from pymodbus's own converters, never from our codec, so a
misreading of the byte orders shared by our driver and our simulator cannot
make a test pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import tty
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.errors import ModbusExceptionReply
from drivers.modbus_rtu import ReadRequest, ResponseDecoder, frame
from drivers.model import ModbusPoint, Quality, Reading
from drivers.sensors import ModbusBus
from drivers.serial_line import SerialLine
from simulators.devices import ModbusBusDevice, SimUnit
from simulators.rig import Rig
from simulators.world import World
from tests.helpers import running
from tests.interop.pymodbus_tasks import settle_request_tasks

DATATYPE = AsyncModbusSerialClient.DATATYPE
convert_to = AsyncModbusSerialClient.convert_to_registers
convert_from = AsyncModbusSerialClient.convert_from_registers

#: float32 nearest 123.456, as the field notes spell it: 0x42F6E979.
# 0x42F6E979 on the wire; the driver reports the shortest decimal that is that float32.
FLOAT_123_456 = 123.456
assert struct.pack(">f", FLOAT_123_456) == bytes.fromhex("42F6E979")
#: name -> ((word_order, byte_order), registers on the wire), from the field notes.
Order = Literal["big", "little"]
FLOAT_ORDERS: dict[str, tuple[tuple[Order, Order], list[int]]] = {
    "ABCD": (("big", "big"), [0x42F6, 0xE979]),
    "CDAB": (("little", "big"), [0xE979, 0x42F6]),
    "BADC": (("big", "little"), [0xF642, 0x79E9]),
    "DCBA": (("little", "little"), [0x79E9, 0xF642]),
}
UINT32_VALUE = 3_000_000_000  # above 2**31: a signed decode would go negative


def swap_bytes(register: int) -> int:
    return ((register & 0xFF) << 8) | (register >> 8)


# What the pymodbus server holds ----------------------------------------------


@dataclass(frozen=True)
class Cell:
    """Registers the pymodbus server holds, the point that reads them, and the value."""

    point: ModbusPoint
    registers: list[int]
    expected: float


def float_cells(unit: int, register_type: str, addresses: Sequence[int]) -> list[Cell]:
    cells = []
    for address, ((word_order, byte_order), registers) in zip(
        addresses, FLOAT_ORDERS.values(), strict=True
    ):
        point = ModbusPoint(
            "water_level", unit, address, register_type, "float32", word_order, byte_order
        )
        cells.append(Cell(point, registers, FLOAT_123_456))
    return cells


def int_cells(unit: int, register_type: str, int16_at: int, uint32_at: int) -> list[Cell]:
    temperature = ModbusPoint("temperature", unit, int16_at, register_type, "int16", scale=0.1)
    conductivity = ModbusPoint("conductivity", unit, uint32_at, register_type, "uint32")
    return [
        Cell(temperature, convert_to(-215, DATATYPE.INT16), -21.5),
        Cell(conductivity, convert_to(UINT32_VALUE, DATATYPE.UINT32), UINT32_VALUE),
    ]


#: Unit 1 keeps its input registers back to back (0..10), so one read serves them
#: all; unit 7 spreads its floats over holding registers with holes between them,
#: which a read must never cross (pymodbus refuses a hole with exception 2).
CELLS: dict[int, list[Cell]] = {
    1: [
        *float_cells(1, "input", [0, 2, 4, 6]),
        *int_cells(1, "input", int16_at=8, uint32_at=9),
        *int_cells(1, "holding", int16_at=40, uint32_at=41),
    ],
    7: [
        *float_cells(7, "holding", [100, 110, 120, 130]),
        *int_cells(7, "holding", int16_at=140, uint32_at=142),
        *int_cells(7, "input", int16_at=0, uint32_at=1),
    ],
}


#: What every pymodbus unit holds in its coils and discrete inputs, 0..15.
COILS = [True, False, True, True, False, False, True, True, True] + [False] * 7
DISCRETE = [False, True] + [False] * 14


def sim_device(unit: int, cells: Sequence[Cell]) -> SimDevice:
    """A pymodbus device with separate holding and input register blocks.

    SimData addresses are 0-based PDU addresses, like ours. (The deprecated
    ModbusSequentialDataBlock is 1-based: it stores ``address - 1``.)
    """
    blocks: dict[str, list[SimData]] = {"holding": [], "input": []}
    for cell in cells:
        data = SimData(cell.point.register, values=cell.registers, datatype=DataType.REGISTERS)
        blocks[cell.point.register_type].append(data)
    coils = [SimData(0, values=COILS, datatype=DataType.BITS)]
    discrete = [SimData(0, values=DISCRETE, datatype=DataType.BITS)]
    return SimDevice(unit, simdata=(coils, discrete, blocks["holding"], blocks["input"]))


def registers_of(unit: int, register_type: str, start: int, stop: int) -> list[int]:
    """What the server holds at ``start..stop-1``, assembled from CELLS."""
    held: dict[int, int] = {}
    for cell in CELLS[unit]:
        if cell.point.register_type == register_type:
            for offset, word in enumerate(cell.registers):
                held[cell.point.register + offset] = word
    return [held[r] for r in range(start, stop)]


# Fixtures ---------------------------------------------------------------------


@dataclass(frozen=True)
class NullModem:
    driver_port: str  # the path our SerialLine opens
    device_port: str  # the path the pymodbus server opens


@pytest.fixture
async def null_modem() -> AsyncIterator[NullModem]:
    """Two ptys whose master sides are wired together: a null-modem cable.

    Both peers open a port by name, and a pty has a name on its slave side
    only, so each peer gets the slave of its own pty and reader callbacks copy
    bytes between the two masters. We keep both slaves open, so a master never
    reads EIO (and never spins) while a peer has its port closed.
    """
    loop = asyncio.get_running_loop()
    pairs = [os.openpty() for _ in range(2)]
    for master, slave in pairs:
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
    (master_a, slave_a), (master_b, slave_b) = pairs

    def pump(source: int, sink: int) -> Callable[[], None]:
        def copy() -> None:
            try:
                data = os.read(source, 4096)
            except (BlockingIOError, InterruptedError):
                return
            # A frame is at most 256 bytes and a pty buffers kilobytes: whole writes.
            os.write(sink, data)

        return copy

    loop.add_reader(master_a, pump(master_a, master_b))
    loop.add_reader(master_b, pump(master_b, master_a))
    try:
        yield NullModem(os.ttyname(slave_a), os.ttyname(slave_b))
    finally:
        for master in (master_a, master_b):
            loop.remove_reader(master)
        for fd in (master_a, slave_a, master_b, slave_b):
            os.close(fd)


@pytest.fixture
async def pymodbus_server(null_modem: NullModem) -> AsyncIterator[ModbusSerialServer]:
    """A pymodbus RTU server answering for units 1 and 7 (CELLS) on the null modem."""
    before = asyncio.all_tasks()
    devices = [sim_device(unit, cells) for unit, cells in CELLS.items()]
    server = ModbusSerialServer(
        devices, framer=FramerType.RTU, port=null_modem.device_port, baudrate=9600
    )
    await server.serve_forever(background=True)  # returns once the port is open
    try:
        yield server
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
        await settle_request_tasks(before)


@pytest.fixture
async def line(
    null_modem: NullModem, pymodbus_server: ModbusSerialServer
) -> AsyncIterator[SerialLine]:
    serial_line = SerialLine(null_modem.driver_port, name="interop", timeout=1.0, retries=0)
    try:
        yield serial_line
    finally:
        await serial_line.close()


@contextlib.asynccontextmanager
async def pymodbus_client(
    port: str, *, timeout: float = 1.0
) -> AsyncIterator[AsyncModbusSerialClient]:
    """A connected pymodbus RTU client: no retries, no reconnect task."""
    client = AsyncModbusSerialClient(
        port,
        framer=FramerType.RTU,
        baudrate=9600,
        timeout=timeout,
        retries=0,
        reconnect_delay=0,
    )
    assert await client.connect(), f"pymodbus could not open {port}"
    try:
        yield client
    finally:
        client.close()


def by_point(bus: ModbusBus, readings: Sequence[Reading]) -> dict[ModbusPoint, Reading]:
    """Pair readings with points: ModbusBus.read() answers in the order of its points."""
    assert [r.measurement for r in readings] == [p.measurement for p in bus.points]
    return dict(zip(bus.points, readings, strict=True))


# Our driver reads a pymodbus server ---------------------------------------------


async def test_driver_reads_every_layout_from_pymodbus(line: SerialLine) -> None:
    cells = [cell for unit_cells in CELLS.values() for cell in unit_cells]
    bus = ModbusBus(line, [cell.point for cell in cells])

    readings = by_point(bus, await bus.read())

    for cell in cells:
        reading = readings[cell.point]
        assert reading.quality is Quality.GOOD, (cell.point, reading.detail)
        assert reading.value == pytest.approx(cell.expected, rel=1e-12), cell.point
    orders = {
        (c.point.word_order, c.point.byte_order) for c in cells if c.expected == FLOAT_123_456
    }
    assert len(orders) == 4


async def test_adjacent_points_share_one_request(line: SerialLine) -> None:
    cells = [cell for cell in CELLS[1] if cell.point.register_type == "input"]
    bus = ModbusBus(line, [cell.point for cell in cells])  # registers 0..10, back to back

    for poll in range(1, 3):
        readings = await bus.read()
        assert line.counters["requests"] == poll
        assert [r.value for r in readings] == pytest.approx([c.expected for c in cells])
    sent = [record.data for record in line.frames if record.direction == "tx"]
    assert sent == [frame(ReadRequest(1, 4, 0, 11))] * 2


async def test_holes_between_points_are_never_read(line: SerialLine) -> None:
    cells = [cell for cell in CELLS[7] if cell.point.register_type == "holding"]
    bus = ModbusBus(line, [cell.point for cell in cells])  # 100, 110, 120, 130, 140, 142

    readings = await bus.read()

    assert all(r.good for r in readings), [r.detail for r in readings]
    assert line.counters["requests"] == 6


async def test_raw_requests_return_exactly_the_server_registers(line: SerialLine) -> None:
    for unit, function, start, stop in [(1, 4, 0, 11), (1, 3, 40, 43), (7, 3, 100, 102)]:
        request = ReadRequest(unit, function, start, stop - start)
        reply = await line.request(frame(request), partial(ResponseDecoder, request))
        register_type = "input" if function == 4 else "holding"
        assert list(reply.registers) == registers_of(unit, register_type, start, stop)
        assert (reply.unit, reply.function) == (unit, function)


async def test_missing_register_is_an_exception_never_a_number(line: SerialLine) -> None:
    request = ReadRequest(1, 4, 500, 2)
    with pytest.raises(ModbusExceptionReply) as caught:
        await line.request(frame(request), lambda: ResponseDecoder(request))
    assert (caught.value.unit, caught.value.function, caught.value.code) == (1, 4, 2)

    missing = [
        ModbusPoint("water_level", 1, 500),  # nothing there
        ModbusPoint("water_level", 1, 10),  # starts on the last register of the block
        ModbusPoint("temperature", 7, 105, "holding", "int16"),  # in the hole after a float
    ]
    for point in missing:
        [reading] = await ModbusBus(line, [point]).read()
        assert reading.quality is Quality.EXCEPTION, point
        assert reading.value is None
        assert "0x02" in reading.detail


async def test_merged_read_over_a_missing_register_falls_back_to_single_reads(
    line: SerialLine,
) -> None:
    good = ModbusPoint("conductivity", 1, 9, "input", "uint32")  # registers 9-10
    bad = ModbusPoint("temperature", 1, 11, "input", "int16")  # register 11: not held
    bus = ModbusBus(line, [good, bad])

    first = by_point(bus, await bus.read())
    assert line.counters["requests"] == 1  # 9..11 in one read, refused with exception 2
    assert [r.quality for r in first.values()] == [Quality.EXCEPTION] * 2

    second = by_point(bus, await bus.read())
    assert line.counters["requests"] == 3  # now one read per point
    assert second[good].value == UINT32_VALUE
    assert second[bad].quality is Quality.EXCEPTION
    assert second[bad].value is None


async def test_readings_come_back_in_the_order_of_the_points(line: SerialLine) -> None:
    """Reading names only its measurement, so order is what ties it to its point."""
    points = [  # not in request order: unit 7 before unit 1, input before holding
        ModbusPoint("conductivity", 7, 1, "input", "uint32"),
        ModbusPoint("water_level", 1, 0, "input", "float32"),
        ModbusPoint("temperature", 1, 40, "holding", "int16", scale=0.1),
    ]
    bus = ModbusBus(line, points)

    readings = await bus.read()

    assert [(r.measurement, r.good) for r in readings] == [(p.measurement, True) for p in points]
    assert [r.value for r in readings] == pytest.approx([UINT32_VALUE, FLOAT_123_456, -21.5])


async def test_driver_reads_coils_and_discrete_inputs_over_rtu(line: SerialLine) -> None:
    coils = [ModbusPoint(f"coil_{i}", 7, i, "coil") for i in range(9)]  # nine: two bytes
    switches = [ModbusPoint(f"switch_{i}", 1, i, "discrete") for i in range(3)]
    bus = ModbusBus(line, [*coils, *switches])

    readings = await bus.read()

    assert all(r.good for r in readings), [r.detail for r in readings]
    assert [r.value for r in readings[:9]] == [float(b) for b in COILS[:9]]
    assert [r.value for r in readings[9:]] == [float(b) for b in DISCRETE[:3]]
    assert line.counters["requests"] == 2  # the coils share one read, the inputs another
    sent = [record.data for record in line.frames if record.direction == "tx"]
    assert sent == [frame(ReadRequest(1, 2, 0, 3)), frame(ReadRequest(7, 1, 0, 9))]


# A pymodbus client reads our simulator -------------------------------------------


async def test_pymodbus_reads_the_rig_units(rig: Rig) -> None:
    async with pymodbus_client(rig.modbus.port.address) as client:
        level_unit = await client.read_input_registers(0, count=3, device_id=1)
        temperature_unit = await client.read_input_registers(0, count=1, device_id=2)

    assert not level_unit.isError(), level_unit
    assert not temperature_unit.isError(), temperature_unit
    level = convert_from(level_unit.registers[0:2], data_type=DATATYPE.FLOAT32)
    raw_temperature = convert_from(level_unit.registers[2:3], data_type=DATATYPE.INT16)
    assert level == 12.5
    assert raw_temperature == 215
    assert raw_temperature * 0.1 == pytest.approx(21.5)
    assert convert_from(temperature_unit.registers, data_type=DATATYPE.INT16) == 215


async def test_rig_refuses_what_its_units_do_not_have(rig: Rig) -> None:
    async with pymodbus_client(rig.modbus.port.address) as client:
        past_the_end = await client.read_input_registers(2, count=2, device_id=1)
        no_holding = await client.read_holding_registers(0, count=1, device_id=2)
        a_write = await client.write_register(0, 1, device_id=1)
        still_there = await client.read_input_registers(0, count=1, device_id=2)

    for reply, code in [(past_the_end, 2), (no_holding, 2), (a_write, 1)]:
        assert reply.isError(), reply
        assert reply.exception_code == code, reply
    assert not still_there.isError()


async def test_absent_unit_times_out_in_pymodbus(rig: Rig) -> None:
    async with pymodbus_client(rig.modbus.port.address, timeout=0.3) as client:
        with pytest.raises(ModbusIOException):
            await client.read_input_registers(0, count=1, device_id=9)
        # The simulator stayed in step: the next request is answered.
        after = await client.read_input_registers(0, count=2, device_id=1)
    assert not after.isError()
    assert convert_from(after.registers, data_type=DATATYPE.FLOAT32) == 12.5


@pytest.fixture
async def float_orders_device() -> AsyncIterator[ModbusBusDevice]:
    """Unit 3 holds water level 123.456 in the four orders, at input registers 0, 2, 4, 6."""
    world = World(seed=3)
    world.signals["water_level"].set(123.456)
    points = [
        ModbusPoint("water_level", 3, 2 * i, "input", "float32", word_order, byte_order)
        for i, ((word_order, byte_order), _) in enumerate(FLOAT_ORDERS.values())
    ]
    device = ModbusBusDevice("modbus-orders", world, [SimUnit(3, "orders", points)], time_scale=0)
    async with running(device):
        yield device


@pytest.mark.parametrize("order", list(FLOAT_ORDERS))
async def test_pymodbus_decodes_each_simulated_float_order(
    float_orders_device: ModbusBusDevice, order: str
) -> None:
    index = list(FLOAT_ORDERS).index(order)
    (word_order, byte_order), wire = FLOAT_ORDERS[order]
    async with pymodbus_client(float_orders_device.port.address) as client:
        reply = await client.read_input_registers(2 * index, count=2, device_id=3)

    assert not reply.isError(), reply
    assert reply.registers == wire  # the field notes' bytes, as they went over the wire
    # pymodbus knows word order only: it reads each register big-endian. For the
    # byte-swapped layouts (BADC, DCBA) swap the bytes of each register back first.
    registers = reply.registers if byte_order == "big" else [swap_bytes(r) for r in reply.registers]
    value = convert_from(registers, data_type=DATATYPE.FLOAT32, word_order=word_order)
    assert struct.pack(">f", value) == struct.pack(">f", FLOAT_123_456)  # the same float32
