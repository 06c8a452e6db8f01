"""A simulated device's TCP side: a listening socket on 127.0.0.1, port 0 by default.

It offers what :class:`simulators.pty.VirtualPort` offers (plug, unplug,
write, address), so a device speaks the same way on a pty or on TCP. Replies
go to the connection that spoke last, as a serial server with one line
behind it would send them. :meth:`TcpPort.unplug` closes the listener and
every connection; :meth:`TcpPort.plug` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)


class TcpPort:
    def __init__(
        self, on_data: Callable[[bytes], None], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._on_data = on_data
        self.host = host
        self.tcp_port = port
        self.link = None  # a socket has no /dev/serial/by-id name
        self._listener: socket.socket | None = None
        self._peers: dict[int, socket.socket] = {}
        #: The connection that spoke last: replies go there; devices key their state by it.
        self.peer: int | None = None

    @property
    def plugged(self) -> bool:
        return self._listener is not None

    @property
    def path(self) -> str | None:
        return self.address if self.plugged else None

    @property
    def address(self) -> str:
        """What a driver should open: ``tcp://127.0.0.1:PORT``."""
        return f"tcp://{self.host}:{self.tcp_port}"

    def baudrate(self) -> int | None:
        """A socket has no line speed: the device always hears (as VirtualPort's None)."""
        return None

    @property
    def connections(self) -> int:
        return len(self._peers)

    def plug(self) -> None:
        """Listen (again, on the same port once one was given out)."""
        if self.plugged:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.tcp_port))
        listener.listen(8)
        listener.setblocking(False)
        self.tcp_port = listener.getsockname()[1]
        self._listener = listener
        asyncio.get_running_loop().add_reader(listener.fileno(), self._accept)

    def unplug(self) -> None:
        """The device is gone: no listener, every connection closed."""
        if self._listener is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._listener.fileno())
        self._listener.close()
        self._listener = None
        for fd in list(self._peers):
            self.drop(fd)

    close = unplug

    def drop(self, fd: int | None = None) -> None:
        """Close one connection (the last speaker's by default), as a device that lost framing."""
        fd = self.peer if fd is None else fd
        if fd is None or (conn := self._peers.pop(fd, None)) is None:
            return
        asyncio.get_running_loop().remove_reader(fd)
        conn.close()
        if self.peer == fd:
            self.peer = None

    def write(self, data: bytes) -> None:
        """Send bytes to the last speaker. A full buffer drops them, like a UART would."""
        conn = self._peers.get(self.peer) if self.peer is not None else None
        if conn is None:
            return
        try:
            conn.send(data)
        except (BlockingIOError, OSError) as exc:
            log.debug("tcp port %s dropped %d bytes: %s", self.address, len(data), exc)

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fd = conn.fileno()
        self._peers[fd] = conn
        asyncio.get_running_loop().add_reader(fd, self._readable, fd)

    def _readable(self, fd: int) -> None:
        conn = self._peers.get(fd)
        if conn is None:
            return
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(fd)  # the client went away
            return
        self.peer = fd
        self._on_data(data)
