"""Fan-out: the one place that sends messages to WebSocket clients.

A message is encoded to JSON and framed as a WebSocket text frame once, then
the same bytes go to every client that takes that form of it (with or without
a ``channel`` key, compressed or not: at most four forms, each built once and
only if some client wants it). ``publish`` never awaits a client: a client
whose socket keeps up gets the frame written straight to its transport; one
that is behind (its transport paused at the high-water mark) gets the frame in
a small queue of its own, drained by its own writer task. So a client that
stalls costs the others nothing.

What waits for a slow client is bounded: frames published with a ``conflate``
key keep only the newest per key (sensor readings: only the latest matters);
other frames (alert news) queue up to ``limit``, and a client over the limit,
or whose socket has not moved for ``stall_timeout`` seconds, is cut off with
close code 4008.

Why it writes to aiohttp's transport itself
-------------------------------------------
Going through ``WebSocketResponse.send_str`` costs a JSON encode, a frame build
and a compress per client, plus a coroutine per send. Here a frame is built once
and written with ``transport.write`` to every ready client, as the benchmark's
floor does; docs/scaling.md ("Where the bytes and the microseconds of a WebSocket
client go", and the "WebSocket fan-out, CPU" row against the floor) shows the
cost per delivery at that floor, the socket write itself taking nearly all of it.

What it relies on
-----------------
Only an ``asyncio.Transport``: the connection's socket, taken over from aiohttp after
the handshake (gateway/api/websocket.py, takeover.py). The Client is that
transport's protocol; it passes what the peer sends to the connection's
receiver. Every frame the hub deflates (gateway/api/frames.py) stands alone
(``Z_SYNC_FLUSH``, no shared context), so any RFC 7692 client decodes it whatever
window it keeps. Control frames (pings, pongs, the close frame) are written to the
same transport, whole frames at a time, so they never split one of the hub's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.api.frames import encode, frame_of, stamp, text_frame

log = logging.getLogger("gateway.hub")  # the name logs were filtered by

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_SLOW = 4008
STREAMS = ("alerts", "sensors")
Variant = tuple[bool, int]  # (tagged with its channel, deflate window bits or 0)


class Receiver(Protocol):
    """Who hears what the peer sends: the connection (gateway/api/connection.py)."""

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> bool | None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...


class Group:
    """The clients of one stream that take one form of its frames.

    ``ready`` holds the transports of those that keep up (not behind, not
    paused, not closed): a publish writes to them with nothing else per client,
    as the floor does. The others are in ``behind`` and go through
    :meth:`Client.send`. Clients move between the two themselves.
    """

    __slots__ = ("behind", "clients", "ready")

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.ready: dict[Client, asyncio.Transport] = {}
        self.behind: set[Client] = set()


class Client(asyncio.Protocol):
    """The sending side of one connection. :meth:`send` never blocks.

    It is the transport's protocol (it passes what the peer sends on to its
    receiver), so that it hears at once when the socket's buffer goes over its
    high-water mark and back: then it leaves, and rejoins, the ready lists of its
    groups. Slotted and lean: a gateway holds thousands of
    these. The queue exists only while the client is behind.
    """

    __slots__ = (
        "_closed",
        "_cut_off",
        "_drained",
        "_groups",
        "_on_late_write",
        "_paused",
        "_pending",
        "_writer",
        "limit",
        "name",
        "receiver",
        "stall_timeout",
        "transport",
        "window_bits",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        *,
        receiver: Receiver | None,
        cut_off: Callable[[int, str], None],
        paused: bool = False,
        limit: int = 256,
        stall_timeout: float = 10.0,
        window_bits: int = 0,
        on_late_write: Callable[[float], None] | None = None,
        name: str = "client",
    ) -> None:
        self.transport = transport
        self.name = name
        self.limit = limit
        self.stall_timeout = stall_timeout
        #: Negotiated permessage-deflate window (0: the client takes plain frames).
        self.window_bits = window_bits
        self._closed = transport.is_closing()
        #: Who hears what the peer sends (None once the connection is lost).
        self.receiver = receiver
        #: True while the socket's buffer is over its high-water mark.
        self._paused = paused
        self._drained: asyncio.Future[None] | None = None
        self._cut_off = cut_off
        self._on_late_write = on_late_write
        self._pending: deque[tuple[str | None, bytes, float]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._groups: list[Group] = []
        transport.set_protocol(self)

    @property
    def pending(self) -> int:
        return len(self._pending) if self._pending else 0

    @property
    def ready(self) -> bool:
        """Frames go straight to the socket: nothing queued, not paused, not closed."""
        return self._pending is None and not self._closed and not self._paused

    @property
    def closed(self) -> bool:
        """No more frames for this client (cut off, or its connection is going)."""
        return self._closed

    @closed.setter
    def closed(self, value: bool) -> None:
        """Set by whoever closes the connection: the client leaves the ready lists at once,
        so nothing follows a close frame."""
        self._closed = value
        self._moved()

    # the transport's events, passed on ----------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.receiver is not None:
            self.receiver.data_received(data)

    def eof_received(self) -> bool | None:
        return self.receiver.eof_received() if self.receiver is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake(ConnectionResetError("connection lost"))
        receiver, self.receiver = self.receiver, None  # it points back here
        if receiver is not None:
            receiver.connection_lost(exc)
        _unhook(self.transport)

    def pause_writing(self) -> None:
        self._paused = True
        self._moved()

    def resume_writing(self) -> None:
        self._paused = False
        self._moved()
        self._wake()

    def _wake(self, exc: Exception | None = None) -> None:
        """End a wait for the socket to drain: it did, or it is gone (``exc``)."""
        waiter, self._drained = self._drained, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    async def _drain(self) -> None:
        """Wait while the socket's buffer is over its high-water mark."""
        if self.transport.is_closing():
            raise ConnectionResetError("connection closing")
        if self._paused:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    # groups ---------------------------------------------------------------------------

    def join(self, group: Group) -> None:
        group.clients.add(self)
        self._groups.append(group)
        self._place(group)

    def leave(self, group: Group) -> None:
        if self in group.clients:
            group.clients.discard(self)
            group.ready.pop(self, None)
            group.behind.discard(self)
            self._groups.remove(group)

    def _place(self, group: Group) -> None:
        if self.ready:
            group.ready[self] = self.transport
            group.behind.discard(self)
        else:
            group.ready.pop(self, None)
            group.behind.add(self)

    def _moved(self) -> None:
        for group in self._groups:
            self._place(group)

    # sending --------------------------------------------------------------------------

    def send(self, frame: bytes, conflate: str | None = None) -> None:
        """Write ``frame`` now if the socket keeps up, else queue it (bounded)."""
        if self._pending is None and not self._closed and not self._paused:
            self.transport.write(frame)
            return
        if self.closed:
            return
        if self.transport.is_closing():
            self.closed = True
            return
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
            self._moved()
        if conflate is not None:
            for index, (key, _, _) in enumerate(pending):
                if key == conflate:
                    del pending[index]
                    break
        elif sum(key is None for key, _, _ in pending) >= self.limit:
            self.drop(f"more than {self.limit} messages pending")
            return
        pending.append((conflate, frame, time.perf_counter()))
        if self._writer is None:
            self._writer = asyncio.create_task(
                self._write_pending(), name=f"hub.{self.name}.writer"
            )

    def drop(self, reason: str) -> None:
        """Cut the client off (4008) and forget what it had pending."""
        if self.closed:
            return
        self._pending = None
        self.closed = True
        log.warning("[WebSocket] %s cut off: %s", self.name, reason)
        self._cut_off(CLOSE_TOO_SLOW, reason)

    def close(self) -> None:
        """Stop the writer task (the connection is going away) and let go of the callbacks
        given at start, which point back at the connection: without that the two would
        live on in a reference cycle until a full collection."""
        self._pending = None
        self.closed = True
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
        self._cut_off = _gone
        self._on_late_write = None
        self.receiver = None

    async def _write_pending(self) -> None:
        try:
            while self._pending and not self.closed:
                must_deliver = any(key is None for key, _, _ in self._pending)
                try:
                    async with asyncio.timeout(self.stall_timeout if must_deliver else None):
                        await self._drain()
                except TimeoutError:
                    self.drop(f"its socket has not moved for {self.stall_timeout:g} s")
                    return
                except ConnectionError:
                    self.closed = True
                    return
                while self._pending and not self._paused and not self.closed:
                    _, frame, queued_at = self._pending.popleft()
                    self.transport.write(frame)
                    if self._on_late_write is not None:
                        self._on_late_write(time.perf_counter() - queued_at)
            if not self._pending:
                self._pending = None  # caught up: back to writing straight through
                self._moved()
        finally:
            self._writer = None


