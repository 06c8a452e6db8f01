"""A virtual serial port: a pty pair whose device side the simulator speaks on.

The driver opens the pty's slave path (or the stable link to it, as a field
box uses ``/dev/serial/by-id/...``). :meth:`VirtualPort.unplug` makes the port
vanish the way a pulled USB adapter does: the driver's reads fail with EIO and
the link goes away. :meth:`VirtualPort.plug` brings up a new pty behind the
same link, under a new ``/dev/pts/N`` name, as a replugged adapter would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import tty
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

#: termios speed constants -> bits per second.
_SPEEDS = {
    getattr(termios, f"B{rate}"): rate
    for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
    if hasattr(termios, f"B{rate}")
}


class VirtualPort:
    def __init__(
        self,
        on_data: Callable[[bytes], None],
        link: Path | None = None,
        *,
        baudrate: int | None = None,
    ) -> None:
        """``baudrate``: the speed the pty starts at, until a driver sets its own."""
        self._on_data = on_data
        self.link = link
        self._initial_speed = baudrate
        self._master: int | None = None
        self._slave: int | None = None
        self.path: str | None = None

    @property
    def plugged(self) -> bool:
        return self._master is not None

    @property
    def address(self) -> str:
        """What a driver should open: the stable link if there is one."""
        if self.link is not None:
            return str(self.link)
        assert self.path is not None, "port not plugged"
        return self.path

    def baudrate(self) -> int | None:
        """The speed the driver side set on the port, or None if unknown.

        A pty times no bits, but it carries the termios settings the driver
        made, so a device can tell at what speed it is being spoken to.
        """
        if self._slave is None:
            return None
        try:
            return _SPEEDS.get(termios.tcgetattr(self._slave)[5])
        except termios.error:
            return None

    def plug(self) -> None:
        """Create the pty (raw, non-blocking) and point the link at it."""
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        if self._initial_speed is not None:
            attrs = termios.tcgetattr(slave)
            attrs[4] = attrs[5] = getattr(termios, f"B{self._initial_speed}")
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        # Our own slave fd stays open, so the master never reads EIO while no
        # driver has the port open.
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        if self.link is not None:
            self.link.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.path)
            tmp.replace(self.link)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def unplug(self) -> None:
        """The adapter is pulled: pty gone, link gone."""
        if self._master is None:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    close = unplug

    def write(self, data: bytes) -> None:
        """Send bytes toward the driver. A full buffer drops them, like a UART would."""
        if self._master is None:
            return
        try:
            os.write(self._master, data)
        except (BlockingIOError, OSError) as exc:
            log.debug("virtual port %s dropped %d bytes: %s", self.path, len(data), exc)

    def _readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO: the driver side is closed; nothing to read
        if data:
            self._on_data(data)
