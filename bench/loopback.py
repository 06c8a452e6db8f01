"""Servers on loopback for the benchmarks, the soak and the tests: a free port to listen
on, and a real Mosquitto.

The tests import this too (bench code does not import from tests/), so that one place
chooses ports and starts the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import shutil
import socket
from pathlib import Path

from bench import procstat

#: Below Linux's ephemeral range (32768-60999): a port chosen here is never taken, between
#: choosing it and listening on it, by an outgoing connection of another process.
PORTS = range(20000, 32000)
LOOPBACK = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """A loopback port nothing listens on now (IPv4 and IPv6), for a process to listen on."""
    while True:
        port = random.choice(PORTS)
        if all(_bindable(family, host, port) for family, host in LOOPBACK):
            return port


def _bindable(family: socket.AddressFamily, host: str, port: int) -> bool:
    """False only if something holds the port (a host without IPv6 does not count)."""
    try:
        with socket.socket(family) as probe:
            probe.bind((host, port))
    except OSError as exc:
        return exc.errno != errno.EADDRINUSE
    return True


def mosquitto_installed() -> bool:
    return Path(MOSQUITTO).exists()


class Broker:
    """Mosquitto on a free port of 127.0.0.1, with persistence in ``directory``, so that it
    can be stopped and started like a site's broker (a subscriber's session, and what is
    queued for it, outlive a restart). It dies with the process that started it."""

    START_TIMEOUT = 10.0  # s for it to accept connections
    STOP_TIMEOUT = 5.0  # s after SIGTERM before it is killed

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nlog_dest none\n"
            f"persistence true\npersistence_location {directory}/\n"
            "max_queued_messages 100000\n"
        )
        self.process: asyncio.subprocess.Process | None = None

    @property
    def argv(self) -> list[str]:
        """The command that runs it (for a caller that starts it another way)."""
        return [MOSQUITTO, "-c", str(self.config)]

    async def start(self) -> None:
        """Start it, and return once it accepts connections."""
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, preexec_fn=procstat.die_with_parent,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(self.START_TIMEOUT):
            while True:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
                    return
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """SIGTERM (it saves its persistence file), then kill if it has not exited."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(self.STOP_TIMEOUT):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
