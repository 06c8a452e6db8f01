"""Modbus TCP codec, sans-I/O: the MBAP header around the shared PDU.

A frame is a 7-byte MBAP header (transaction id, protocol id 0, length of
what follows, unit id) and a PDU (drivers.modbus_pdu); no CRC, TCP checks
the bytes. The length field frames the stream, so :func:`maybe_frame` needs
no knowledge of the PDU; a reply is matched to its request by transaction id
and unit. Garbage raises :class:`ProtocolError` and nothing else: on a TCP
stream a bad header means the framing is lost, so the connection is dropped.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.errors import ProtocolError
from drivers.modbus_pdu import (
    ExceptionResponse,
    ReadRequest,
    ReadResponse,
    UnsupportedRequest,
    parse_request,
)

HEADER = struct.Struct(">HHHB")
HEADER_SIZE = HEADER.size  # 7
PROTOCOL_ID = 0
#: A PDU is at most 253 bytes; the length field counts the unit id too.
MAX_PDU = 253
DEFAULT_PORT = 502


@dataclass(frozen=True, slots=True)
class Frame:
    """One MBAP frame: the header's transaction and unit ids, and the PDU."""

    transaction: int
    unit: int
    pdu: bytes

    def to_bytes(self) -> bytes:
        return HEADER.pack(self.transaction, PROTOCOL_ID, 1 + len(self.pdu), self.unit) + self.pdu


def maybe_frame(buffer: bytearray) -> Frame | None:
    """Take one whole frame off the front of ``buffer``, or None until one is in.

    Raises :class:`ProtocolError` as soon as the header cannot be Modbus TCP
    (a protocol id other than 0, a length outside 2..254).
    """
    if len(buffer) < HEADER_SIZE:
        return None
    transaction, protocol, length, unit = HEADER.unpack_from(buffer)
    if protocol != PROTOCOL_ID:
        raise ProtocolError(f"MBAP protocol id {protocol}, expected 0: {_hex(buffer)}")
    if not 2 <= length <= 1 + MAX_PDU:
        raise ProtocolError(f"MBAP length {length} is outside 2..{1 + MAX_PDU}: {_hex(buffer)}")
    end = HEADER_SIZE - 1 + length
    if len(buffer) < end:
        return None
    pdu = bytes(buffer[HEADER_SIZE:end])
    del buffer[:end]
    return Frame(transaction, unit, pdu)


def encode_request(transaction: int, request: ReadRequest) -> bytes:
    return Frame(transaction, request.unit, request.pdu()).to_bytes()


def encode_reply(transaction: int, reply: ReadResponse | ExceptionResponse) -> bytes:
    return Frame(transaction, reply.unit, reply.pdu()).to_bytes()


class ResponseDecoder:
    """Assembles the reply to one request; :meth:`feed` returns None until it is whole.

    Raises :class:`ModbusExceptionReply` for an exception reply and
    :class:`ProtocolError` for anything that is not the reply asked for
    (another transaction or unit, another function, a wrong byte count).
    """

    def __init__(self, request: ReadRequest, transaction: int) -> None:
        self.request = request
        self.transaction = transaction
        self._buffer = bytearray()

    def feed(self, data: bytes) -> ReadResponse | None:
        self._buffer += data
        frame = maybe_frame(self._buffer)
        if frame is None:
            return None
        if frame.transaction != self.transaction:
            raise ProtocolError(
                f"reply to transaction {frame.transaction}, expected {self.transaction}"
            )
        if frame.unit != self.request.unit:
            raise ProtocolError(f"reply from unit {frame.unit}, expected unit {self.request.unit}")
        if self._buffer:
            raise ProtocolError(f"{len(self._buffer)} bytes after the reply: {_hex(self._buffer)}")
        return self.request.decode_reply(frame.pdu)


class TcpFraming:
    """How a Modbus bus talks MBAP: numbers each request, parses its reply.

    Transaction ids count up from 1 and wrap at 65535, so a late reply to an
    earlier request is never taken for the answer to this one.
    """

    name = "tcp"

    def __init__(self) -> None:
        self._transaction = 0

    def encode(self, request: ReadRequest) -> tuple[bytes, Callable[[], ResponseDecoder]]:
        self._transaction = self._transaction % 0xFFFF + 1
        transaction = self._transaction
        return encode_request(transaction, request), lambda: ResponseDecoder(request, transaction)


# Device side ---------------------------------------------------------------


@dataclass
class RequestDecoder:
    """The device's view: ``(transaction, request)`` pairs out of a TCP stream.

    Raises :class:`ProtocolError` on a header that is not MBAP; a server drops
    the connection then, as the framing cannot be found again. Frames for a
    unit id outside 1..247 are skipped, as no simulated unit lives there.
    """

    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[tuple[int, ReadRequest | UnsupportedRequest]]:
        self._buffer += data
        out: list[tuple[int, ReadRequest | UnsupportedRequest]] = []
        while (frame := maybe_frame(self._buffer)) is not None:
            if not 1 <= frame.unit <= 247:
                continue  # no unit of ours answers there (0 and 255 name "the device itself")
            out.append((frame.transaction, parse_request(frame.unit, frame.pdu)))
        return out


def _hex(data: bytes | bytearray) -> str:
    return bytes(data[:32]).hex(" ") + (" ..." if len(data) > 32 else "")
