"""Modbus RTU codec, sans-I/O: bytes in, frames out, and the other way round.

An RTU frame is the unit, a PDU (drivers.modbus_pdu, shared with Modbus TCP)
and a CRC. Replies are framed by their expected length (``5 + 2N`` bytes for
a register read, ``5 + ceil(N / 8)`` for bits, 5 for an exception), never by
inter-frame silence: USB adapters buffer for ~16 ms, so user space cannot see
the 3.5-character gaps. Both sides live here, so the simulators answer with
the very codec the driver reads with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.errors import CRCError, ProtocolError
from drivers.modbus_pdu import (
    EXCEPTION_BIT,
    MAX_READ_REGISTERS,
    READ_FUNCTIONS,
    READ_HOLDING_REGISTERS,
    READ_INPUT_REGISTERS,
    REGISTER_COUNT,
    ExceptionResponse,
    ReadBlock,
    ReadRequest,
    ReadResponse,
    UnsupportedRequest,
    check_layout,
    decode_value,
    encode_value,
    parse_request,
    plan_reads,
    validate_unit,
)

#: The PDU names, re-exported for the RTU callers that import them from here.
__all__ = [
    "EXCEPTION_BIT",
    "MAX_FRAME",
    "MAX_READ_REGISTERS",
    "READ_FUNCTIONS",
    "READ_HOLDING_REGISTERS",
    "READ_INPUT_REGISTERS",
    "REGISTER_COUNT",
    "ExceptionResponse",
    "ReadBlock",
    "ReadRequest",
    "ReadResponse",
    "RequestDecoder",
    "ResponseDecoder",
    "RtuFraming",
    "UnsupportedRequest",
    "check_crc",
    "check_layout",
    "crc16",
    "decode_value",
    "encode_value",
    "frame",
    "plan_reads",
    "reply_length",
    "validate_unit",
    "with_crc",
]

MAX_FRAME = 256


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/MODBUS (reflected 0xA001, init 0xFFFF). Sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(body: bytes) -> bytes:
    """Append the CRC, low byte first, as it goes on the wire."""
    return body + crc16(body).to_bytes(2, "little")


def check_crc(frame: bytes) -> None:
    """Raise :class:`CRCError` unless the frame's last two bytes are its CRC."""
    expected = crc16(frame[:-2])
    received = int.from_bytes(frame[-2:], "little")
    if expected != received:
        raise CRCError(bytes(frame), expected, received)


def frame(message: ReadRequest | ReadResponse | ExceptionResponse) -> bytes:
    """The RTU frame of a request or reply: unit, PDU, CRC."""
    return with_crc(bytes((message.unit,)) + message.pdu())


def reply_length(request: ReadRequest) -> int:
    """Bytes in the whole RTU reply to ``request``."""
    return 5 + request.data_bytes


class ResponseDecoder:
    """Assembles the reply to one request; call :meth:`feed` as bytes arrive.

    ``feed`` returns None until the frame is complete, then the response.
    It raises :class:`ModbusExceptionReply` for an exception reply, and a
    :class:`ProtocolError` as soon as the bytes cannot be the reply asked for
    (wrong unit, function or byte count, bad CRC): only a reply that matches
    the request is ever accepted.
    """

    def __init__(self, request: ReadRequest) -> None:
        self.request = request
        self._buffer = bytearray()

    def feed(self, data: bytes) -> ReadResponse | None:
        self._buffer += data
        buf = self._buffer
        req = self.request
        if len(buf) >= 1 and buf[0] != req.unit:
            raise ProtocolError(f"reply from unit {buf[0]}, expected unit {req.unit}: {_hex(buf)}")
        if len(buf) >= 2 and buf[1] not in (req.function, req.function | EXCEPTION_BIT):
            raise ProtocolError(f"reply with function {buf[1]:#04x}, expected {req.function:#04x}")
        if len(buf) < 3:
            return None
        if buf[1] & EXCEPTION_BIT:
            if len(buf) < 5:
                return None
            check_crc(bytes(buf[:5]))
            raise ExceptionResponse(req.unit, req.function, buf[2]).to_error()
        if buf[2] != req.data_bytes:
            raise ProtocolError(f"reply carries {buf[2]} data bytes, expected {req.data_bytes}")
        length = reply_length(req)
        if len(buf) < length:
            return None
        whole = bytes(buf[:length])
        check_crc(whole)
        return ReadResponse(req.unit, req.function, req.decode_data(whole[3:-2]))


# Device side ---------------------------------------------------------------


@dataclass
class RequestDecoder:
    """The device's view: requests out of a byte stream, CRC-checked.

    A frame that fails its CRC is skipped one byte at a time until a valid
    frame lines up, as a device that lost sync would. Broadcasts (unit 0) are
    dropped: they are never answered. ``bad_frames`` counts the skipped bytes.
    """

    bad_frames: int = 0
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[ReadRequest | UnsupportedRequest]:
        self._buffer += data
        out: list[ReadRequest | UnsupportedRequest] = []
        while True:
            length = self._frame_length()
            if length is not None and length > MAX_FRAME:
                self.bad_frames += 1  # no frame is that long: this byte is noise
                del self._buffer[0]
                continue
            if length is None or len(self._buffer) < length:
                return out
            frame = bytes(self._buffer[:length])
            if crc16(frame) != 0:  # a frame followed by its CRC has residual 0
                self.bad_frames += 1
                del self._buffer[0]
                continue
            del self._buffer[:length]
            request = _parse_request(frame)
            if request is not None:
                out.append(request)

    def _frame_length(self) -> int | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        function = buf[1]
        if function in (15, 16):
            return None if len(buf) < 7 else 9 + buf[6]
        if 1 <= function <= 6:
            return 8
        return 4  # unknown function: address, function, CRC


def _parse_request(frame: bytes) -> ReadRequest | UnsupportedRequest | None:
    unit = frame[0]
    if unit == 0 or unit > 247:
        return None
    return parse_request(unit, frame[1:-2])


class RtuFraming:
    """How a Modbus bus talks RTU: a request's frame, and a parser for its reply."""

    name = "rtu"

    def encode(self, request: ReadRequest) -> tuple[bytes, Callable[[], ResponseDecoder]]:
        return frame(request), lambda: ResponseDecoder(request)


def _hex(data: bytes | bytearray) -> str:
    return bytes(data[:32]).hex(" ") + (" ..." if len(data) > 32 else "")
