"""What a real `sensor-gateway run` tells systemd, read from a real datagram socket."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


class Listener:
    """systemd's side of $NOTIFY_SOCKET."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)

    async def until(self, key: str, timeout: float = 8.0) -> list[str]:
        """Messages up to and including the first that carries ``key`` (``READY=1``)."""
        loop = asyncio.get_running_loop()
        seen: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                message = (await loop.sock_recv(self.sock, 4096)).decode()
                seen.append(message)
                if key in message.splitlines():
                    return seen


@pytest.fixture
def listener() -> Iterator[tuple[Listener, str]]:
    folder = tempfile.mkdtemp(prefix="sd")  # a short path: AF_UNIX allows 107 bytes
    path = os.path.join(folder, "notify")
    listener = Listener(path)
    yield listener, path
    listener.sock.close()
    os.unlink(path)
    os.rmdir(folder)


async def test_ready_watchdog_reloading_and_stopping(
    listener: tuple[Listener, str], tmp_path: Path
) -> None:
    systemd, path = listener
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHDOG_", "NOTIFY_"))}
    env |= {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--simulate", "--port", "0",
        "--data-dir", str(tmp_path / "data"), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        [*_, ready] = await systemd.until("READY=1")
        status = [line for line in ready.splitlines() if line.startswith("STATUS=")]
        assert len(status) == 1
        assert status[0].startswith("STATUS=EMBALSE_01: 4 buses")
        await systemd.until("WATCHDOG=1", timeout=2.0)
        await systemd.until("WATCHDOG=1", timeout=2.0)  # and again: it keeps pinging

        process.send_signal(signal.SIGHUP)
        [*_, reloading] = await systemd.until("RELOADING=1")
        assert any(line.startswith("MONOTONIC_USEC=") for line in reloading.splitlines())
        await systemd.until("READY=1")

        process.send_signal(signal.SIGTERM)
        await systemd.until("STOPPING=1")
        assert await asyncio.wait_for(process.wait(), 9.0) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
