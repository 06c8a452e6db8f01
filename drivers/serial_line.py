"""One serial port, owned by one object: every transaction on it goes through here.

A :class:`SerialLine` serialises requests (one at a time, under a lock), flushes
stale input before each, keeps ``request_gap`` of silence after a reply, skips
an RS-485 adapter's echo, and gives each request its own timeout and retries.
When the port is lost (a USB unplug, EIO) it is closed and opened again by
name on a later request, so a replugged adapter behind a stable
``/dev/serial/by-id/`` link is picked up without a restart. While the path is
absent the line only watches for it (a ``stat`` every ``watch_interval``, see
:meth:`SerialLine.idle`) and reopens the moment it is back; a port that is
there but keeps failing to open (EIO, busy, permission) is retried with
growing backoff instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

import serial
import serial_asyncio_fast

from drivers.errors import DeviceTimeout, DriverError, PortDisconnected, ProtocolError

log = logging.getLogger(__name__)

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")

#: Error kinds counted per bus (also the contract's metric labels).
ERROR_KINDS = ("timeout", "crc", "exception", "garbage", "device_error", "disconnected")


class ReplyParser(Protocol[T_co]):
    """What a codec offers the line: fed bytes, it returns None until the reply is whole."""

    def feed(self, data: bytes) -> T_co | None: ...


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One entry of a line's diagnostic ring: what went out or came in, and when."""

    time: float  # wall clock (time.time())
    direction: Literal["tx", "rx", "drop"]  # drop: stale input flushed before a request
    data: bytes
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "direction": self.direction,
            "hex": self.data.hex(" "),
            "note": self.note,
        }