def _unhook(transport: asyncio.Transport) -> None:
    """Let a lost connection's transport go with its last reference, not at a full collection.

    asyncio's socket transports (3.11) keep a bound method of their own for reading
    (transport -> ``_read_ready_cb`` -> transport); once the connection is lost nothing
    reads any more, so that reference can go.
    """
    if getattr(transport, "_read_ready_cb", None) is not None:
        transport._read_ready_cb = None  # type: ignore[attr-defined]


def _gone(code: int, reason: str) -> None:
    """A closed client's cut-off: nothing left to cut."""


@dataclass
class Stream:
    """One broadcast stream: its clients, its seq, and the recent news for replay."""

    name: str
    history: deque[tuple[int, dict[str, Any], bytes]]
    #: The seq of the last news delivered: what a client can have seen (``initial``,
    #: ``X-Seq``, replay and long polls go by it).
    seq: int = 0
    #: The seq last given out by :meth:`Hub.prepare`; ahead of ``seq`` while an alert
    #: change is being stored before it is delivered.
    prepared: int = 0
    groups: dict[Variant, Group] = field(default_factory=dict)
    _news: asyncio.Future[None] | None = None

    @property
    def clients(self) -> set[Client]:
        return set().union(*(g.clients for g in self.groups.values()))

    def since(self, seq: int, variant: Variant = (False, 0)) -> list[bytes] | None:
        """The frames after ``seq``, or None where they are no longer all held."""
        if seq > self.seq:
            return None  # from before a restart: this seq means nothing now
        if seq == self.seq:
            return []
        if not self.history or self.history[0][0] > seq + 1:
            return None
        tagged, bits = variant
        return [
            frame if variant == (False, 0) else frame_of(msg, self.name if tagged else None, bits)
            for s, msg, frame in self.history
            if s > seq
        ]

    async def news_after(self, seq: int) -> None:
        """Return once the stream's seq is past ``seq`` (for long polls)."""
        while self.seq <= seq:
            if self._news is None or self._news.done():
                self._news = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._news)

    def announce(self) -> None:
        if self._news is not None and not self._news.done():
            self._news.set_result(None)


