"""Fan-out: the one place that sends messages to WebSocket clients.

A message is encoded to JSON and framed as a WebSocket text frame once, then
the same bytes go to every client. ``publish`` never awaits a client: a client
whose socket keeps up gets the frame written straight to its transport; one
that is behind (its transport paused at the high-water mark) gets the frame in
a small queue of its own, drained by its own writer task. So a client that
stalls costs the others nothing.

What waits for a slow client is bounded: frames published with a ``conflate``
key keep only the newest per key (sensor readings: only the latest matters);
other frames (alert news) queue up to ``limit``, and a client over the limit,
or whose socket has not moved for ``stall_timeout`` seconds, is cut off with
close code 4008.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_SLOW = 4008
STREAMS = ("alerts", "sensors")


def utc_timestamp(now: float | None = None) -> str:
    """ISO 8601, UTC, milliseconds, ``Z``: ``2025-11-11T10:30:00.123Z``."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def text_frame(payload: bytes) -> bytes:
    """A whole, unmasked server-to-client text frame (RFC 6455, section 5.2)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


class Client:
    """The sending side of one connection. :meth:`send` never blocks."""

    def __init__(
        self,
        transport: asyncio.Transport,
        *,
        paused: Callable[[], bool],
        drain: Callable[[], Awaitable[None]],
        cut_off: Callable[[int, str], None],
        limit: int = 256,
        stall_timeout: float = 10.0,
        name: str = "client",
    ) -> None:
        self.transport = transport
        self.name = name
        self.limit = limit
        self.stall_timeout = stall_timeout
        self.sent = 0
        self.closed = False
        self._paused = paused
        self._drain = drain
        self._cut_off = cut_off
        self._pending: deque[tuple[str | None, bytes]] = deque()
        self._writer: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def send(self, frame: bytes, conflate: str | None = None) -> None:
        """Write ``frame`` now if the socket keeps up, else queue it (bounded)."""
        if self.closed:
            return
        if self.transport.is_closing():
            self.closed = True
            return
        if not self._pending and not self._paused():
            self.transport.write(frame)
            self.sent += 1
            return
        if conflate is not None:
            for index, (key, _) in enumerate(self._pending):
                if key == conflate:
                    del self._pending[index]
                    break
        elif sum(key is None for key, _ in self._pending) >= self.limit:
            self.drop(f"more than {self.limit} messages pending")
            return
        self._pending.append((conflate, frame))
        if self._writer is None:
            self._writer = asyncio.create_task(
                self._write_pending(), name=f"hub.{self.name}.writer"
            )

    def drop(self, reason: str) -> None:
        """Cut the client off (4008) and forget what it had pending."""
        if self.closed:
            return
        self.closed = True
        self._pending.clear()
        log.warning("[WebSocket] %s cut off: %s", self.name, reason)
        self._cut_off(CLOSE_TOO_SLOW, reason)

    async def close(self) -> None:
        """Stop the writer task (the connection is going away)."""
        self.closed = True
        self._pending.clear()
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_pending(self) -> None:
        try:
            while self._pending and not self.closed:
                must_deliver = any(key is None for key, _ in self._pending)
                try:
                    async with asyncio.timeout(self.stall_timeout if must_deliver else None):
                        await self._drain()
                except TimeoutError:
                    self.drop(f"its socket has not moved for {self.stall_timeout:g} s")
                    return
                except ConnectionError:
                    self.closed = True
                    return
                while self._pending and not self._paused() and not self.closed:
                    _, frame = self._pending.popleft()
                    self.transport.write(frame)
                    self.sent += 1
        finally:
            self._writer = None


@dataclass
class Stream:
    """One broadcast stream: its clients, its seq, and the recent news for replay."""

    name: str
    history: deque[tuple[int, bytes]]
    seq: int = 0
    clients: set[Client] = field(default_factory=set)

    def since(self, seq: int) -> list[bytes] | None:
        """The frames after ``seq``, or None where they are no longer all held."""
        if seq > self.seq:
            return None  # from before a restart: this seq means nothing now
        if seq == self.seq:
            return []
        if not self.history or self.history[0][0] > seq + 1:
            return None
        return [frame for s, frame in self.history if s > seq]


class Hub:
    """Streams by name; ``publish`` frames a message once and offers it to every client."""

    def __init__(
        self,
        *,
        history: int = 1000,
        streams: Iterable[str] = STREAMS,
        on_publish: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.streams = {name: Stream(name, deque(maxlen=history)) for name in streams}
        self._on_publish = on_publish

    @property
    def connections(self) -> int:
        return sum(len(s.clients) for s in self.streams.values())

    def publish(
        self,
        stream: str,
        message: dict[str, Any],
        *,
        news: bool = True,
        conflate: str | None = None,
    ) -> dict[str, Any]:
        """Stamp, encode and frame ``message`` once, then offer it to every client.

        News (``update``, ``dismissed``, ``sensor_update``) gets the stream's next
        ``seq`` and is kept for replay; heartbeats are not news.
        """
        target = self.streams[stream]
        stamped = {"type": message["type"], "timestamp": utc_timestamp()}
        if news:
            target.seq += 1
            stamped["seq"] = target.seq
        stamped.update((k, v) for k, v in message.items() if k != "type")
        frame = text_frame(encode(stamped))
        if news:
            target.history.append((target.seq, frame))
        started = time.perf_counter()
        for client in list(target.clients):
            client.send(frame, conflate)
        if self._on_publish is not None:
            self._on_publish(stream, len(target.clients), time.perf_counter() - started)
        return stamped

    def attach(self, stream: str, client: Client, opening: Iterable[bytes]) -> None:
        """Send ``opening`` frames and subscribe, with no await in between (no gap)."""
        for frame in opening:
            client.send(frame)
        self.streams[stream].clients.add(client)

    def detach(self, stream: str, client: Client) -> None:
        self.streams[stream].clients.discard(client)

    def frame(self, stream: str, message: dict[str, Any], *, seq: bool = False) -> bytes:
        """Frame a message for one client (pong, refresh, initial...), stamped now.

        ``seq=True`` labels it with the stream's latest seq, as ``initial`` is.
        """
        stamped: dict[str, Any] = {"type": message["type"], "timestamp": utc_timestamp()}
        if seq:
            stamped["seq"] = self.streams[stream].seq
        stamped.update((k, v) for k, v in message.items() if k != "type")
        return text_frame(encode(stamped))
