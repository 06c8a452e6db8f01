"""Where the bytes of one /ws/sensors client go: tracemalloc, diffed per client.

The gateway app (``build_app`` as ``sensor-gateway run --simulate`` serves it,
the fan-out benchmark's config) runs in this process with tracemalloc on;
load-client processes open ``clients`` connections. The Python heap grown by
those connections, divided by their number, is split by the package whose
code allocated it (aiohttp, asyncio, the gateway...) and by source line.
RSS per client (the fan-out table's column) also counts the kernel-side
socket, the allocator's slack and tracemalloc's own bookkeeping is left out.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import tempfile
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiohttp import web

from bench import Report, markdown_table
from bench.fanout_procs import LoadClients, gateway_config

CLIENTS, QUICK_CLIENTS = 2000, 500
TOP_LINES = 12
ROOT = Path(__file__).resolve().parent.parent


async def run(
    *, iterations: int | None = None, quick: bool = False, out: Path | None = None
) -> Report:
    from gateway.api.server import build_app
    from gateway.config import load_config

    clients = QUICK_CLIENTS if quick else CLIENTS
    logging.getLogger("gateway").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-wsmem-") as tmp:
        config_path = Path(tmp) / "gateway.toml"
        config_path.write_text(gateway_config(Path(tmp), interval=3600.0, compression=False))
        config = load_config(config_path)
        app = build_app(config, simulate=True, sim_time_scale=0.0)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with LoadClients(1) as load:
                await load.connect(port, 10)  # the first connections warm caches up
                await asyncio.sleep(0.5)
                gc.collect()
                tracemalloc.start(1)
                before = tracemalloc.take_snapshot()
                await load.connect(port, clients)
                await asyncio.sleep(1.0)
                gc.collect()
                after = tracemalloc.take_snapshot()
                tracemalloc.stop()
        finally:
            await runner.cleanup()
    return report(_diff(before, after, clients), clients)


def _diff(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, clients: int
) -> dict[str, Any]:
    stats = after.compare_to(before, "lineno")
    by_package: dict[str, float] = defaultdict(float)
    by_line: dict[str, float] = defaultdict(float)
    for stat in stats:
        frame = stat.traceback[0]
        package = _package(frame.filename)
        by_package[package] += stat.size_diff / clients
        by_line[f"{package}: {_short(frame.filename)}:{frame.lineno}"] += stat.size_diff / clients
    top = sorted(by_line.items(), key=lambda kv: -kv[1])[:TOP_LINES]
    return {"by_package": dict(by_package), "top_lines": top}


def _package(filename: str) -> str:
    path = Path(filename)
    for part in reversed(path.parts[:-1]):
        if part in ("aiohttp", "asyncio", "gateway", "multidict", "yarl", "bench", "simulators"):
            return part
    return "other"


def _short(filename: str) -> str:
    parts = Path(filename).parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ("aiohttp", "asyncio", "gateway", "multidict", "yarl"):
            return "/".join(parts[i:])
    return Path(filename).name


def report(data: dict[str, Any], clients: int) -> Report:
    packages = sorted(data["by_package"].items(), key=lambda kv: -kv[1])
    total = sum(v for _, v in packages)
    rows = [[name, f"{size / 1024:.2f}", f"{size / total:.0%}"] for name, size in packages]
    rows.append(["total", f"{total / 1024:.2f}", "100%"])
    lines = [[where, f"{size / 1024:.2f}"] for where, size in data["top_lines"]]
    text = "\n".join(
        [
            f"### Python heap per /ws/sensors client (tracemalloc, {clients:,} clients)",
            "",
            markdown_table(["allocated in", "KiB per client", "share"], rows),
            "",
            markdown_table(["source line", "KiB per client"], lines),
            "",
            "The heap that the connections grew, by the code that allocated it (innermost"
            " frame). RSS per client (fan-out table) adds the kernel's socket, the allocator's"
            " slack and the interpreter's free lists.",
        ]
    )
    return Report(text, {**data, "clients": clients})
