"""``sensor-gateway run --simulate`` as a child process for a benchmark: started on a
free port in a data dir of its own, and stopped however the benchmark ended."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import tempfile
from collections.abc import AsyncIterator

from bench import procstat
from bench.fanout_procs import child_env

LISTENING = re.compile(rb"on http://[^:]+:(\d+)")


@contextlib.asynccontextmanager
async def simulated_gateway() -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """The running gateway and the port it listens on (after its banner)."""
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "run", "--simulate", "--port", "0",
            "--data-dir", tmp, "--log-level", "WARNING",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            cwd=tmp, env=child_env(), preexec_fn=procstat.die_with_parent,
        )  # fmt: skip
        try:
            yield proc, await asyncio.wait_for(listening_port(proc), 60)
        finally:
            await stop(proc)


async def listening_port(proc: asyncio.subprocess.Process) -> int:
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        if found := LISTENING.search(line):
            return int(found.group(1))
    raise RuntimeError("sensor-gateway run --simulate exited before listening")


async def stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM, as systemd would; kill if it has not stopped in 15 s."""
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 15)
    except TimeoutError:
        proc.kill()
        await proc.wait()
