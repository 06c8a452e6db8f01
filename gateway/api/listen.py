"""Where the server listens: ``server.host`` -> the sockets it binds.

``"localhost"`` means both loopbacks, 127.0.0.1 and ::1 (clients such as recent
Node try ::1 first); on a machine without an IPv6 loopback, 127.0.0.1 alone, said
in one log line. A list binds each address; every address gets the same port
(with port 0, the one the first address was given).
"""

from __future__ import annotations

import errno
import logging
import os

from aiohttp import web

from drivers.errors import GatewayError

log = logging.getLogger("gateway")
LOCALHOST = ("127.0.0.1", "::1")


class ListenError(GatewayError, OSError):
    """An address that cannot be bound; ``where`` names it (``[::1]:8000``)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"cannot listen on {where}: {reason}")
        self.where, self.reason = where, reason


def addresses(host: str | list[str]) -> list[str]:
    """The addresses ``server.host`` names, in binding order, without repeats."""
    names = [host] if isinstance(host, str) else host
    out: list[str] = []
    for name in names:
        for address in LOCALHOST if name == "localhost" else (name,):
            if address not in out:
                out.append(address)
    return out


def where(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


async def listen(
    runner: web.AppRunner, host: str | list[str], port: int, *, backlog: int = 128
) -> list[str]:
    """Bind every address of ``host``; return what is bound (``127.0.0.1:8000``...).

    Raises ListenError naming the first address that cannot be bound. The implicit ::1
    of ``"localhost"`` is left out, with one log line, when the machine has no IPv6.
    """
    implicit = "localhost" in ([host] if isinstance(host, str) else host)
    bound: list[str] = []
    for address in addresses(host):
        site = web.TCPSite(runner, address, port, backlog=backlog)
        try:
            await site.start()
        except OSError as exc:
            if implicit and address == "::1" and exc.errno != errno.EADDRINUSE:
                log.info("no IPv6 loopback here: listening on 127.0.0.1 only")
                continue
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(where(address, port), reason) from exc
        if port == 0:  # the others get the port the first was given
            port = _port_of(runner, address)
        bound.append(where(address, port))
    return bound


def _port_of(runner: web.AppRunner, address: str) -> int:
    for sockname in runner.addresses:
        if sockname[0] == address:
            return int(sockname[1])
    raise LookupError(address)
