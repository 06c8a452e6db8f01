"""Modbus TCP interoperability with pymodbus 3.16, an independent implementation.

Frames: ours decoded by pymodbus's socket framer, pymodbus's decoded by ours,
requests and replies, registers and bits. Exchanges: our driver reads a
pymodbus TCP server, and a pymodbus TCP client reads our simulator, over
real sockets on 127.0.0.1. Expected values come from pymodbus's side.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadCoilsResponse,
    ReadDiscreteInputsRequest,
    ReadDiscreteInputsResponse,
)
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    ReadInputRegistersResponse,
)
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.errors import ModbusExceptionReply
from drivers.modbus_pdu import ExceptionResponse as OurException
from drivers.modbus_pdu import ReadRequest, ReadResponse
from drivers.modbus_tcp import RequestDecoder, ResponseDecoder, TcpFraming, encode_reply
from drivers.model import ModbusPoint, Quality
from drivers.sensors import ModbusBus
from drivers.tcp_line import TcpLine
from simulators.devices import ModbusBusDevice, SimUnit
from simulators.modbus_tcp import ModbusTcpDevice
from simulators.tcp_port import TcpPort
from simulators.world import World
from tests.helpers import modbus_tcp_device
from tests.interop.pymodbus_tasks import settle_request_tasks

REQUESTS: dict[int, type[ModbusPDU]] = {
    1: ReadCoilsRequest,
    2: ReadDiscreteInputsRequest,
    3: ReadHoldingRegistersRequest,
    4: ReadInputRegistersRequest,
}
RESPONSES: dict[int, type[ModbusPDU]] = {
    1: ReadCoilsResponse,
    2: ReadDiscreteInputsResponse,
    3: ReadHoldingRegistersResponse,
    4: ReadInputRegistersResponse,
}


@st.composite
def reads(draw: st.DrawFn) -> tuple[int, ReadRequest]:
    function = draw(st.integers(1, 4))
    count = draw(st.integers(1, 2000 if function <= 2 else 125))
    address = draw(st.integers(0, 0x10000 - count))
    request = ReadRequest(draw(st.integers(1, 247)), function, address, count)
    return draw(st.integers(0, 0xFFFF)), request


def pymodbus_decode(wire: bytes, *, is_server: bool) -> ModbusPDU:
    used, pdu = FramerSocket(DecodePDU(is_server)).handleFrame(wire, 0, 0)
    assert used == len(wire)
    assert pdu is not None
    return pdu


# Frames, both directions -----------------------------------------------------------


@given(reads())
@settings(max_examples=100, deadline=None)
def test_pymodbus_decodes_our_requests(read: tuple[int, ReadRequest]) -> None:
    transaction, request = read
    wire, _ = TcpFraming().encode(request)
    wire = transaction.to_bytes(2, "big") + wire[2:]
    pdu = pymodbus_decode(wire, is_server=True)
    assert type(pdu) is REQUESTS[request.function]
    assert (pdu.transaction_id, pdu.dev_id) == (transaction, request.unit)
    assert (pdu.address, pdu.count) == (request.address, request.count)


@given(reads(), st.data())
@settings(max_examples=100, deadline=None)
def test_pymodbus_decodes_our_replies(read: tuple[int, ReadRequest], data: st.DataObject) -> None:
    transaction, request = read
    bits = request.function <= 2
    item = st.integers(0, 1) if bits else st.integers(0, 0xFFFF)
    values = tuple(data.draw(st.lists(item, min_size=request.count, max_size=request.count)))
    wire = encode_reply(transaction, ReadResponse(request.unit, request.function, values))
    pdu = pymodbus_decode(wire, is_server=False)
    assert type(pdu) is RESPONSES[request.function]
    assert (pdu.transaction_id, pdu.dev_id) == (transaction, request.unit)
    if bits:  # pymodbus unpacks whole bytes: the padding bits are zero
        assert pdu.bits[: request.count] == [bool(v) for v in values]
        assert not any(pdu.bits[request.count :])
    else:
        assert tuple(pdu.registers) == values


def test_pymodbus_decodes_our_exception_reply() -> None:
    pdu = pymodbus_decode(encode_reply(9, OurException(4, 3, 0x02)), is_server=False)
    assert isinstance(pdu, ExceptionResponse)
    assert (pdu.transaction_id, pdu.dev_id, pdu.exception_code) == (9, 4, 2)


@given(reads())
@settings(max_examples=100, deadline=None)
def test_we_decode_pymodbus_requests(read: tuple[int, ReadRequest]) -> None:
    transaction, request = read
    pdu = REQUESTS[request.function](
        dev_id=request.unit,
        transaction_id=transaction,
        address=request.address,
        count=request.count,
    )
    wire = FramerSocket(DecodePDU(True)).buildFrame(pdu)
    assert RequestDecoder().feed(wire) == [(transaction, request)]


@given(reads(), st.data())
@settings(max_examples=100, deadline=None)
def test_we_decode_pymodbus_replies(read: tuple[int, ReadRequest], data: st.DataObject) -> None:
    transaction, request = read
    if request.function <= 2:
        bits = data.draw(st.lists(st.booleans(), min_size=request.count, max_size=request.count))
        pdu = RESPONSES[request.function](request.unit, transaction, bits=bits)
        expected = tuple(int(b) for b in bits)
    else:
        words = data.draw(
            st.lists(st.integers(0, 0xFFFF), min_size=request.count, max_size=request.count)
        )
        pdu = RESPONSES[request.function](request.unit, transaction, registers=words)
        expected = tuple(words)
    wire = FramerSocket(DecodePDU(False)).buildFrame(pdu)
    decoder = ResponseDecoder(request, transaction)
    assert [decoder.feed(bytes([b])) for b in wire[:-1]] == [None] * (len(wire) - 1)
    assert decoder.feed(wire[-1:]) == ReadResponse(request.unit, request.function, expected)


def test_we_decode_a_pymodbus_exception() -> None:
    pdu = ExceptionResponse(3, 0x02, device_id=5, transaction=77)
    wire = FramerSocket(DecodePDU(False)).buildFrame(pdu)
    with pytest.raises(ModbusExceptionReply) as caught:
        ResponseDecoder(ReadRequest(5, 3, 0, 1), 77).feed(wire)
    assert caught.value.code == 2


# Our driver against a pymodbus TCP server ----------------------------------------------

COILS = [True, False, True, True] + [False] * 12
DISCRETE = [False, True] + [False] * 14
TURBIDITY = 4.75  # float32, big-endian words
TURBIDITY_WORDS = list(struct.unpack(">HH", struct.pack(">f", TURBIDITY)))


@pytest.fixture
async def pymodbus_server() -> AsyncIterator[str]:
    """A pymodbus TCP server for unit 3; yields its tcp:// address."""
    before = asyncio.all_tasks()
    simdata = (
        [SimData(0, values=COILS, datatype=DataType.BITS)],
        [SimData(0, values=DISCRETE, datatype=DataType.BITS)],
        [SimData(0, values=[0x1234], datatype=DataType.REGISTERS)],
        [SimData(0, values=TURBIDITY_WORDS, datatype=DataType.REGISTERS)],
    )
    server = ModbusTcpServer([SimDevice(3, simdata=simdata)], address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
        await settle_request_tasks(before)


async def test_our_driver_reads_a_pymodbus_server(pymodbus_server: str) -> None:
    line = TcpLine(pymodbus_server, timeout=1.0, retries=0)
    points = [
        ModbusPoint("turbidity", 3, 0, "input", "float32"),
        ModbusPoint("chlorine", 3, 0, "holding", "uint16"),
        *(ModbusPoint(f"coil_{i}", 3, i, "coil") for i in range(4)),
        *(ModbusPoint(f"switch_{i}", 3, i, "discrete") for i in range(2)),
    ]
    bus = ModbusBus(line, points, framing=TcpFraming())
    try:
        readings = await bus.read()
        missing = await ModbusBus(
            line, [ModbusPoint("x", 3, 100, "coil")], framing=TcpFraming()
        ).read()
    finally:
        await line.close()
    assert all(r.good for r in readings), [r.detail for r in readings]
    assert [r.value for r in readings] == [TURBIDITY, 0x1234, 1, 0, 1, 1, 0, 1]
    assert line.counters["requests"] == 5  # one per table (the coils share one), then the hole
    assert missing[0].quality is Quality.EXCEPTION
    assert "0x02" in missing[0].detail


# A pymodbus client against our simulator ---------------------------------------------------


@pytest.fixture
async def simulator() -> AsyncIterator[ModbusTcpDevice]:
    async with modbus_tcp_device(
        "tcp", seed=1, turbidity=2.5, pump=1.0, float_switch=1.0
    ) as device:
        yield device


async def test_pymodbus_client_reads_our_simulator(simulator: ModbusTcpDevice) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=simulator.tcp.tcp_port, timeout=1, retries=0)
    assert await client.connect()
    try:
        turbidity = await client.read_input_registers(0, count=2, device_id=1)
        pump = await client.read_coils(0, count=1, device_id=2)
        switch = await client.read_discrete_inputs(0, count=1, device_id=2)
        hole = await client.read_coils(5, count=1, device_id=2)
        write = await client.write_coil(0, False, device_id=2)
    finally:
        client.close()
    value = client.convert_from_registers(turbidity.registers, data_type=client.DATATYPE.FLOAT32)
    assert value == 2.5
    assert pump.bits[0] is True
    assert switch.bits[0] is True
    assert (hole.isError(), hole.exception_code) == (True, 2)
    assert (write.isError(), write.exception_code) == (True, 1)


async def test_pymodbus_reads_rtu_through_our_serial_server() -> None:
    """RTU frames, CRC included, through a socket: pymodbus's TCP client with its RTU framer."""
    world = World(seed=4)
    world.signals["water_level"].set(12.5)
    units = [
        SimUnit(1, "level", [ModbusPoint("water_level", 1, 0), ModbusPoint("pump", 1, 0, "coil")])
    ]
    server = ModbusBusDevice("serial-server", world, units, time_scale=0.0, tcp=True)
    world.signals["pump"].set(1.0)
    await server.start()
    assert isinstance(server.port, TcpPort)
    client = AsyncModbusTcpClient(
        "127.0.0.1", port=server.port.tcp_port, framer=FramerType.RTU, timeout=1, retries=0
    )
    try:
        assert await client.connect()
        level = await client.read_input_registers(0, count=2, device_id=1)
        pump = await client.read_coils(0, count=1, device_id=1)
    finally:
        client.close()
        await server.stop()
    assert client.convert_from_registers(level.registers, data_type=client.DATATYPE.FLOAT32) == 12.5
    assert pump.bits[0] is True
