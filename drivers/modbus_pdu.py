"""The Modbus PDU, shared by RTU and TCP framing: requests, replies, bits and values.

Sans-I/O. A PDU is the function code and its data; each transport wraps it
(RTU: unit in front, CRC behind; TCP: the MBAP header in front) and asks this
module what the PDU means. Both sides live here, so the simulators answer with
the very code the driver reads with.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from drivers.errors import ModbusExceptionReply, ProtocolError, SettingError

READ_COILS = 0x01
READ_DISCRETE_INPUTS = 0x02
READ_HOLDING_REGISTERS = 0x03
READ_INPUT_REGISTERS = 0x04
#: register_type -> function code.
READ_FUNCTIONS = {
    "coil": READ_COILS,
    "discrete": READ_DISCRETE_INPUTS,
    "holding": READ_HOLDING_REGISTERS,
    "input": READ_INPUT_REGISTERS,
}
BIT_FUNCTIONS = frozenset({READ_COILS, READ_DISCRETE_INPUTS})
BIT_TYPES = ("coil", "discrete")
MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000
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


def validate_unit(unit: int) -> None:
    """Unicast addresses only: 0 is broadcast (never answered), 248-255 reserved."""
    if not 1 <= unit <= 247:
        raise SettingError(f"unit {unit} is not a Modbus unicast address (1..247)")


def max_count(function: int) -> int:
    return MAX_READ_BITS if function in BIT_FUNCTIONS else MAX_READ_REGISTERS


def data_bytes(function: int, count: int) -> int:
    """Bytes of data in the reply to a read of ``count`` items."""
    return (count + 7) // 8 if function in BIT_FUNCTIONS else 2 * count


def pack_bits(bits: Sequence[int]) -> bytes:
    """Bits as FC 1/2 carry them: eight to a byte, the first in the lowest bit."""
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def unpack_bits(data: bytes, count: int) -> tuple[int, ...]:
    return tuple((data[i // 8] >> (i % 8)) & 1 for i in range(count))


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """A read of ``count`` items (registers or bits) from 0-based ``address`` (FC 1-4)."""

    unit: int
    function: int
    address: int
    count: int

    def __post_init__(self) -> None:
        validate_unit(self.unit)
        if self.function not in READ_FUNCTIONS.values():
            raise SettingError(f"function {self.function:#04x} is not a read (1, 2, 3 or 4)")
        limit = max_count(self.function)
        if not 1 <= self.count <= limit:
            raise SettingError(f"read count {self.count} is outside 1..{limit}")
        if self.address < 0 or self.address + self.count > 0x10000:
            raise SettingError(f"addresses {self.address}..+{self.count} exceed 0..65535")

    @property
    def data_bytes(self) -> int:
        return data_bytes(self.function, self.count)

    def pdu(self) -> bytes:
        return struct.pack(">BHH", self.function, self.address, self.count)

    def decode_reply(self, pdu: bytes) -> ReadResponse:
        """The whole reply PDU to this request -> its response.

        Raises :class:`ModbusExceptionReply` for an exception PDU and
        :class:`ProtocolError` for a PDU that does not answer this request.
        """
        if not pdu:
            raise ProtocolError("empty reply PDU")
        if pdu[0] == self.function | EXCEPTION_BIT:
            if len(pdu) != 2:
                raise ProtocolError(f"exception reply PDU {_hex(pdu)} is not 2 bytes")
            raise ModbusExceptionReply(self.unit, self.function, pdu[1])
        if pdu[0] != self.function:
            raise ProtocolError(f"reply with function {pdu[0]:#04x}, expected {self.function:#04x}")
        if len(pdu) < 2 or pdu[1] != self.data_bytes or len(pdu) != 2 + self.data_bytes:
            raise ProtocolError(
                f"reply PDU {_hex(pdu)} does not carry the {self.data_bytes} data bytes asked for"
            )
        return ReadResponse(self.unit, self.function, self.decode_data(pdu[2:]))

    def decode_data(self, data: bytes) -> tuple[int, ...]:
        """The data bytes of a reply -> register words, or bits (0/1) for FC 1/2."""
        if self.function in BIT_FUNCTIONS:
            return unpack_bits(data, self.count)
        return struct.unpack(f">{self.count}H", data)


@dataclass(frozen=True, slots=True)
class ReadResponse:
    """``values``: register words, or bits (0/1) for FC 1/2."""

    unit: int
    function: int
    values: tuple[int, ...]

    @property
    def registers(self) -> tuple[int, ...]:
        return self.values

    def pdu(self) -> bytes:
        if self.function in BIT_FUNCTIONS:
            data = pack_bits(self.values)
        else:
            data = struct.pack(f">{len(self.values)}H", *self.values)
        return bytes((self.function, len(data))) + data


@dataclass(frozen=True, slots=True)
class ExceptionResponse:
    unit: int
    function: int  # the function that failed, without the exception bit
    code: int

    def pdu(self) -> bytes:
        return bytes((self.function | EXCEPTION_BIT, self.code))

    def to_error(self) -> ModbusExceptionReply:
        return ModbusExceptionReply(self.unit, self.function, self.code)


# Device side ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnsupportedRequest:
    """A well-formed request the device must refuse with ``code``."""

    unit: int
    function: int
    code: int

    def reply(self) -> ExceptionResponse:
        return ExceptionResponse(self.unit, self.function, self.code)


def parse_request(unit: int, pdu: bytes) -> ReadRequest | UnsupportedRequest:
    """A request PDU as a device sees it: a read it can serve, or what to refuse."""
    function = pdu[0]
    if function not in READ_FUNCTIONS.values():
        return UnsupportedRequest(unit, function, 0x01)
    if len(pdu) != 5:
        return UnsupportedRequest(unit, function, 0x03)
    address, count = struct.unpack(">HH", pdu[1:5])
    if not 1 <= count <= max_count(function):
        return UnsupportedRequest(unit, function, 0x03)
    if address + count > 0x10000:
        return UnsupportedRequest(unit, function, 0x02)
    return ReadRequest(unit, function, address, count)


# Values --------------------------------------------------------------------


def check_layout(data_type: str, word_order: str, byte_order: str) -> None:
    if data_type not in REGISTER_COUNT:
        raise SettingError(f"data_type {data_type!r} is not one of {', '.join(REGISTER_COUNT)}")
    for name, order in (("word_order", word_order), ("byte_order", byte_order)):
        if order not in ("big", "little"):
            raise SettingError(f"{name} {order!r} is not 'big' or 'little'")


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

    def slice(self, values: Sequence[int], address: int, count: int) -> tuple[int, ...]:
        start = address - self.request.address
        return tuple(values[start : start + count])


def plan_reads(
    spans: Iterable[tuple[int, int, int, int]], max_registers: int = MAX_READ_REGISTERS
) -> list[ReadBlock]:
    """Merge ``(unit, function, address, count)`` spans into as few reads as fit.

    Spans of one unit and function that touch or overlap share a request, up to
    ``max_registers`` items (some devices accept fewer than the protocol's 125).
    Addresses between two spans are never read: a gap may be a hole the device
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
