"""The gateway as a real process, the way a field box or a relay host runs it."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.loopback import free_port

__all__ = ["GatewayProcess", "free_port"]


class GatewayProcess:
    """``sensor-gateway <command> -c CONFIG ARGS``, run in the config's folder.

    Its stderr goes to ``<command>.log`` there (:meth:`log`). :meth:`start` is
    :meth:`launch`, then :meth:`announced`, which waits for the banner (the first line
    on stdout) and takes the server's URL from it; :meth:`stop` sends a signal and
    waits for the exit.
    """

    def __init__(
        self, config: Path, *, command: str = "run", args: Sequence[str] = ("--simulate",)
    ) -> None:
        self.config, self.command, self.args = config, command, list(args)
        self.cwd = config.parent
        self.log_path = self.cwd / f"{command}.log"  # read it when a test fails
        self.url = ""
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 9.0) -> None:
        await self.launch()
        await self.announced(timeout)

    async def launch(self) -> None:
        """Start the process, without waiting for anything."""
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", self.command, "-c", str(self.config),
                *self.args, cwd=self.cwd, stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip

    async def announced(self, timeout: float = 9.0) -> None:
        """Wait for the banner and take the URL from it."""
        assert self.process is not None
        assert self.process.stdout is not None
        banner = (await asyncio.wait_for(self.process.stdout.readline(), timeout)).decode()
        assert " on http://" in banner, f"no banner; see {self.log_path}"
        self.url = banner.split(" on ", 1)[1].split()[0]

    def log(self) -> str:
        """What it has written to stderr so far."""
        return self.log_path.read_text(errors="replace")

    async def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)
            await asyncio.wait_for(self.process.wait(), 9.0)
        return self.process.returncode if self.process else None
