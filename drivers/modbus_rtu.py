"""Modbus RTU codec, sans-I/O: bytes in, frames out, and the other way round.

Replies are framed by their expected length (``5 + 2N`` bytes for a read, 5
for an exception), never by inter-frame silence: USB adapters buffer for
~16 ms, so user space cannot see the 3.5-character gaps. Both sides live
here, so the simulators answer with the very codec the driver reads with.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from drivers.errors import ConfigError, CRCError, ModbusExceptionReply, ProtocolError

READ_HOLDING_REGISTERS = 0x03
READ_INPUT_REGISTERS = 0x04
READ_FUNCTIONS = {"holding": READ_HOLDING_REGISTERS, "input": READ_INPUT_REGISTERS}
MAX_READ_REGISTERS = 125
MAX_FRAME = 256
EXCEPTION_BIT = 0x80

DataType = Literal["int16", "uint16", "int32", "uint32", "float32"]
Order = Literal["big", "little"]
REGISTER_COUNT: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
}
_STRUCT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}


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


def validate_unit(unit: int) -> None:
    """Unicast addresses only: 0 is broadcast (never answered), 248-255 reserved."""
    if not 1 <= unit <= 247:
        raise ConfigError(f"unit {unit} is not a Modbus unicast address (1..247)")


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """A read of ``count`` registers from 0-based ``address`` (FC 3 or FC 4)."""

    unit: int
    function: int
    address: int
    count: int

    def __post_init__(self) -> None:
        validate_unit(self.unit)
        if self.function not in (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS):
            raise ConfigError(f"function {self.function:#04x} is not a register read (3 or 4)")
        if not 1 <= self.count <= MAX_READ_REGISTERS:
            raise ConfigError(f"register count {self.count} is outside 1..{MAX_READ_REGISTERS}")
        if self.address < 0 or self.address + self.count > 0x10000:
            raise ConfigError(f"registers {self.address}..+{self.count} exceed 0..65535")

    @property
    def reply_length(self) -> int:
        return 5 + 2 * self.count

    def to_bytes(self) -> bytes:
        return with_crc(struct.pack(">BBHH", self.unit, self.function, self.address, self.count))


@dataclass(frozen=True, slots=True)
class ReadResponse:
    unit: int
    function: int
    registers: tuple[int, ...]

    def to_bytes(self) -> bytes:
        body = struct.pack(
            f">BBB{len(self.registers)}H",
            self.unit,
            self.function,
            2 * len(self.registers),
            *self.registers,
        )
        return with_crc(body)


@dataclass(frozen=True, slots=True)
class ExceptionResponse:
    unit: int
    function: int  # the function that failed, without the exception bit
    code: int

    def to_bytes(self) -> bytes:
        return with_crc(bytes((self.unit, self.function | EXCEPTION_BIT, self.code)))

    def to_error(self) -> ModbusExceptionReply:
        return ModbusExceptionReply(self.unit, self.function, self.code)


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
        if buf[2] != 2 * req.count:
            raise ProtocolError(f"reply carries {buf[2]} data bytes, expected {2 * req.count}")
        if len(buf) < req.reply_length:
            return None
        frame = bytes(buf[: req.reply_length])
        check_crc(frame)
        registers = struct.unpack(f">{req.count}H", frame[3:-2])
        return ReadResponse(req.unit, req.function, registers)


# Device side ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnsupportedRequest:
    """A well-formed request the device must refuse with ``code``."""

    unit: int
    function: int
    code: int

    def reply(self) -> ExceptionResponse:
        return ExceptionResponse(self.unit, self.function, self.code)


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
    unit, function = frame[0], frame[1]
    if unit == 0 or unit > 247:
        return None
    if function not in (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS):
        return UnsupportedRequest(unit, function, 0x01)
    address, count = struct.unpack(">HH", frame[2:6])
    if not 1 <= count <= MAX_READ_REGISTERS:
        return UnsupportedRequest(unit, function, 0x03)
    if address + count > 0x10000:
        return UnsupportedRequest(unit, function, 0x02)
    return ReadRequest(unit, function, address, count)


# Values --------------------------------------------------------------------


def check_layout(data_type: str, word_order: str, byte_order: str) -> None:
    if data_type not in REGISTER_COUNT:
        raise ConfigError(f"data_type {data_type!r} is not one of {', '.join(REGISTER_COUNT)}")
    for name, order in (("word_order", word_order), ("byte_order", byte_order)):
        if order not in ("big", "little"):
            raise ConfigError(f"{name} {order!r} is not 'big' or 'little'")


def decode_value(
    registers: Sequence[int], data_type: str, word_order: str = "big", byte_order: str = "big"
) -> float:
    """Registers as read off the wire -> the number they hold.

    ``byte_order`` little swaps the two bytes of each register; ``word_order``
    little puts the low word first (float 123.456 = 0x42F6E979 is ``E979 42F6``).
    """
    check_layout(data_type, word_order, byte_order)
    count = REGISTER_COUNT[data_type]
    if len(registers) != count:
        raise ProtocolError(f"{data_type} needs {count} registers, got {len(registers)}")
    words = list(registers)
    if word_order == "little":
        words.reverse()
    raw = b"".join(w.to_bytes(2, "big" if byte_order == "big" else "little") for w in words)
    value: float = struct.unpack(_STRUCT[data_type], raw)[0]
    return _shortest_float32(value, raw) if data_type == "float32" else value


def _shortest_float32(value: float, raw: bytes) -> float:
    """The shortest decimal that is the same float32: 12.3 rather than 12.300000190734863."""
    if not math.isfinite(value):
        return value
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack(">f", candidate) == raw:
            return candidate
    return value  # pragma: no cover - 9 significant digits always round-trip


def encode_value(
    value: float, data_type: str, word_order: str = "big", byte_order: str = "big"
) -> tuple[int, ...]:
    """The inverse of :func:`decode_value`: what a device puts in its registers."""
    check_layout(data_type, word_order, byte_order)
    if data_type != "float32":
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be stored as {data_type}")
        value = round(value)
    raw = struct.pack(_STRUCT[data_type], value)
    words = [
        int.from_bytes(raw[i : i + 2], "big" if byte_order == "big" else "little")
        for i in range(0, len(raw), 2)
    ]
    if word_order == "little":
        words.reverse()
    return tuple(words)


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One request that serves several points; ``members`` index the input."""

    request: ReadRequest
    members: tuple[int, ...]

    def slice(self, registers: Sequence[int], address: int, count: int) -> tuple[int, ...]:
        start = address - self.request.address
        return tuple(registers[start : start + count])