class _Receiver(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.arrived = asyncio.Event()
        self.lost: Exception | None = None
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("port closed")
        self.closed.set()
        self.arrived.set()

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        self.arrived.clear()
        return data


class SerialLine:
    """Owns one port. Call :meth:`request` from any task; they queue on a lock."""

    def __init__(
        self,
        port: str,
        *,
        name: str | None = None,
        baudrate: int = 9600,
        timeout: float = 1.0,
        retries: int = 2,
        request_gap: float = 0.0,
        echo: bool = False,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        watch_interval: float = 0.1,
        history: int = 100,
        settle: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.name = name or port
        self.baudrate = baudrate
        self.timeout = timeout
        self.retries = retries
        self.request_gap = request_gap
        self.echo = echo
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        #: How often :meth:`idle` looks for an absent port's path.
        self.watch_interval = watch_interval
        self.frames: deque[FrameRecord] = deque(maxlen=history)
        #: Per kind: requests, reconnects (one per reopen), and each of ERROR_KINDS, where
        #: ``disconnected`` counts losses of an open port (one per unplug), not the
        #: requests refused while it is away.
        self.counters: Counter[str] = Counter()
        #: Grows by one on every successful open; devices re-initialise when it changes.
        self.generation = 0
        #: Quiet time awaited before a request that follows a failed one.
        self.settle = settle
        self._unsettled = False
        #: Called with unsolicited input before it is flushed (an EZO's ``*RE``, say).
        self.on_stale: Callable[[bytes], None] | None = None
        self._clock = clock
        self._lock = asyncio.Lock()
        self._transport: asyncio.Transport | None = None
        self._receiver: _Receiver | None = None
        self._last_reply = float("-inf")
        self._backoff = 0.0
        self._next_open = float("-inf")
        self._absent = False
        self._last_problem = "not opened yet"

    @property
    def connected(self) -> bool:
        # A transport being torn down (aborted on a hang-up) is no longer connected, though
        # its connection_lost comes a loop turn later: health must agree with the readings.
        receiver, transport = self._receiver, self._transport
        return (
            receiver is not None
            and not receiver.closed.is_set()
            and transport is not None
            and not transport.is_closing()
        )

    @property
    def absent(self) -> bool:
        """True while the port's path was missing at the last try to open it (unplugged)."""
        return self._absent

    async def open(self) -> None:
        """Open the port now. Raises PortDisconnected naming the port if it cannot."""
        async with self._lock:
            await self._open()

    async def ensure_open(self) -> None:
        """Open the port unless it is open, minding the reconnect backoff.

        Raises PortDisconnected while the port is away. Devices call this before
        comparing :attr:`generation`, to learn whether they must re-initialise.
        """
        async with self._lock:
            await self._ensure_open()

    async def close(self) -> None:
        async with self._lock:
            await self._drop_transport()

    async def idle(self, seconds: float) -> bool:
        """Sleep ``seconds`` between polls; True if cut short: poll now.

        An open port that is lost meanwhile (unplugged) cuts it short, so the loss
        is reported at once; an absent port is looked for every ``watch_interval``
        and cuts it short the moment it is back, so it is reopened at once rather
        than after a backoff.
        """
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        receiver = self._receiver
        if receiver is not None:
            try:
                async with asyncio.timeout_at(until):
                    await receiver.closed.wait()
            except TimeoutError:
                return False
            return True
        while self._absent:
            if self._present():
                return True
            left = until - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(self.watch_interval, left))
        await asyncio.sleep(max(0.0, until - loop.time()))
        return False

    async def request(
        self,
        payload: bytes,
        parser: Callable[[], ReplyParser[T]],
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> T:
        """Send ``payload`` and return what a fresh ``parser()`` makes of the reply.

        Retries (``retries`` more attempts) errors that may pass: a timeout,
        a bad CRC, garbage, a busy device. Raises the last DriverError.
        """
        attempts = 1 + (self.retries if retries is None else retries)
        async with self._lock:
            for attempt in range(attempts):
                try:
                    await self._ensure_open()
                    return await self._transact(payload, parser(), timeout or self.timeout)
                except DriverError as exc:
                    if not isinstance(exc, PortDisconnected):  # counted once per loss instead
                        self.counters[exc.kind] += 1
                    if not exc.retryable or attempt == attempts - 1:
                        raise
                    log.debug("%s: attempt %d failed: %s", self.name, attempt + 1, exc)
                    if exc.retry_after:
                        await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")  # pragma: no cover

    # internals --------------------------------------------------------------

    async def _ensure_open(self) -> None:
        if self.connected:
            return
        if self._transport is not None:
            await self._drop_transport()
            self.counters["disconnected"] += 1  # an open port lost: one per unplug
        # An absent port that is back opens at once; otherwise the backoff stands (it
        # also covers a path that never shows up but opens all the same, a COM3 say).
        if self._absent and self._present():
            self._backoff = 0.0  # back: should it fail now, the backoff starts again small
        elif self._clock() < self._next_open:
            wait = self._next_open - self._clock()
            raise PortDisconnected(self.port, f"{self._last_problem}; next try in {wait:.1f} s")
        await self._open()

    def _present(self) -> bool:
        """Whether the port's path is there now (a stat; a URL port always is)."""
        if urllib.parse.urlparse(self.port).scheme:
            return True  # tcp://, socket://...: never "absent", the backoff applies
        return os.path.exists(self.port)  # a dangling by-id link counts as absent

    async def _connect(self, receiver: asyncio.Protocol) -> asyncio.Transport:
        """Open the port, delivering its input to ``receiver``. Raises what opening raises."""
        options: dict[str, object] = {"baudrate": self.baudrate}
        if not urllib.parse.urlparse(self.port).scheme:
            options["exclusive"] = True  # one owner per port, as on a field box
        transport, _ = await serial_asyncio_fast.create_serial_connection(
            asyncio.get_running_loop(), lambda: receiver, self.port, **options
        )
        return transport

    async def _open(self) -> None:
        receiver = _Receiver()
        # Looked at before the try too: the open runs in a worker thread, and a port
        # replugged while it fails is back by the time it has failed. Absent it was, so
        # idle() finds it at once, instead of the growing backoff of a failing port.
        missing = not self._present()
        try:
            transport = await self._connect(receiver)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._last_problem = f"cannot open: {exc}"
            self._absent = missing or not self._present()  # then idle() watches for it
            self._backoff = min(self.reconnect_max, max(self.reconnect_min, self._backoff * 2))
            self._next_open = self._clock() + self._backoff
            raise PortDisconnected(self.port, self._last_problem) from exc
        self._transport, self._receiver = transport, receiver
        self._absent = False
        self._backoff = 0.0
        self._next_open = float("-inf")
        self.generation += 1
        if self.generation > 1:
            self.counters["reconnects"] += 1
            log.warning("%s: port %s reopened", self.name, self.port)

    async def _drop_transport(self) -> None:
        transport, receiver = self._transport, self._receiver
        self._transport = self._receiver = None
        if transport is None or receiver is None:
            return
        if not receiver.closed.is_set():
            transport.close()
        try:
            # Not wait_for: on 3.11 it loses a cancel that lands as the port closes (the
            # stopping poller would go on polling), where asyncio.timeout keeps it.
            async with asyncio.timeout(2.0):
                await receiver.closed.wait()
        except TimeoutError:
            log.warning("%s: port %s did not close in time", self.name, self.port)
        if isinstance(receiver.lost, Exception) and str(receiver.lost) != "port closed":
            self._last_problem = f"lost: {receiver.lost}"

    async def _transact(self, payload: bytes, parser: ReplyParser[T], timeout: float) -> T:
        receiver, transport = self._receiver, self._transport
        assert receiver is not None
        assert transport is not None
        loop = asyncio.get_running_loop()
        quiet_until = self._last_reply + self.request_gap
        # Yield at least once: input already on its way lands (and is flushed
        # below), and a port that vanished is noticed before we write to it.
        await asyncio.sleep(max(0.0, quiet_until - loop.time()))
        if receiver.closed.is_set() or _hung_up(transport):
            if not transport.is_closing():
                transport.abort()
            self._last_problem = f"lost: {receiver.lost or 'the device hung up'}"
            raise PortDisconnected(self.port, self._last_problem)
        if self._unsettled:
            # The last exchange failed part-way: let a late reply finish arriving
            # so it is not taken for the answer to this request.
            await self._settle(receiver)
        if stale := receiver.take() + _drain(transport):
            self._record("drop", stale, "stale input flushed")
            if self.on_stale is not None:
                self.on_stale(stale)
        self.counters["requests"] += 1
        transport.write(payload)
        self._record("tx", payload)
        echo = payload if self.echo else b""
        received = bytearray()
        deadline = loop.time() + timeout
        try:
            while True:
                data = receiver.take()
                received += data
                if echo and data:
                    data, echo = _strip_echo(data, echo)
                if data and (reply := parser.feed(data)) is not None:
                    self._last_reply = loop.time()
                    self._unsettled = False
                    return reply
                if receiver.closed.is_set():
                    self._last_problem = f"lost: {receiver.lost}"
                    raise PortDisconnected(self.port, self._last_problem)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise DeviceTimeout(f"{self.name}: no complete reply within {timeout:g} s")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await receiver.arrived.wait()
        except DriverError:
            self._unsettled = True
            raise
        finally:
            if received:
                self._record("rx", bytes(received))

    async def _settle(self, receiver: _Receiver) -> None:
        """Wait until the line has been quiet for ``settle`` seconds (bounded by the timeout)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.timeout
        while loop.time() < give_up:
            receiver.arrived.clear()
            try:
                async with asyncio.timeout(self.settle):
                    await receiver.arrived.wait()
            except TimeoutError:
                break
        self._unsettled = False

    def _record(self, direction: Literal["tx", "rx", "drop"], data: bytes, note: str = "") -> None:
        self.frames.append(FrameRecord(time.time(), direction, data, note))


def _drain(transport: asyncio.Transport) -> bytes:
    """Whatever input the kernel holds for the port that the loop has not read yet."""
    port = transport.get_extra_info("serial")
    if not isinstance(getattr(port, "fd", None), int):
        return b""
    try:
        waiting = int(port.in_waiting)
        return bytes(port.read(waiting)) if waiting else b""
    except (serial.SerialException, OSError):
        return b""  # a dead port shows itself on the write that follows


def _hung_up(transport: asyncio.Transport) -> bool:
    """True if the port's descriptor reports a hang-up (an unplugged adapter).

    Checked before each write, so a request never goes to a dead descriptor.
    """
    fd = getattr(transport.get_extra_info("serial"), "fd", None)
    if not isinstance(fd, int):
        return False  # socket:// and other URL ports: the transport reports loss itself
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(
        event & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, event in poller.poll(0)
    )


def _strip_echo(data: bytes, echo: bytes) -> tuple[bytes, bytes]:
    """Remove the expected copy of the request from the front of ``data``."""
    n = min(len(data), len(echo))
    if data[:n] != echo[:n]:
        raise ProtocolError(f"expected the adapter's echo {echo.hex(' ')}, got {data[:n].hex(' ')}")
    return data[n:], echo[n:]
