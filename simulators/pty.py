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
import tty
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class VirtualPort:
    def __init__(self, on_data: Callable[[bytes], None], link: Path | None = None) -> None:
        self._on_data = on_data
        self.link = link
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

    def plug(self) -> None:
        """Create the pty (raw, non-blocking) and point the link at it."""
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
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
