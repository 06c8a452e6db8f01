"""Measuring one server of the fan-out benchmark: windows of whole broadcasts, the load
clients' reports turned into figures, and the reconnect storm.

A window starts right after a broadcast ends and holds ``n`` whole broadcasts, so the
server's CPU over it (from ``/proc``) is the cost of exactly those deliveries.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from bench.fanout_procs import Broadcast, LoadClients, ServerProcess, sampling

INTERVAL = 0.5
BROADCAST_TIMEOUT = 15.0
SETTLE = 0.5  # s for the last deliveries of a window to land before the clients report


def say(text: str) -> None:
    print(f"[ws {time.strftime('%H:%M:%S')}] {text}", flush=True)


async def idle_cost(server: ServerProcess, seconds: float = 2.0) -> dict[str, float]:
    """The server's CPU share and RSS with no client (its ticker still runs)."""
    await server.next_broadcast(BROADCAST_TIMEOUT)
    cpu0, t0 = server.cpu(), time.time()
    await asyncio.sleep(seconds)
    return {"cpu_share": (server.cpu() - cpu0) / (time.time() - t0), "rss": server.rss()}


async def connect(
    server: ServerProcess, clients: LoadClients, count: int, *, total: int, **options: Any
) -> None:
    say(f"{server.spec.name}: connecting {count} clients (to {total})")
    shown = time.monotonic()

    def progress(opened: int) -> None:
        nonlocal shown
        if time.monotonic() - shown >= 3.0:
            shown = time.monotonic()
            say(f"{server.spec.name}:   {opened}/{count} open")

    started = time.monotonic()
    replies = await clients.connect(server.port, count, progress=progress, **options)
    failed = sum(r["failed"] for r in replies)
    say(f"{server.spec.name}: {count - failed} open in {time.monotonic() - started:.1f} s")
    if failed:
        raise RuntimeError(f"{server.spec.name}: {failed} of {count} connections failed")


async def measure(server: ServerProcess, clients: LoadClients, broadcasts: int) -> dict[str, Any]:
    """CPU, timing and delivery over ``broadcasts`` whole broadcasts, after one to warm up."""
    for _ in range(2):  # one to warm up; the window starts as the next one ends
        await broadcast(server)
    cpu0, t0 = server.cpu(), time.time()
    window = [await broadcast(server) for _ in range(broadcasts)]
    cpu, wall = server.cpu() - cpu0, time.time() - t0
    rss = server.rss()
    await asyncio.sleep(SETTLE)
    seqs = [b.seq for b in window]
    replies = await clients.call("report", seqs=seqs, clear=True, port=server.port)
    row = deliveries(replies)
    row.update(
        broadcasts=len(window),
        seconds=wall,
        cpu_seconds=cpu,
        cpu_us_per_delivery=cpu / max(1, row["deliveries"]) * 1e6,
        rss=rss,
        **percentiles("publish_ms", [b.seconds * 1000 for b in window]),
    )
    return row


async def broadcast(server: ServerProcess) -> Broadcast:
    found = await server.next_broadcast(BROADCAST_TIMEOUT)
    if found is None:
        raise RuntimeError(f"{server.spec.name} stopped broadcasting: {server.log_tail(5)}")
    return found


def deliveries(replies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Receipt spread, latency and completeness from the load clients' reports."""
    times: dict[str, list[float]] = {}
    published: dict[str, float] = {}
    for reply in replies:
        for seq, at in reply["times"].items():
            times.setdefault(seq, []).extend(at)
        published.update({s: t for s, t in reply["published"].items() if t is not None})
    spreads = [(max(at) - min(at)) * 1000 for at in times.values() if at]
    latency = [(t - published[s]) * 1000 for s, at in times.items() if s in published for t in at]
    healthy = sum(r["healthy"] for r in replies)
    frames = sum(r["frames"] for r in replies)
    return {
        "deliveries": sum(len(at) for at in times.values()),
        "healthy": healthy,
        "complete_share": sum(r["complete"] for r in replies) / max(1, healthy),
        "bytes_per_message": sum(r["bytes"] for r in replies) / max(1, frames),
        "compressed_share": sum(r["compressed"] for r in replies) / max(1, frames),
        **percentiles("spread_ms", spreads),
        **percentiles("latency_ms", latency),
    }


def percentiles(name: str, values: Iterable[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {f"{name}_p50": None, f"{name}_p99": None, f"{name}_max": None}

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {f"{name}_p50": rank(0.5), f"{name}_p99": rank(0.99), f"{name}_max": ordered[-1]}


def brief(row: dict[str, Any]) -> str:
    ratio = f" ({row['x_floor']:.2f}x the floor beside it)" if "x_floor" in row else ""
    return (
        f"{row['cpu_us_per_delivery']:.1f} µs/delivery{ratio},"
        f" publish p99 {row['publish_ms_p99']:.1f} ms,"
        f" spread p99 {row['spread_ms_p99']:.1f} ms, every update {row['complete_share']:.1%},"
        f" {row['rss_per_client'] / 1024:.1f} KiB/client"
    )


# reconnect storm -------------------------------------------------------------------------


async def reconnect_storm(
    server: ServerProcess, clients: LoadClients, count: int
) -> dict[str, Any]:
    """Every client drops at once and reconnects at once with ``?since=<its last seq>``."""
    say(f"{server.spec.name}: reconnect storm of {count} clients")
    async with sampling(server.cpu, 0.05) as cpu:
        started = time.time()
        replies = await clients.call("storm", since=True, settle=1.5, port=server.port)
    connect = [t for r in replies for t in r["connect"]]
    first = [t for r in replies for t in r["first"]]
    back = max(connect, default=math.nan)
    reconnected = sum(r["reconnected"] for r in replies)
    result = {
        "clients": count,
        "reconnected": reconnected,
        "failed": sum(r["failed"] for r in replies),
        "retries": sum(r["retries"] for r in replies),
        "all_back_s": back,
        "all_served_s": max(first, default=math.nan),
        "gap_free_share": sum(r["gap_free"] for r in replies) / max(1, reconnected),
        "missing": sum(r["missing"] for r in replies),
        # the server's CPU until all were back, its broadcasts to those already back included
        "cpu_ms_per_reconnect": _cpu_between(cpu, started, started + back) / max(1, count) * 1e3,
        "connect": quantiles(connect),
        **percentiles("connect_s", connect),
    }
    say(
        f"{server.spec.name}: storm: all {reconnected} back in {back:.2f} s,"
        f" gap-free {result['gap_free_share']:.1%}, {result['retries']} retries"
    )
    return result


def _cpu_between(samples: list[tuple[float, float]], start: float, end: float) -> float:
    def at(moment: float) -> float:
        before = [v for t, v in samples if t <= moment]
        after = [v for t, v in samples if t >= moment]
        return before[-1] if before else after[0] if after else math.nan

    return at(end) - at(start) if samples else math.nan


def quantiles(values: Sequence[float], points: int = 100) -> list[float]:
    """``points + 1`` evenly spaced order statistics (a CDF small enough for results.json)."""
    ordered = sorted(values)
    if not ordered:
        return []
    return [ordered[round(i * (len(ordered) - 1) / points)] for i in range(points + 1)]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else math.nan