class Hub:
    """Streams by name; ``publish`` frames a message once per form and offers it to all."""

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
        return len(set().union(*(s.clients for s in self.streams.values())))

    def publish(
        self,
        stream: str,
        message: dict[str, Any],
        *,
        news: bool = True,
        conflate: str | None = None,
    ) -> dict[str, Any]:
        """Stamp, encode and frame ``message``, then offer it to every client.

        News (``update``, ``dismissed``, ``sensor_update``) gets the stream's next
        ``seq`` and is kept for replay; heartbeats are not news.
        """
        stamped = self.prepare(stream, message) if news else stamp(message)
        self.deliver(stream, stamped, news=news, conflate=conflate)
        return stamped

    def prepare(
        self, stream: str, message: dict[str, Any], seq: int | None = None
    ) -> dict[str, Any]:
        """Give news its seq (the next one, or ``seq`` when relaying another's) and stamp it.

        Split from :meth:`deliver` so the message can be stored before anyone hears it.
        """
        target = self.streams[stream]
        target.prepared = max(target.prepared, target.seq) + 1 if seq is None else seq
        return stamp(message, target.prepared)

    def deliver(
        self,
        stream: str,
        stamped: dict[str, Any],
        *,
        news: bool = True,
        conflate: str | None = None,
    ) -> None:
        """Frame a prepared message once per form and offer it to every client."""
        target = self.streams[stream]
        plain = text_frame(encode(stamped))
        if news:
            target.history.append((stamped["seq"], stamped, plain))
            target.seq = stamped["seq"]
        started = time.perf_counter()
        sent = 0
        for (tagged, bits), group in target.groups.items():
            if not group.clients:
                continue
            frame = (
                plain
                if not (tagged or bits)
                else frame_of(stamped, stream if tagged else None, bits)
            )
            behind = tuple(group.behind)  # before the writes: one that pauses now has it
            # Copied: a write that fills a socket's buffer moves its client to `behind`.
            for transport in tuple(group.ready.values()):
                transport.write(frame)
            for client in behind:
                client.send(frame, conflate)
            sent += len(group.clients)
        if news:
            target.announce()
        if self._on_publish is not None:
            self._on_publish(stream, sent, time.perf_counter() - started)

    def attach(
        self, stream: str, client: Client, opening: Iterable[bytes], *, tagged: bool = False
    ) -> None:
        """Send ``opening`` frames and subscribe, with no await in between (no gap)."""
        for frame in opening:
            client.send(frame)
        variant = (tagged, client.window_bits)
        client.join(self.streams[stream].groups.setdefault(variant, Group()))

    def detach(self, stream: str, client: Client) -> None:
        for group in self.streams[stream].groups.values():
            client.leave(group)

    def subscribed(self, stream: str, client: Client) -> bool:
        return any(client in group.clients for group in self.streams[stream].groups.values())
