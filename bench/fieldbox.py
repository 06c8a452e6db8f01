"""The field box at rest: ``sensor-gateway run --simulate`` with 10 dashboards watching.

Runs the real command (embedded default config: four probes polled every 2 s,
a sensor_update every 10 s) in its own process, connects 10 clients to
``/ws/sensors`` and reads the process's CPU and RSS from ``/proc`` over the
window. The simulated devices run inside that process, so their cost is
counted too: a box on real probes spends less.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

from bench import Report, markdown_table, procstat
from bench.fanout_procs import LoadClients
from bench.gateway_process import simulated_gateway

WINDOW = 60.0
QUICK_WINDOW = 10.0
WARMUP = 5.0
CLIENTS = 10
TARGET = 0.01  # of one core


async def run(
    *, iterations: int | None = None, quick: bool = False, out: Path | None = None
) -> Report:
    window = QUICK_WINDOW if quick else WINDOW
    async with simulated_gateway() as (proc, port), LoadClients(1) as clients:
        await clients.connect(port, CLIENTS)
        await asyncio.sleep(WARMUP)
        samples = await _watch(proc.pid, window)
    return _report(samples, out)


async def _watch(pid: int, window: float) -> list[tuple[float, float, int]]:
    """(seconds, cpu seconds, rss bytes) every 5 s over ``window``."""
    start = time.time()
    samples = [(0.0, procstat.cpu_seconds(pid), procstat.rss_bytes(pid))]
    while (elapsed := time.time() - start) < window:
        await asyncio.sleep(min(5.0, window - elapsed))
        samples.append((time.time() - start, procstat.cpu_seconds(pid), procstat.rss_bytes(pid)))
    return samples


def _report(samples: list[tuple[float, float, int]], out: Path | None) -> Report:
    (t0, cpu0, rss0), (t1, cpu1, rss1) = samples[0], samples[-1]
    share = (cpu1 - cpu0) / (t1 - t0)
    header = ["row", "value"]
    rows = [
        ["window", f"{t1 - t0:.0f} s, {CLIENTS} clients on /ws/sensors"],
        ["CPU, share of one core", f"{share:.2%}"],
        ["RSS at start / end", f"{rss0 / 2**20:.1f} / {rss1 / 2**20:.1f} MiB"],
        ["target: <= 1 % of one core", "met" if share <= TARGET else "MISSED"],
    ]
    text = "\n".join(
        [
            "### Field box at rest: `sensor-gateway run --simulate` (simulators in-process)",
            "",
            markdown_table(header, rows),
        ]
    )
    data: dict[str, Any] = {
        "cpu_share": share,
        "rss_start": rss0,
        "rss_end": rss1,
        "samples": samples,
        "clients": CLIENTS,
    }
    figures = [plot(samples, out)] if out is not None else []
    return Report(text, data, figures)


def plot(samples: list[tuple[float, float, int]], out: Path) -> str:
    import matplotlib  # type: ignore[import-not-found, unused-ignore]  # the bench extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]  # the bench extra

    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    pairs = list(itertools.pairwise(samples))
    ax.step(
        [b[0] for _, b in pairs],
        [(b[1] - a[1]) / (b[0] - a[0]) * 100 for a, b in pairs],
        where="pre",
        label="CPU % of one core",
    )
    ax.axhline(TARGET * 100, color="grey", linestyle="--", label="target")
    ax.set_xlabel("s")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.set_title(f"sensor-gateway run --simulate, {CLIENTS} clients")
    fig.tight_layout()
    fig.savefig(out / "fieldbox.png", dpi=90)
    plt.close(fig)
    return "fieldbox.png"
