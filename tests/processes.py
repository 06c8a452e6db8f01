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

    Its stderr goes to ``<command>.log`` there. :meth:`start` waits for the banner
    (the first line on stdout) and takes the server's URL from it; :meth:`stop`
    sends a signal and waits for the exit.
    """

    def __init__(
        self, config: Path, *, command: str = "run", args: Sequence[str] = ("--simulate",)
    ) -> None:
        self.config, self.command, self.args = config, command, list(args)
        self.cwd = config.parent
        self.url = ""
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 9.0) -> None:
        log = (self.cwd / f"{self.command}.log").open("ab")  # read it when a test fails
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", self.command, "-c", str(self.config), *self.args,
            cwd=self.cwd, stdout=asyncio.subprocess.PIPE, stderr=log,
        )  # fmt: skip
        log.close()
        assert self.process.stdout is not None
        banner = (await asyncio.wait_for(self.process.stdout.readline(), timeout)).decode()
        assert " on http://" in banner, f"no banner; see {self.cwd / (self.command + '.log')}"
        self.url = banner.split(" on ", 1)[1].split()[0]

    async def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)
            await asyncio.wait_for(self.process.wait(), 9.0)
        return self.process.returncode if self.process else None