def plan_reads(
    spans: Iterable[tuple[int, int, int, int]], max_registers: int = MAX_READ_REGISTERS
) -> list[ReadBlock]:
    """Merge ``(unit, function, address, count)`` spans into as few reads as fit.

    Spans of one unit and function that touch or overlap share a request, up to
    ``max_registers`` (some devices accept fewer than the protocol's 125).
    Registers between two spans are never read: a gap may be a hole the device
    refuses with "illegal data address".
    """
    indexed = sorted(enumerate(spans), key=lambda item: item[1])
    blocks: list[ReadBlock] = []
    current: list[int] = []
    unit = function = start = end = -1
    for index, (u, f, address, count) in indexed:
        new_end = max(end, address + count)
        if (
            current
            and (u, f) == (unit, function)
            and address <= end
            and new_end - start <= max_registers
        ):
            current.append(index)
            end = new_end
            continue
        if current:
            blocks.append(
                ReadBlock(ReadRequest(unit, function, start, end - start), tuple(current))
            )
        current, unit, function, start, end = [index], u, f, address, address + count
    if current:
        blocks.append(ReadBlock(ReadRequest(unit, function, start, end - start), tuple(current)))
    return blocks


def _hex(data: bytes | bytearray) -> str:
    return bytes(data[:32]).hex(" ") + (" ..." if len(data) > 32 else "")
