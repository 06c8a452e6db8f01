"""Modbus TCP (MBAP) codec and the shared PDU's bits: known frames whole, split and
byte by byte; garbage fuzzed so that only our ProtocolError comes out."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ModbusExceptionReply, ProtocolError, SettingError
from drivers.modbus_pdu import ReadRequest, ReadResponse, UnsupportedRequest, pack_bits, unpack_bits
from drivers.modbus_rtu import ResponseDecoder as RtuResponseDecoder
from drivers.modbus_rtu import frame, with_crc
from drivers.modbus_tcp import (
    Frame,
    RequestDecoder,
    ResponseDecoder,
    TcpFraming,
    encode_reply,
    encode_request,
    maybe_frame,
)

# Hand-built from the MBAP layout: tid, protocol 0, length (unit + PDU), unit, PDU.
READ_HOLDING = ReadRequest(1, 3, 0, 10)
READ_HOLDING_WIRE = bytes.fromhex("00 01 00 00 00 06 01 03 00 00 00 0A")
HOLDING_REPLY_REQUEST = ReadRequest(1, 3, 0, 2)
HOLDING_REPLY_WIRE = bytes.fromhex("00 07 00 00 00 07 01 03 04 12 34 AB CD")
# The spec's read-coils example: coils 20..38 (19), status CD 6B 05, LSB first.
READ_COILS = ReadRequest(17, 1, 19, 19)
READ_COILS_WIRE = bytes.fromhex("12 34 00 00 00 06 11 01 00 13 00 13")
COILS_REPLY_WIRE = bytes.fromhex("12 34 00 00 00 06 11 01 03 CD 6B 05")
COILS = (1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1)  # CD 6B 05, LSB first
EXCEPTION_WIRE = bytes.fromhex("00 01 00 00 00 03 01 83 02")


def split_everywhere(raw: bytes) -> list[list[bytes]]:
    """The frame whole, cut in two at every point, and byte by byte."""
    return [[raw], *([raw[:i], raw[i:]] for i in range(1, len(raw))), [bytes([b]) for b in raw]]


def feed(decoder: ResponseDecoder, chunks: list[bytes]) -> ReadResponse:
    for i, chunk in enumerate(chunks):
        result = decoder.feed(chunk)
        if i < len(chunks) - 1:
            assert result is None, f"a reply came out after {i + 1} of {len(chunks)} chunks"
    assert result is not None
    return result


def test_requests_encode_as_the_mbap_layout() -> None:
    assert encode_request(1, READ_HOLDING) == READ_HOLDING_WIRE
    assert encode_request(0x1234, READ_COILS) == READ_COILS_WIRE


@pytest.mark.parametrize("chunks", split_everywhere(HOLDING_REPLY_WIRE))
def test_register_reply_whole_split_and_byte_by_byte(chunks: list[bytes]) -> None:
    reply = feed(ResponseDecoder(HOLDING_REPLY_REQUEST, 7), chunks)
    assert reply == ReadResponse(1, 3, (0x1234, 0xABCD))


@pytest.mark.parametrize("chunks", split_everywhere(COILS_REPLY_WIRE))
def test_coil_reply_unpacks_lsb_first(chunks: list[bytes]) -> None:
    reply = feed(ResponseDecoder(READ_COILS, 0x1234), chunks)
    assert reply.values == COILS
    assert encode_reply(0x1234, reply) == COILS_REPLY_WIRE


def test_discrete_inputs_are_bits_too() -> None:
    request = ReadRequest(1, 2, 0, 3)
    wire = bytes.fromhex("00 09 00 00 00 04 01 02 01 05")
    assert ResponseDecoder(request, 9).feed(wire) == ReadResponse(1, 2, (1, 0, 1))


@pytest.mark.parametrize("chunks", split_everywhere(EXCEPTION_WIRE))
def test_exception_reply_raises_once_whole(chunks: list[bytes]) -> None:
    decoder = ResponseDecoder(HOLDING_REPLY_REQUEST, 1)
    for chunk in chunks[:-1]:
        assert decoder.feed(chunk) is None
    with pytest.raises(ModbusExceptionReply) as caught:
        decoder.feed(chunks[-1])
    assert (caught.value.unit, caught.value.function, caught.value.code) == (1, 3, 2)


@pytest.mark.parametrize(
    ("wire", "words"),
    [
        ("00 08 00 00 00 07 01 03 04 12 34 AB CD", "transaction 8, expected 7"),
        ("00 07 00 00 00 07 02 03 04 12 34 AB CD", "unit 2, expected unit 1"),
        ("00 07 00 00 00 07 01 04 04 12 34 AB CD", "function 0x04"),
        ("00 07 00 00 00 05 01 03 02 12 34", "data bytes"),
        ("00 07 00 01 00 07 01 03 04 12 34 AB CD", "protocol id 1"),
        ("00 07 00 00 00 01 01", "length 1"),
        ("00 07 00 00 01 00 01", "length 256"),
        ("00 07 00 00 00 07 01 03 04 12 34 AB CD 00", "1 bytes after the reply"),
        ("00 07 00 00 00 04 01 83 02 00", "exception reply PDU 83 02 00"),
    ],
)
def test_replies_that_do_not_answer_the_request_are_refused(wire: str, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        ResponseDecoder(HOLDING_REPLY_REQUEST, 7).feed(bytes.fromhex(wire))


def test_a_bad_header_is_refused_before_the_frame_is_in() -> None:
    """Seven bytes of header are enough to know: no waiting for a length that never comes."""
    with pytest.raises(ProtocolError, match="protocol id"):
        ResponseDecoder(HOLDING_REPLY_REQUEST, 7).feed(bytes.fromhex("00 07 AB CD 00 07 01"))


def test_maybe_frame_takes_one_frame_and_leaves_the_rest() -> None:
    buffer = bytearray(READ_HOLDING_WIRE + READ_COILS_WIRE[:5])
    assert maybe_frame(buffer) == Frame(1, 1, READ_HOLDING.pdu())
    assert buffer == READ_COILS_WIRE[:5]
    assert maybe_frame(buffer) is None
    buffer += READ_COILS_WIRE[5:]
    assert maybe_frame(buffer) == Frame(0x1234, 17, READ_COILS.pdu())
    assert not buffer


def test_framing_numbers_requests_and_wraps() -> None:
    framing = TcpFraming()
    tids = [int.from_bytes(framing.encode(READ_HOLDING)[0][:2], "big") for _ in range(3)]
    assert tids == [1, 2, 3]
    framing._transaction = 0xFFFF
    wire, parser = framing.encode(HOLDING_REPLY_REQUEST)
    assert wire[:2] == b"\x00\x01"
    assert parser().feed(HOLDING_REPLY_WIRE.replace(b"\x00\x07", b"\x00\x01", 1)) is not None


# Device side -------------------------------------------------------------------


@pytest.mark.parametrize("chunks", split_everywhere(READ_HOLDING_WIRE + READ_COILS_WIRE))
def test_device_reads_requests_whole_split_and_byte_by_byte(chunks: list[bytes]) -> None:
    decoder = RequestDecoder()
    out = [pair for chunk in chunks for pair in decoder.feed(chunk)]
    assert out == [(1, READ_HOLDING), (0x1234, READ_COILS)]


@pytest.mark.parametrize(
    ("pdu", "code"),
    [("06 00 00 00 01", 1), ("03 00 00 00 7E", 3), ("01 00 00 07 D1", 3), ("04 FF FF 00 02", 2)],
)
def test_device_refuses_what_it_cannot_serve(pdu: str, code: int) -> None:
    raw = bytes.fromhex(pdu)
    wire = Frame(5, 1, raw).to_bytes()
    [(tid, refusal)] = RequestDecoder().feed(wire)
    assert tid == 5
    assert refusal == UnsupportedRequest(1, raw[0], code)
    assert encode_reply(tid, refusal.reply())[-2:] == bytes((raw[0] | 0x80, code))


def test_device_skips_unit_ids_no_unit_lives_at() -> None:
    assert RequestDecoder().feed(Frame(1, 0, READ_HOLDING.pdu()).to_bytes()) == []
    assert RequestDecoder().feed(Frame(1, 255, READ_HOLDING.pdu()).to_bytes()) == []


# Bits in the shared PDU, and in RTU ---------------------------------------------


@given(st.lists(st.integers(0, 1), min_size=1, max_size=2000))
@settings(max_examples=100, deadline=None)
def test_bits_pack_and_unpack(bits: list[int]) -> None:
    packed = pack_bits(bits)
    assert len(packed) == (len(bits) + 7) // 8
    assert unpack_bits(packed, len(bits)) == tuple(bits)


def test_rtu_reads_coils_with_the_same_pdu() -> None:
    request = ReadRequest(17, 1, 19, 19)
    assert frame(request) == with_crc(bytes.fromhex("11 01 00 13 00 13"))
    reply = with_crc(bytes.fromhex("11 01 03 CD 6B 05"))
    decoder = RtuResponseDecoder(request)
    assert [decoder.feed(bytes([b])) for b in reply[:-1]] == [None] * (len(reply) - 1)
    response = decoder.feed(reply[-1:])
    assert response is not None
    assert response.values == COILS


def test_bit_reads_are_limited_to_2000() -> None:
    ReadRequest(1, 2, 0, 2000)
    with pytest.raises(SettingError, match=r"1\.\.2000"):
        ReadRequest(1, 1, 0, 2001)


# Fuzzing: garbage in, only our errors out ------------------------------------------


@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
@settings(max_examples=200, deadline=None)
def test_garbage_replies_raise_only_protocol_errors(data: bytes, tid: int) -> None:
    decoder = ResponseDecoder(READ_COILS, tid)
    with contextlib.suppress(ProtocolError, ModbusExceptionReply):
        for i in range(0, len(data), 7):
            decoder.feed(data[i : i + 7])


@given(
    st.lists(
        st.tuples(st.integers(0, 0xFFFF), st.integers(0, 255), st.binary(min_size=1, max_size=8)),
        max_size=5,
    ),
    st.binary(max_size=40),
)
@settings(max_examples=200, deadline=None)
def test_device_decoder_fuzz(frames: list[tuple[int, int, bytes]], tail: bytes) -> None:
    """Well-framed requests of any PDU are parsed or refused; garbage is a ProtocolError."""
    decoder = RequestDecoder()
    wire = b"".join(Frame(t, u, p).to_bytes() for t, u, p in frames)
    out = decoder.feed(wire)
    assert [tid for tid, _ in out] == [t for t, u, _ in frames if 1 <= u <= 247]
    with contextlib.suppress(ProtocolError):
        decoder.feed(tail)
