"""A line over TCP: a Modbus TCP device, or a serial server passing RTU frames.

:class:`TcpLine` is a :class:`~drivers.serial_line.SerialLine` that connects
a socket instead of opening a tty, so it keeps everything that class does for
a line: one transaction at a time under one lock, a timeout and retries per
request, flushing stale input, the counters and the frame ring, and, when the
peer closes or the connection fails, reconnecting on a later request with
growing backoff. Its port is ``tcp://HOST:PORT``.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Callable

from drivers.errors import SettingError
from drivers.serial_line import SerialLine

SCHEME = "tcp"


def parse_address(port: str, default_port: int | None = None) -> tuple[str, int]:
    """``tcp://HOST:PORT`` -> (host, port); raises SettingError naming what is wrong.

    ``default_port`` fills in a missing port (502 for Modbus TCP); without it
    the port must be given.
    """
    parts = urllib.parse.urlsplit(port)
    if parts.scheme != SCHEME:
        raise SettingError(f"{port!r} is not a tcp://HOST:PORT address")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise SettingError(f"{port!r}: only tcp://HOST:PORT, nothing after the port")
    try:
        number = parts.port
    except ValueError:
        raise SettingError(f"{port!r}: the port must be a number 1..65535") from None
    if not parts.hostname:
        raise SettingError(f"{port!r} names no host")
    if number is None:
        if default_port is None:
            raise SettingError(f"{port!r} names no port (tcp://HOST:PORT)")
        number = default_port
    if not 1 <= number <= 65535:
        raise SettingError(f"{port!r}: the port must be a number 1..65535")
    return parts.hostname, number


class TcpLine(SerialLine):
    """Owns one TCP connection. ``baudrate`` and ``echo`` do not apply."""

    def __init__(
        self,
        port: str,
        *,
        default_port: int | None = None,
        name: str | None = None,
        timeout: float = 1.0,
        retries: int = 2,
        request_gap: float = 0.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        history: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.tcp_port = parse_address(port, default_port)
        super().__init__(
            port,
            name=name,
            timeout=timeout,
            retries=retries,
            request_gap=request_gap,
            reconnect_min=reconnect_min,
            reconnect_max=reconnect_max,
            history=history,
            clock=clock,
        )

    async def _connect(self, receiver: asyncio.Protocol) -> asyncio.Transport:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.timeout):  # an unreachable host must not hang a poll
            transport, _ = await loop.create_connection(lambda: receiver, self.host, self.tcp_port)
        return transport
