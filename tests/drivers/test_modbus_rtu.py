"""Modbus RTU codec: known frames whole, split and byte by byte; fuzzing."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import CRCError, DriverError, ModbusExceptionReply, ProtocolError, SettingError
from drivers.modbus_rtu import (
    ReadBlock,
    ReadRequest,
    ReadResponse,
    RequestDecoder,
    ResponseDecoder,
    UnsupportedRequest,
    crc16,
    decode_value,
    encode_value,
    frame,
    plan_reads,
    reply_length,
    with_crc,
)
from tests.drivers.cuts import chunked, splits

# A hand-built reply: unit 1, FC 3, 4 data bytes, registers 0x1234 0xABCD.
REPLY_BODY = bytes.fromhex("01 03 04 12 34 AB CD")
REPLY = with_crc(REPLY_BODY)
REPLY_REQUEST = ReadRequest(1, 3, 0, 2)
REPLY_REGISTERS = (0x1234, 0xABCD)


def feed_until_result(decoder: ResponseDecoder, chunks: list[bytes]) -> ReadResponse:
    """Feed chunks until a response comes out (failing if none does)."""
    for chunk in chunks:
        response = decoder.feed(chunk)
        if response is not None:
            return response
    raise AssertionError("no response after all chunks")


# CRC ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "wire_crc"),
    [
        ("01 03 00 00 00 0A", "C5 CD"),
        ("01 03 00 00 00 01", "84 0A"),
        ("0A 03 10 04 00 02", "80 71"),
        ("0A 03 04 00 00 00 00", "40 F3"),
        ("01 03 00 FC 00 01", "44 3A"),
        ("01 83 02", "C0 F1"),
    ],
)
def test_crc16_vectors(body: str, wire_crc: str) -> None:
    data = bytes.fromhex(body)
    crc = bytes.fromhex(wire_crc)
    assert crc16(data) == int.from_bytes(crc, "little")
    assert with_crc(data) == data + crc
    assert crc16(data + crc) == 0  # residual of a whole frame


def test_crc16_first_vector_value() -> None:
    assert crc16(bytes.fromhex("01 03 00 00 00 0A")) == 0xCDC5


def test_crc16_check_value() -> None:
    assert crc16(b"123456789") == 0x4B37


def test_crc16_accepts_bytearray_and_memoryview() -> None:
    data = bytes.fromhex("01 03 00 00 00 0A")
    assert crc16(bytearray(data)) == crc16(memoryview(data)) == 0xCDC5


# ReadRequest ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "wire"),
    [
        (ReadRequest(1, 3, 0, 10), "01 03 00 00 00 0A C5 CD"),
        (ReadRequest(1, 3, 0, 1), "01 03 00 00 00 01 84 0A"),
        (ReadRequest(10, 3, 0x1004, 2), "0A 03 10 04 00 02 80 71"),
        (ReadRequest(1, 3, 0xFC, 1), "01 03 00 FC 00 01 44 3A"),
    ],
)
def test_read_request_frame(request_: ReadRequest, wire: str) -> None:
    assert frame(request_) == bytes.fromhex(wire)
    assert reply_length(request_) == 5 + 2 * request_.count


@pytest.mark.parametrize(
    ("unit", "function", "address", "count"),
    [
        (0, 3, 0, 1),
        (248, 3, 0, 1),
        (1, 6, 0, 1),
        (1, 3, 0, 0),
        (1, 3, 0, 126),
        (1, 3, 65535, 2),
        (1, 4, 65500, 100),
        (1, 3, -1, 1),
    ],
)
def test_read_request_invalid(unit: int, function: int, address: int, count: int) -> None:
    with pytest.raises(SettingError) as info:
        ReadRequest(unit, function, address, count)
    assert isinstance(info.value, ValueError)
    assert info.value.kind == "config"


@pytest.mark.parametrize(
    ("unit", "function", "address", "count"),
    [(1, 3, 0, 125), (247, 4, 65535, 1), (1, 3, 65411, 125)],
)
def test_read_request_limits_accepted(unit: int, function: int, address: int, count: int) -> None:
    ReadRequest(unit, function, address, count)


# ResponseDecoder ------------------------------------------------------------


def test_response_whole() -> None:
    response = ResponseDecoder(REPLY_REQUEST).feed(REPLY)
    assert response == ReadResponse(1, 3, REPLY_REGISTERS)


@pytest.mark.parametrize(("first", "second"), splits(REPLY))
def test_response_split(first: bytes, second: bytes) -> None:
    decoder = ResponseDecoder(REPLY_REQUEST)
    if second:
        assert decoder.feed(first) is None
    else:
        assert decoder.feed(first) is not None
        return
    response = decoder.feed(second)
    assert response is not None
    assert response.registers == REPLY_REGISTERS


def test_response_byte_by_byte() -> None:
    decoder = ResponseDecoder(REPLY_REQUEST)
    for byte in REPLY[:-1]:
        assert decoder.feed(bytes([byte])) is None
    response = decoder.feed(REPLY[-1:])
    assert response == ReadResponse(1, 3, REPLY_REGISTERS)


def test_response_known_reply_vector() -> None:
    request = ReadRequest(10, 3, 0x1004, 2)
    response = ResponseDecoder(request).feed(bytes.fromhex("0A 03 04 00 00 00 00 40 F3"))
    assert response == ReadResponse(10, 3, (0, 0))


def test_response_input_registers() -> None:
    request = ReadRequest(7, 4, 100, 1)
    raw = frame(ReadResponse(7, 4, (0xBEEF,)))
    response = ResponseDecoder(request).feed(raw)
    assert response is not None
    assert response.registers == (0xBEEF,)


def test_response_extra_trailing_bytes() -> None:
    response = ResponseDecoder(REPLY_REQUEST).feed(REPLY + b"\x00\xff\x13")
    assert response == ReadResponse(1, 3, REPLY_REGISTERS)


def test_exception_reply_illegal_address() -> None:
    with pytest.raises(ModbusExceptionReply) as info:
        ResponseDecoder(ReadRequest(1, 3, 0, 1)).feed(bytes.fromhex("01 83 02 C0 F1"))
    error = info.value
    assert error.code == 2
    assert error.unit == 1
    assert error.function == 3
    assert error.retryable is False
    assert error.kind == "exception"
    assert error.retry_after == 0.0


def test_exception_reply_byte_by_byte() -> None:
    decoder = ResponseDecoder(ReadRequest(1, 3, 0, 1))
    raw = bytes.fromhex("01 83 02 C0 F1")
    for byte in raw[:-1]:
        assert decoder.feed(bytes([byte])) is None
    with pytest.raises(ModbusExceptionReply):
        decoder.feed(raw[-1:])


def test_exception_reply_busy_is_retryable() -> None:
    raw = with_crc(bytes.fromhex("01 83 06"))
    with pytest.raises(ModbusExceptionReply) as info:
        ResponseDecoder(ReadRequest(1, 3, 0, 1)).feed(raw)
    assert info.value.code == 6
    assert info.value.retryable is True
    assert info.value.retry_after > 0


@pytest.mark.parametrize("code", [0x0A, 0x0B])
def test_exception_reply_gateway_is_timeout(code: int) -> None:
    raw = with_crc(bytes([1, 0x84, code]))
    with pytest.raises(ModbusExceptionReply) as info:
        ResponseDecoder(ReadRequest(1, 4, 0, 1)).feed(raw)
    assert info.value.retryable is True
    assert info.value.kind == "timeout"


def test_exception_reply_bad_crc() -> None:
    with pytest.raises(CRCError):
        ResponseDecoder(ReadRequest(1, 3, 0, 1)).feed(bytes.fromhex("01 83 02 C0 F2"))


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("02", id="wrong-unit"),
        pytest.param("01 04", id="wrong-function"),
        pytest.param("01 84", id="exception-of-other-function"),
        pytest.param("01 03 02", id="wrong-byte-count"),
        pytest.param("01 03 06", id="byte-count-too-big"),
    ],
)
def test_response_mismatch_raises_early(prefix: str) -> None:
    with pytest.raises(ProtocolError) as info:
        ResponseDecoder(REPLY_REQUEST).feed(bytes.fromhex(prefix))
    assert not isinstance(info.value, CRCError)
    assert info.value.kind == "garbage"


def test_response_corrupted_crc() -> None:
    corrupted = REPLY[:-1] + bytes([REPLY[-1] ^ 0x01])
    with pytest.raises(CRCError) as info:
        ResponseDecoder(REPLY_REQUEST).feed(corrupted)
    assert info.value.kind == "crc"
    assert info.value.frame == corrupted


def test_response_corrupted_data() -> None:
    corrupted = REPLY[:4] + bytes([REPLY[4] ^ 0x80]) + REPLY[5:]
    with pytest.raises(CRCError):
        ResponseDecoder(REPLY_REQUEST).feed(corrupted)


# RequestDecoder (device side) -------------------------------------------------

REQUEST = ReadRequest(1, 3, 0, 10)
REQUEST_FRAME = bytes.fromhex("01 03 00 00 00 0A C5 CD")


def test_request_whole() -> None:
    assert RequestDecoder().feed(REQUEST_FRAME) == [REQUEST]


@pytest.mark.parametrize(("first", "second"), splits(REQUEST_FRAME))
def test_request_split(first: bytes, second: bytes) -> None:
    decoder = RequestDecoder()
    out = decoder.feed(first) + decoder.feed(second)
    assert out == [REQUEST]
    assert decoder.bad_frames == 0


def test_request_byte_by_byte() -> None:
    decoder = RequestDecoder()
    for byte in REQUEST_FRAME[:-1]:
        assert decoder.feed(bytes([byte])) == []
    assert decoder.feed(REQUEST_FRAME[-1:]) == [REQUEST]


def test_request_back_to_back() -> None:
    other = ReadRequest(10, 4, 0x1004, 2)
    assert RequestDecoder().feed(REQUEST_FRAME + frame(other)) == [REQUEST, other]


def test_request_garbage_in_front_is_skipped() -> None:
    decoder = RequestDecoder()
    assert decoder.feed(bytes.fromhex("FF FF FF") + REQUEST_FRAME) == [REQUEST]
    assert decoder.bad_frames > 0


def test_request_corrupted_frame_then_valid() -> None:
    corrupted = REQUEST_FRAME[:-1] + b"\x00"
    decoder = RequestDecoder()
    assert decoder.feed(corrupted + REQUEST_FRAME) == [REQUEST]
    assert decoder.bad_frames > 0


def test_request_garbage_claiming_oversized_frame_is_skipped() -> None:
    garbage = bytes.fromhex("01 10 00 00 00 7B FF")  # FC 16 header: 9 + 255 = 264 bytes
    assert RequestDecoder().feed(garbage + REQUEST_FRAME) == [REQUEST]


def test_request_broadcast_dropped() -> None:
    decoder = RequestDecoder()
    broadcast = with_crc(bytes.fromhex("00 03 00 00 00 01"))
    assert decoder.feed(broadcast) == []
    assert decoder.feed(REQUEST_FRAME) == [REQUEST]
    assert decoder.bad_frames == 0


def test_request_unsupported_function() -> None:
    write = with_crc(bytes.fromhex("01 06 00 01 00 03"))
    assert len(write) == 8
    (refusal,) = RequestDecoder().feed(write)
    assert refusal == UnsupportedRequest(1, 6, 1)
    assert isinstance(refusal, UnsupportedRequest)
    assert frame(refusal.reply()) == with_crc(bytes.fromhex("01 86 01"))


def test_request_count_too_large() -> None:
    frame = with_crc(bytes.fromhex("01 03 00 00 00 C8"))  # 200 registers
    assert RequestDecoder().feed(frame) == [UnsupportedRequest(1, 3, 3)]


def test_request_address_overflow() -> None:
    frame = with_crc(bytes.fromhex("01 03 FF FF 00 02"))
    assert RequestDecoder().feed(frame) == [UnsupportedRequest(1, 3, 2)]


# Values ---------------------------------------------------------------------

FLOAT_ORDERS = [
    pytest.param("42 F6 E9 79", "big", "big", id="ABCD"),
    pytest.param("E9 79 42 F6", "little", "big", id="CDAB"),
    pytest.param("F6 42 79 E9", "big", "little", id="BADC"),
    pytest.param("79 E9 F6 42", "little", "little", id="DCBA"),
]
ORDERS = [("big", "big"), ("little", "big"), ("big", "little"), ("little", "little")]


@pytest.mark.parametrize(("wire", "word_order", "byte_order"), FLOAT_ORDERS)
def test_float_orders(wire: str, word_order: str, byte_order: str) -> None:
    registers = struct.unpack(">2H", bytes.fromhex(wire))
    value = decode_value(registers, "float32", word_order, byte_order)
    assert value == pytest.approx(123.456, rel=1e-6)
    assert encode_value(123.456, "float32", word_order, byte_order) == registers


@pytest.mark.parametrize(
    ("value", "data_type", "registers"),
    [
        (-5, "int16", (0xFFFB,)),
        (65535, "uint16", (0xFFFF,)),
        (0, "uint16", (0,)),
        (-32768, "int16", (0x8000,)),
        (-2, "int32", (0xFFFF, 0xFFFE)),
        (0x12345678, "int32", (0x1234, 0x5678)),
        (4294967295, "uint32", (0xFFFF, 0xFFFF)),
        (0x10000, "uint32", (0x0001, 0x0000)),
    ],
)
def test_integer_round_trip(value: int, data_type: str, registers: tuple[int, ...]) -> None:
    assert encode_value(value, data_type) == registers
    assert decode_value(registers, data_type) == value


def test_int32_word_swap() -> None:
    assert encode_value(0x12345678, "int32", "little", "big") == (0x5678, 0x1234)
    assert decode_value((0x5678, 0x1234), "int32", "little", "big") == 0x12345678


@pytest.mark.parametrize(
    ("data_type", "word_order", "byte_order"),
    [("float64", "big", "big"), ("float32", "middle", "big"), ("int16", "big", "BIG")],
)
def test_bad_layout(data_type: str, word_order: str, byte_order: str) -> None:
    with pytest.raises(SettingError):
        decode_value((0, 0), data_type, word_order, byte_order)
    with pytest.raises(SettingError):
        encode_value(0, data_type, word_order, byte_order)


@pytest.mark.parametrize(
    ("registers", "data_type"),
    [((), "int16"), ((1, 2), "uint16"), ((1,), "float32"), ((1, 2, 3), "int32")],
)
def test_wrong_register_count(registers: tuple[int, ...], data_type: str) -> None:
    with pytest.raises(ProtocolError):
        decode_value(registers, data_type)


def test_encode_non_finite_integer_refused() -> None:
    with pytest.raises(ValueError, match="cannot be stored"):
        encode_value(math.nan, "int16")


# plan_reads -----------------------------------------------------------------


def test_plan_adjacent_spans_merge() -> None:
    blocks = plan_reads([(1, 3, 10, 2), (1, 3, 12, 2), (1, 3, 14, 1)])
    assert blocks == [ReadBlock(ReadRequest(1, 3, 10, 5), (0, 1, 2))]


def test_plan_unsorted_input_keeps_indexes() -> None:
    blocks = plan_reads([(1, 3, 14, 1), (1, 3, 10, 2), (1, 3, 12, 2)])
    assert len(blocks) == 1
    assert blocks[0].request == ReadRequest(1, 3, 10, 5)
    assert sorted(blocks[0].members) == [0, 1, 2]


def test_plan_gap_does_not_merge() -> None:
    blocks = plan_reads([(1, 3, 0, 2), (1, 3, 3, 2)])
    assert blocks == [
        ReadBlock(ReadRequest(1, 3, 0, 2), (0,)),
        ReadBlock(ReadRequest(1, 3, 3, 2), (1,)),
    ]


@pytest.mark.parametrize(
    "spans",
    [
        [(1, 3, 0, 2), (2, 3, 2, 2)],
        [(1, 3, 0, 2), (1, 4, 2, 2)],
        [(1, 3, 0, 2), (1, 4, 0, 2)],
    ],
)
def test_plan_units_and_functions_never_merge(spans: list[tuple[int, int, int, int]]) -> None:
    blocks = plan_reads(spans)
    assert len(blocks) == 2
    for block in blocks:
        (index,) = block.members
        unit, function, address, count = spans[index]
        assert block.request == ReadRequest(unit, function, address, count)


def test_plan_overlapping_spans_merge() -> None:
    blocks = plan_reads([(1, 3, 0, 4), (1, 3, 2, 4), (1, 3, 1, 1)])
    assert len(blocks) == 1
    assert blocks[0].request == ReadRequest(1, 3, 0, 6)
    assert sorted(blocks[0].members) == [0, 1, 2]


def test_plan_max_registers_splits() -> None:
    spans = [(1, 3, 0, 2), (1, 3, 2, 2), (1, 3, 4, 2)]
    blocks = plan_reads(spans, max_registers=4)
    assert blocks == [
        ReadBlock(ReadRequest(1, 3, 0, 4), (0, 1)),
        ReadBlock(ReadRequest(1, 3, 4, 2), (2,)),
    ]


def test_plan_protocol_cap() -> None:
    spans = [(1, 3, 0, 100), (1, 3, 100, 100)]
    blocks = plan_reads(spans)
    assert [b.request.count for b in blocks] == [100, 100]


def test_plan_empty() -> None:
    assert plan_reads([]) == []


def test_block_slice() -> None:
    spans = [(1, 3, 10, 2), (1, 3, 12, 1), (1, 3, 13, 2)]
    (block,) = plan_reads(spans)
    registers = (100, 101, 102, 103, 104)
    assert block.slice(registers, 10, 2) == (100, 101)
    assert block.slice(registers, 12, 1) == (102,)
    assert block.slice(registers, 13, 2) == (103, 104)


# Properties -----------------------------------------------------------------

requests = st.builds(
    ReadRequest,
    unit=st.integers(1, 247),
    function=st.sampled_from([3, 4]),
    address=st.integers(0, 0xFFFF - 125),
    count=st.integers(1, 125),
)


@settings(max_examples=300, deadline=None)
@given(
    request=requests,
    header=st.booleans(),
    raw=st.binary(max_size=300),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_response_decoder_only_raises_driver_errors(
    request: ReadRequest, header: bool, raw: bytes, cuts: list[int]
) -> None:
    if header:  # get past the unit/function checks more often
        raw = bytes([request.unit, request.function]) + raw
    decoder = ResponseDecoder(request)
    try:
        for chunk in chunked(raw, cuts):
            result = decoder.feed(chunk)
            assert result is None or isinstance(result, ReadResponse)
    except DriverError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    request=requests,
    position=st.integers(0, 300),
    flip=st.integers(1, 255),
    cuts=st.lists(st.integers(0, 300), max_size=8),
)
def test_response_decoder_corrupted_reply(
    request: ReadRequest, position: int, flip: int, cuts: list[int]
) -> None:
    raw = bytearray(frame(ReadResponse(request.unit, request.function, (0,) * request.count)))
    raw[position % len(raw)] ^= flip
    # CRC-16 catches every single-byte error: nothing may be accepted.
    with pytest.raises(DriverError):
        feed_until_result(ResponseDecoder(request), chunked(bytes(raw), cuts))


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=600), cuts=st.lists(st.integers(0, 700), max_size=10))
def test_request_decoder_never_raises(raw: bytes, cuts: list[int]) -> None:
    decoder = RequestDecoder()
    for chunk in chunked(raw, cuts):
        out = decoder.feed(chunk)
        assert isinstance(out, list)
        assert all(isinstance(item, ReadRequest | UnsupportedRequest) for item in out)


@settings(max_examples=300, deadline=None)
@given(
    unit=st.integers(1, 247),
    function=st.sampled_from([3, 4]),
    registers=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125),
    cuts=st.lists(st.integers(0, 300), max_size=8),
)
def test_response_round_trip(
    unit: int, function: int, registers: list[int], cuts: list[int]
) -> None:
    request = ReadRequest(unit, function, 0, len(registers))
    raw = frame(ReadResponse(unit, function, tuple(registers)))
    assert len(raw) == reply_length(request)
    decoder = ResponseDecoder(request)
    fed = 0
    for chunk in chunked(raw, cuts):
        fed += len(chunk)
        result = decoder.feed(chunk)
        if fed < len(raw):
            assert result is None
        else:
            assert result == ReadResponse(unit, function, tuple(registers))


@settings(max_examples=300, deadline=None)
@given(request=requests, cuts=st.lists(st.integers(0, 20), max_size=8))
def test_request_round_trip(request: ReadRequest, cuts: list[int]) -> None:
    decoder = RequestDecoder()
    out = []
    for chunk in chunked(frame(request), cuts):
        out += decoder.feed(chunk)
    assert out == [request]


INTEGER_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}


@settings(max_examples=300, deadline=None)
@given(
    data_type_value=st.sampled_from(sorted(INTEGER_RANGES)).flatmap(
        lambda t: st.tuples(st.just(t), st.integers(*INTEGER_RANGES[t]))
    ),
    order=st.sampled_from(ORDERS),
)
def test_integer_value_round_trip(data_type_value: tuple[str, int], order: tuple[str, str]) -> None:
    data_type, value = data_type_value
    registers = encode_value(value, data_type, *order)
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode_value(registers, data_type, *order) == value


@settings(max_examples=300, deadline=None)
@given(
    value=st.floats(width=32, allow_nan=False, allow_infinity=False), order=st.sampled_from(ORDERS)
)
def test_float_value_round_trip(value: float, order: tuple[str, str]) -> None:
    registers = encode_value(value, "float32", *order)
    decoded = decode_value(registers, "float32", *order)
    assert struct.pack(">f", decoded) == struct.pack(">f", value)


@pytest.mark.parametrize("decimal", [12.3, 0.1, 7.25, -1023.0, 123.456, 1e-7, 3.4e38])
def test_float32_decodes_to_the_shortest_decimal_of_the_same_float(decimal: float) -> None:
    registers = encode_value(decimal, "float32")
    assert decode_value(registers, "float32") == decimal  # not 12.300000190734863
