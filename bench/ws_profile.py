"""Where the gateway's CPU goes while it fans out: py-spy on the fan-out benchmark's gateway.

The gateway (``bench.ws_gateway``: ``build_app`` as ``sensor-gateway run
--simulate`` serves it) publishes a sensor_update every 50 ms to ``clients``
load clients on /ws/sensors; ``py-spy record`` samples it (busy samples only)
for ``seconds``. Each sample is charged to the innermost frame that is ours
or the socket write, so the table says how much of the busy time is the
kernel send every server pays (the floor's whole cost) and how much is the
hub's Python around it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import Report, markdown_table, procstat
from bench.fanout_procs import LoadClients, child_env, gateway_config

CLIENTS, QUICK_CLIENTS = 5000, 1000
SECONDS, QUICK_SECONDS = 10, 4
INTERVAL = 0.05
ROOT = Path(__file__).resolve().parent.parent
#: (label, what a frame's text contains), first match wins, innermost frame first.
BUCKETS = (
    ("socket write (transport.write: what the floor does)", "_SelectorSocketTransport.write"),
    ("hub: per-client loop (Hub.deliver)", "Hub.deliver"),
    ("hub: Client.send (clients behind)", "Client.send"),
    ("hub: writing_paused check", "writing_paused"),
    ("framing and JSON (encode, text_frame)", "hub.py"),
    ("metrics", "metrics"),
    ("event loop (select, callbacks)", "asyncio/"),
)


async def run(
    *, iterations: int | None = None, quick: bool = False, out: Path | None = None
) -> Report:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    clients = QUICK_CLIENTS if quick else CLIENTS
    seconds = QUICK_SECONDS if quick else SECONDS
    with tempfile.TemporaryDirectory(prefix="bench-wsprof-") as tmp:
        config = Path(tmp) / "gateway.toml"
        config.write_text(gateway_config(Path(tmp), interval=INTERVAL, compression=False))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.ws_gateway", "-c", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            cwd=ROOT, env=child_env(), preexec_fn=procstat.die_with_parent,
        )  # fmt: skip
        drain: asyncio.Task[None] | None = None
        try:
            port = await asyncio.wait_for(_ready(proc), 60)
            drain = asyncio.create_task(_drain(proc))
            async with LoadClients(2) as load:
                await load.connect(port, clients)
                await asyncio.sleep(2.0)
                raw = Path(tmp) / "profile.txt"
                recorder = await asyncio.create_subprocess_exec(
                    spy, "record", "-p", str(proc.pid), "-d", str(seconds), "-r", "250",
                    "-f", "raw", "-o", str(raw), "--nonblocking",
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                await recorder.wait()
                shares = _shares(raw.read_text() if raw.exists() else "")
        finally:
            if drain is not None:
                drain.cancel()
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await proc.wait()
    return report({"shares": shares, "clients": clients, "seconds": seconds})


async def _ready(proc: asyncio.subprocess.Process) -> int:
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        if line.startswith(b"READY"):
            return int(line.split()[1])
    raise RuntimeError("bench.ws_gateway exited before listening")


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    while await proc.stdout.readline():
        pass


def _shares(raw: str) -> dict[str, float]:
    """Busy samples per bucket, as shares of all busy samples."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        counts[_bucket(stack.split(";"))] += int(count)
    total = sum(counts.values())
    return {name: n / total for name, n in counts.most_common()} if total else {}


def _bucket(frames: list[str]) -> str:
    for frame in reversed(frames):
        for label, marker in BUCKETS:
            if marker in frame:
                return label
    return "other"


def report(data: dict[str, Any]) -> Report:
    shares: dict[str, float] = data["shares"]
    rows = [[name, f"{share:.1%}"] for name, share in shares.items()]
    text = "\n".join(
        [
            f"### Gateway CPU while fanning out (py-spy, {data['clients']:,} clients,"
            f" a sensor_update every {INTERVAL * 1000:.0f} ms, {data['seconds']} s)",
            "",
            markdown_table(["where (innermost frame of ours)", "share of busy samples"], rows)
            if rows
            else "py-spy recorded nothing (is ptrace allowed?).",
        ]
    )
    return Report(text, data)
