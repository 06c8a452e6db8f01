"""WebSocket frames as bytes, built once for every client that takes the same form:
RFC 6455 text frames, RFC 7692 per-message deflate, the ``type``/``timestamp``/``seq``
header of every message. No I/O: gateway/api/hub.py writes them.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

from gateway.timestamps import utc_timestamp


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def text_frame(payload: bytes, *, compressed: bool = False) -> bytes:
    """A whole, unmasked server-to-client text frame (RFC 6455, section 5.2)."""
    return _frame(0xC0 | OP_TEXT if compressed else 0x80 | OP_TEXT, payload)  # FIN (RSV1)


def close_frame(code: int, reason: str = "") -> bytes:
    """A Close frame: the status code, then at most 123 bytes of UTF-8 reason."""
    return _frame(0x80 | OP_CLOSE, struct.pack("!H", code) + _utf8_prefix(reason, 123))


def ping_frame(payload: bytes = b"") -> bytes:
    return _frame(0x80 | OP_PING, payload[:125])


def pong_frame(payload: bytes) -> bytes:
    """The answer to a Ping: its own payload back (a control frame holds at most 125)."""
    return _frame(0x80 | OP_PONG, payload[:125])


def _utf8_prefix(text: str, limit: int) -> bytes:
    """``text`` in UTF-8, cut to ``limit`` bytes without splitting a character."""
    return text.encode(errors="replace")[:limit].decode(errors="ignore").encode()


def _frame(first: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


def deflate(payload: bytes, window_bits: int) -> bytes:
    """A permessage-deflate payload (RFC 7692) that needs no earlier message to inflate.

    Every frame is compressed on its own, so one compressed frame serves every
    client: a receiver may keep its window, the sender need not use it.
    """
    compressor = zlib.compressobj(6, zlib.DEFLATED, -max(9, min(15, window_bits)))
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(b"\x00\x00\xff\xff") else data


def frame_of(message: Mapping[str, Any], channel: str | None, window_bits: int) -> bytes:
    """``message`` in the form one client takes: tagged and/or compressed."""
    payload = encode({**message, "channel": channel} if channel is not None else message)
    if window_bits:
        return text_frame(deflate(payload, window_bits), compressed=True)
    return text_frame(payload)


def stamp(message: Mapping[str, Any], seq: int | None = None) -> dict[str, Any]:
    """``type`` and ``timestamp`` first, then ``seq`` if given, then the rest."""
    stamped: dict[str, Any] = {"type": message["type"], "timestamp": utc_timestamp()}
    if seq is not None:
        stamped["seq"] = seq
    stamped.update((k, v) for k, v in message.items() if k != "type")
    return stamped
