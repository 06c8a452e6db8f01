"""systemd's notify protocol over ``$NOTIFY_SOCKET``, with the standard library only.

A service of ``Type=notify`` (or ``notify-reload``) tells systemd it is ready,
what it is doing, that it is still alive, that it is reloading and that it is
stopping by sending one datagram per message to the AF_UNIX socket named in
``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace). Nothing
here needs libsystemd; every method is a no-op when the variable is unset, so
the gateway calls them unconditionally.

The watchdog is fed by :func:`supervise_watchdog`, which the event loop runs:
a blocked loop stops the pings by itself, and a poller that stops making
progress stops them through the ``alive`` check (see :class:`ProgressCheck`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

#: Used by :class:`ProgressCheck` for a name its ``max_age`` mapping does not list.
DEFAULT_MAX_AGE = 60.0


class Notifier:
    """Sends sd_notify messages. Build it with :meth:`from_environ` at start."""

    def __init__(self, address: str | None) -> None:
        """``address``: the value of ``$NOTIFY_SOCKET`` (None or empty: notify nothing)."""
        self.address = address or None
        self._socket: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines as one datagram. False if not sent (unset or failed).

        A failure is logged once, never raised: supervision must not stop the service.
        """
        if self.address is None:
            return False
        message = "\n".join(assignments).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message, _socket_address(self.address))
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify to %s failed: %s", self.address, exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Call once listening and polling: systemd then counts the start as done."""
        return self.notify("READY=1", *_status(status))

    def status(self, line: str) -> bool:
        """One line shown by ``systemctl status``."""
        return self.notify(*_status(line))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def reloading(self, status: str | None = None) -> bool:
        """Call on SIGHUP before re-reading the config; call :meth:`ready` when done.

        ``MONOTONIC_USEC`` is required by ``Type=notify-reload`` and ignored otherwise.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *_status(status))

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _status(line: str | None) -> list[str]:
    if line is None:
        return []
    return ["STATUS=" + " ".join(line.split())]  # one line: no newline may end the field


def _socket_address(address: str) -> str | bytes:
    if address.startswith("@"):
        return b"\0" + address[1:].encode()  # the abstract namespace
    return address


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of ``$WATCHDOG_USEC``), or None when no watchdog is set.

    ``$WATCHDOG_PID``, when present, must be this process: a child must not feed
    its parent's watchdog.
    """
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid is not None and pid != str(os.getpid())):
        return None
    return usec / 2 / 1_000_000


class ProgressCheck:
    """``alive()`` for the watchdog: true while every watched part made progress lately.

    ``last_progress`` returns, when called, each part's name (a bus, a task) and
    the ``time.monotonic()`` at which it last finished a cycle of work (a poll,
    successful or not: a bus whose probe is unplugged still makes progress; a
    poll that never returns does not). A part is stalled when that time is more
    than its ``max_age`` seconds ago: one number for all, or a mapping per name
    (names it does not list get ``default_max_age``). Parts not yet started should
    report the time they were started.
    """

    def __init__(
        self,
        last_progress: Callable[[], Mapping[str, float]],
        max_age: float | Mapping[str, float],
        *,
        default_max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._last_progress = last_progress
        self._max_age = max_age
        self._default = default_max_age
        self._clock = clock

    def stalled(self) -> list[str]:
        """The names that made no progress within their max age, sorted."""
        now = self._clock()
        return sorted(
            name for name, at in self._last_progress().items() if now - at > self._age(name)
        )

    def __call__(self) -> bool:
        return not self.stalled()

    def _age(self, name: str) -> float:
        if isinstance(self._max_age, Mapping):
            return self._max_age.get(name, self._default)
        return self._max_age


def poll_max_age(*, poll_interval: float, timeout: float, retries: int, requests: int) -> float:
    """How long a healthy bus poller may go between two finished polls, for ProgressCheck.

    Twice its interval plus its worst poll (every request timing out on every
    attempt, each also waiting up to 1 s for an EZO circuit's processing), plus 10 s.
    """
    worst = requests * (1 + retries) * (timeout + 1.0)
    return 2 * (poll_interval + worst) + 10.0


async def supervise_watchdog(
    notifier: Notifier, alive: Callable[[], bool], *, interval: float | None = None
) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds while ``alive()`` is true.

    Run it as a task for the gateway's lifetime and cancel it on stop. ``interval``
    defaults to half of ``$WATCHDOG_USEC``; without a notify socket or a watchdog
    it returns at once. While ``alive()`` is false it sends no ping (systemd then
    kills and restarts the service after ``WatchdogSec``) and says why in STATUS.
    """
    if interval is None:
        interval = watchdog_interval()
    if not notifier.enabled or interval is None:
        return
    healthy = True
    while True:
        if alive():
            notifier.watchdog()
            if not healthy:
                log.warning("watchdog: progress again; pinging systemd again")
            healthy = True
        elif healthy:
            stalled = alive.stalled() if isinstance(alive, ProgressCheck) else []
            what = f"no progress from {', '.join(stalled)}" if stalled else "progress check failed"
            log.error("watchdog: %s; no longer pinging systemd (it restarts the service)", what)
            notifier.status(f"stalled: {what}")
            healthy = False
        await asyncio.sleep(interval)
