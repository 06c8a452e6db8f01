"""A load-client process: thousands of bare WebSocket connections on one epoll loop.

The fan-out benchmark starts two (one per core) and drives each with JSON
commands on stdin; every command gets ``{"event": "done", ...}`` on stdout,
long ones ``{"event": "progress", ...}`` lines first. Commands:

- ``connect``: open ``count`` more connections (``stalled_every``: every k-th never reads
  after the handshake, with a 1 KiB receive buffer);
- ``report``: per window seq, the receipt times of the healthy connections;
- ``storm``: abort every healthy connection at once (RST) and reconnect all with ``?since=``;
- ``unstall``: let the stalled connections read, then tell what reached them;
- ``close``.

Why epoll and not asyncio: a receipt costs one epoll event, one ``recv`` and a
regex match, with no Handle or Future per read, so the clients cost less than
the server they measure. Only what a server sends is parsed: unmasked frames,
text (maybe deflated), ping (answered), close.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import itertools
import json
import os
import random
import re
import select
import socket
import struct
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bench.procstat import die_with_parent

#: A sensor_update's first keys, as the gateway and every baseline write them.
SENSOR_UPDATE = re.compile(rb'\{"type": ?"sensor_update", ?"timestamp": ?"([^"]+)", ?"seq": ?(\d+)')
RECV_SIZE = 1 << 18
STALLED_RCVBUF = 1024
CONNECT_TIMEOUT = 30.0
MAX_ATTEMPTS = 8
POLL_TIMEOUT = 0.02
#: A pause after each busy round, so that one wake-up reads many sockets: without it the
#: process wakes once per receipt and costs more than the server it measures. Receipt
#: times are late by up to this much.
COALESCE = 0.001
DEFLATE_TAIL = b"\x00\x00\xff\xff"

CONNECTING, HANDSHAKE, OPEN, STALLED, CLOSED, IDLE = range(6)


class Conn:
    __slots__ = (
        "attempts",
        "buf",
        "bytes",
        "close_code",
        "compressed",
        "connected_at",
        "first_at",
        "frames",
        "id",
        "inflater",
        "last_seq",
        "port",
        "query",
        "seqs",
        "since",
        "sock",
        "stalled",
        "started",
        "state",
        "times",
    )

    def __init__(self, ident: int, stalled: bool, port: int = 0) -> None:
        self.id = ident
        self.stalled = stalled
        self.port = port
        self.state = IDLE
        self.sock: socket.socket | None = None
        self.buf = b""
        self.seqs: list[int] = []
        self.times: list[float] = []
        self.last_seq = -1
        self.since = -1
        self.query = ""
        self.attempts = 0
        self.started = 0.0
        self.connected_at = 0.0
        self.first_at = 0.0
        self.close_code: int | None = None
        self.inflater: Any = None
        self.bytes = 0
        self.frames = 0
        self.compressed = 0


class LoadClient:
    def __init__(self) -> None:
        self.poller = select.epoll()
        self.by_fd: dict[int, Conn] = {}
        self.conns: list[Conn] = []
        self.published: dict[int, dict[int, float]] = {}  # port -> seq -> publish time
        self.queue: deque[Conn] = deque()
        self.retries: list[tuple[float, Conn]] = []
        self.inflight: set[Conn] = set()
        self.max_inflight = 64
        self.host = "127.0.0.1"
        self.path = "/ws/sensors"
        self.deflate = False
        self.failed = 0
        self.retried = 0
        self.running = True
        self.stdin = b""
        self.pending: Callable[[float], dict[str, Any] | None] | None = None
        self.next_progress = 0.0
        self.next_timeouts = 0.0
        self.connecting: list[Conn] = []  # what a connect command's progress counts
        # One receive buffer for every socket: a fresh 256 KiB bytes per recv() would be an
        # mmap, a page fault and a munmap each time, more than the rest of a receipt.
        self.buffer = bytearray(RECV_SIZE)
        self.view = memoryview(self.buffer)

    # the loop ------------------------------------------------------------------------

    def run(self) -> None:
        os.set_blocking(0, False)
        self.poller.register(0, select.EPOLLIN)
        clock = time.time
        by_fd = self.by_fd
        while self.running:
            events = self.poller.poll(POLL_TIMEOUT)
            for fd, _ in events:
                conn = by_fd.get(fd)
                if conn is None:
                    if fd == 0:
                        self._stdin()
                    continue
                if conn.state == OPEN:
                    self._readable(conn, clock())
                elif conn.state == CONNECTING:
                    self._connected(conn)
                elif conn.state == HANDSHAKE:
                    self._handshake(conn, clock())
            self._tick(clock())
            if events:
                time.sleep(COALESCE)  # let receipts gather: one wake-up serves many

    def _readable(self, conn: Conn, now: float) -> None:
        assert conn.sock is not None
        buffer = self.buffer
        try:
            size = conn.sock.recv_into(buffer)
        except BlockingIOError:
            return
        except OSError:
            size = 0
        if not size:
            self._lost(conn)
        elif not conn.buf and buffer[0] == 0x81 and size > 1 and buffer[1] + 2 == size:
            conn.frames += 1  # the common case: one whole, small, uncompressed text frame
            conn.bytes += size
            self._message(conn, buffer, 2, size, now)
        else:
            self._feed(conn, self.view[:size].tobytes(), now)

    def _tick(self, now: float) -> None:
        if self.retries and self.retries[0][0] <= now:
            due = [c for at, c in self.retries if at <= now]
            self.retries = [(at, c) for at, c in self.retries if at > now]
            self.queue.extend(due)
        while self.queue and len(self.inflight) < self.max_inflight:
            self._start(self.queue.popleft(), now)
        if self.inflight and now >= self.next_timeouts:
            self.next_timeouts = now + 0.5
            for conn in [c for c in self.inflight if now - c.started > CONNECT_TIMEOUT]:
                self._failed(conn, now)
        if self.pending is not None:
            reply = self.pending(now)
            if reply is not None:
                self.pending = None
                self._reply({"event": "done", **reply})
            elif now >= self.next_progress:
                self.next_progress = now + 1.0
                opened = sum(1 for c in self.connecting if c.state in (OPEN, STALLED))
                self._reply({"event": "progress", "open": opened, "connecting": len(self.inflight)})

    # connecting ----------------------------------------------------------------------

    def _start(self, conn: Conn, now: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if conn.stalled:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
        conn.attempts += 1
        conn.started = now
        conn.buf = b""
        conn.sock = sock
        err = sock.connect_ex((self.host, conn.port))
        if err not in (0, errno.EINPROGRESS):
            self._failed(conn, now)
            return
        conn.state = CONNECTING
        self.by_fd[sock.fileno()] = conn
        self.poller.register(sock.fileno(), select.EPOLLOUT)
        self.inflight.add(conn)

    def _connected(self, conn: Conn) -> None:
        assert conn.sock is not None
        if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._failed(conn, time.time())
            return
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path}{conn.query} HTTP/1.1",
            f"Host: {self.host}:{conn.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.deflate:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        if conn.stalled:
            lines.append("X-Bench-Stall: 1")
        try:
            conn.sock.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        except OSError:
            self._failed(conn, time.time())
            return
        conn.state = HANDSHAKE
        self.poller.modify(conn.sock.fileno(), select.EPOLLIN)

    def _handshake(self, conn: Conn, now: float) -> None:
        assert conn.sock is not None
        try:
            data = conn.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._failed(conn, now)
            return
        conn.buf += data
        head, sep, rest = conn.buf.partition(b"\r\n\r\n")
        if not sep:
            return
        if not head.startswith(b"HTTP/1.1 101"):
            self._failed(conn, now)
            return
        lowered = head.lower()
        conn.inflater = zlib.decompressobj(-15) if b"permessage-deflate" in lowered else None
        conn.buf = b""
        conn.state = OPEN
        conn.connected_at = now
        conn.first_at = 0.0
        self.inflight.discard(conn)
        if rest:
            self._feed(conn, rest, now)
        if conn.stalled and conn.state == OPEN:
            conn.state = STALLED
            self.poller.unregister(conn.sock.fileno())

    def _failed(self, conn: Conn, now: float) -> None:
        self._drop(conn)
        if conn.attempts < MAX_ATTEMPTS:
            self.retried += 1
            self.retries.append((now + random.uniform(0.05, 0.25) * conn.attempts, conn))
        else:
            self.failed += 1

    def _lost(self, conn: Conn) -> None:
        self._drop(conn)

    def _drop(self, conn: Conn, *, reset: bool = False) -> None:
        self.inflight.discard(conn)
        sock = conn.sock
        conn.state = CLOSED
        if sock is None:
            return
        self.by_fd.pop(sock.fileno(), None)
        with contextlib.suppress(OSError, ValueError):
            self.poller.unregister(sock.fileno())
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        conn.sock = None

    # frames --------------------------------------------------------------------------

    def _feed(self, conn: Conn, data: bytes, now: float) -> None:
        if conn.buf:
            data = conn.buf + data
            conn.buf = b""
        pos, size = 0, len(data)
        while size - pos >= 2:
            first, length = data[pos], data[pos + 1] & 0x7F
            head = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                head += 2
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head += 8
            end = head + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 1:
                conn.frames += 1
                if first & 0x40 and conn.inflater is not None:
                    conn.compressed += 1
                    payload = conn.inflater.decompress(data[head:end] + DEFLATE_TAIL)
                    self._message(conn, payload, 0, len(payload), now)
                else:
                    self._message(conn, data, head, end, now)
            elif opcode == 9:
                self._send(conn, 0xA, data[head:end])
            elif opcode == 8:
                conn.close_code = int.from_bytes(data[head : head + 2], "big") if length else 1005
                self._send(conn, 0x8, data[head : head + 2])
                self._drop(conn)
                return
            conn.bytes += end - pos
            pos = end
        if pos < size:
            conn.buf = data[pos:]

    def _message(
        self, conn: Conn, data: bytes | bytearray, start: int, end: int, now: float
    ) -> None:
        found = SENSOR_UPDATE.match(data, start, end)
        if found is None:
            return
        seq = int(found.group(2))
        conn.seqs.append(seq)
        conn.times.append(now)
        conn.last_seq = seq
        if not conn.first_at:
            conn.first_at = now
        published = self.published.setdefault(conn.port, {})
        if seq not in published:
            published[seq] = datetime.fromisoformat(found.group(1).decode()).timestamp()

    def _send(self, conn: Conn, opcode: int, payload: bytes) -> None:
        """A masked client frame (pong, close) of at most 125 bytes."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.send(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    # commands ------------------------------------------------------------------------

    def _stdin(self) -> None:
        try:
            chunk = os.read(0, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            self.running = False
            return
        self.stdin += chunk
        while b"\n" in self.stdin:
            line, self.stdin = self.stdin.split(b"\n", 1)
            command = json.loads(line)
            handler = getattr(self, f"cmd_{command.pop('cmd')}")
            handler(**command)

    def _reply(self, message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def cmd_connect(
        self,
        *,
        host: str,
        port: int,
        path: str,
        count: int,
        first_id: int = 0,
        stalled_every: int = 0,
        deflate: bool = False,
        inflight: int = 64,
    ) -> None:
        self.host, self.path, self.deflate = host, path, deflate
        self.max_inflight = inflight
        started, failed_before = time.time(), self.failed
        new = []
        for ident in range(first_id, first_id + count):
            stalled = bool(stalled_every) and ident % stalled_every == stalled_every - 1
            new.append(Conn(ident, stalled, port))
        self.conns.extend(new)
        self.queue.extend(new)
        self.connecting = new

        def done(now: float) -> dict[str, Any] | None:
            if self.queue or self.inflight or self.retries:
                return None
            return {
                "open": sum(1 for c in new if c.state in (OPEN, STALLED)),
                "stalled": sum(1 for c in new if c.stalled and c.state == STALLED),
                "failed": self.failed - failed_before,
                "seconds": now - started,
            }

        self.pending = done

    def cmd_seqs(self, *, port: int) -> None:
        self._reply({"event": "done", "published": self.published.get(port, {})})

    def _of(self, port: int | None) -> list[Conn]:
        return [c for c in self.conns if port is None or c.port == port]

    def cmd_report(
        self,
        *,
        seqs: list[int],
        clear: bool = False,
        span: list[float] | None = None,
        port: int | None = None,
    ) -> None:
        """Receipts of the window's seqs by the healthy connections; with ``span`` (t0, t1),
        also how steadily each was served in it (seqs contiguous, longest silence)."""
        window = set(seqs)
        times: dict[int, list[float]] = {s: [] for s in seqs}
        mine = self._of(port)
        healthy = [c for c in mine if not c.stalled]
        complete = 0
        for conn in healthy:
            seen: set[int] = set()
            for seq, at in zip(conn.seqs, conn.times, strict=True):
                if seq in window and seq not in seen:
                    seen.add(seq)
                    times[seq].append(at)
            complete += len(seen) == len(window)
        reply: dict[str, Any] = {
            "event": "done",
            "healthy": len(healthy),
            "open": sum(1 for c in healthy if c.state == OPEN),
            "complete": complete,
            "times": times,
            "published": {s: self._published(port, s) for s in seqs},
            "frames": sum(c.frames for c in mine),
            "bytes": sum(c.bytes for c in mine),
            "compressed": sum(c.compressed for c in mine),
        }
        if span is not None:
            reply["served"] = [_served(c, span[0], span[1]) for c in healthy]
        self._reply(reply)
        if clear:
            for conn in mine:
                conn.seqs, conn.times = [], []
                conn.frames = conn.bytes = conn.compressed = 0

    def _published(self, port: int | None, seq: int) -> float | None:
        if port is not None:
            return self.published.get(port, {}).get(seq)
        return next((p[seq] for p in self.published.values() if seq in p), None)

    def cmd_storm(
        self, *, since: bool = True, settle: float = 1.5, port: int | None = None
    ) -> None:
        """Every healthy open connection drops at once (RST) and reconnects at once."""
        started = time.time()
        storm = [c for c in self._of(port) if c.state == OPEN and not c.stalled]
        for conn in storm:
            self._drop(conn, reset=True)
            conn.since = conn.last_seq
            conn.query = f"?since={conn.last_seq}" if since and conn.last_seq >= 0 else ""
            conn.attempts = 0
            conn.first_at = 0.0
        self.max_inflight = len(storm) + 1
        self.queue.extend(storm)
        failed_before, retried_before = self.failed, self.retried
        settled_at = 0.0

        def done(now: float) -> dict[str, Any] | None:
            nonlocal settled_at
            if self.queue or self.inflight or self.retries:
                return None
            if not settled_at:
                settled_at = now + settle
            if now < settled_at:
                return None
            return self._storm_report(storm, started, failed_before, retried_before)

        self.pending = done

    def _storm_report(
        self, storm: list[Conn], started: float, failed_before: int, retried_before: int
    ) -> dict[str, Any]:
        back = [c for c in storm if c.state == OPEN]
        gap_free = missing = 0
        for conn in back:
            got = {s for s in conn.seqs if s > conn.since}
            if not got:
                continue
            lost = sum(1 for s in range(conn.since + 1, max(got) + 1) if s not in got)
            gap_free += lost == 0
            missing += lost
        return {
            "clients": len(storm),
            "reconnected": len(back),
            "failed": self.failed - failed_before,
            "retries": self.retried - retried_before,
            "connect": [c.connected_at - started for c in back],
            "first": [c.first_at - started for c in back if c.first_at],
            "gap_free": gap_free,
            "missing": missing,
        }

    def cmd_unstall(self, *, wait: float = 2.0) -> None:
        """The stalled connections read again; after ``wait`` s, what reached each."""
        stalled = [c for c in self.conns if c.stalled]
        for conn in stalled:
            if conn.state == STALLED and conn.sock is not None:
                conn.state = OPEN
                self.poller.register(conn.sock.fileno(), select.EPOLLIN)
        until = time.time() + wait

        def done(now: float) -> dict[str, Any] | None:
            if now < until:
                return None
            return {
                "stalled": [
                    {"seqs": sorted(set(c.seqs)), "close": c.close_code, "open": c.state == OPEN}
                    for c in stalled
                ]
            }

        self.pending = done

    def cmd_close(self) -> None:
        for conn in self.conns:
            self._drop(conn)
        self._reply({"event": "done"})
        self.running = False


def _served(conn: Conn, start: float, end: float) -> tuple[int, bool, float]:
    """Within [start, end]: distinct seqs received, whether they run without a gap, and
    the longest time without a sensor_update (the edges count)."""
    got = [(at, seq) for seq, at in zip(conn.seqs, conn.times, strict=True) if start <= at <= end]
    distinct = sorted({seq for _, seq in got})
    contiguous = bool(distinct) and distinct[-1] - distinct[0] + 1 == len(distinct)
    moments = [start, *(at for at, _ in got), end]
    silence = max(b - a for a, b in itertools.pairwise(moments))
    return len(distinct), contiguous, silence


def main() -> int:
    die_with_parent()
    LoadClient().run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
