"""WebSocket fan-out: the gateway against the seed's design, a naive loop and the floor.

Every server runs as its own process on 127.0.0.1 and publishes the same
186-byte ``sensor_update`` every 0.5 s on ``/ws/sensors``; two load-client
processes (:mod:`bench.loadclient`) hold the connections and note when each
seq reached each client. The server's CPU is read from ``/proc`` over windows
that start and end right after a broadcast (:mod:`bench.fanout_measure`), so a
window holds whole broadcasts and nothing of the load clients' own cost. Each
server runs beside the floor, both publishing, so that their CPU per delivery
is compared over the same seconds on a shared machine. Scenarios:

- steady: 1k, 5k, 10k clients on one server process (quick: 1k, 2k), then a
  reconnect storm of every client at once with ``?since=<last seq>`` (full run only);
- stall: 1 % of the clients never read after the handshake, with tiny buffers on
  both ends (:mod:`bench.baselines.common`), beside healthy ones;
- compression: clients that offer permessage-deflate to a server configured for it.

:mod:`bench.fanout_report` turns the figures into tables and plots.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import Report
from bench.fanout_measure import (
    BROADCAST_TIMEOUT,
    INTERVAL,
    SETTLE,
    brief,
    broadcast,
    connect,
    deliveries,
    idle_cost,
    measure,
    median,
    percentiles,
    reconnect_storm,
    say,
)
from bench.fanout_procs import SERVERS, LoadClients, ServerProcess, ServerSpec, sampling
from bench.fanout_report import report

STALLED_EVERY = 100  # 1 %


@dataclass(frozen=True, slots=True)
class Plan:
    sizes: tuple[int, ...]
    broadcasts: int  # per steady window
    servers: tuple[str, ...]  # each measured beside the floor
    solo: bool  # also a window with the floor paused, for the server's own timings
    stall_clients: int
    stall_fill: float  # s for the stalled clients' buffers to fill before the window
    stall_window: float
    stall_servers: tuple[str, ...]
    compression_clients: int
    compression_servers: tuple[str, ...]
    storm: bool = True


ALL = ("floor", "gateway", "seed", "naive")
FULL = Plan(
    sizes=(1000, 5000, 10000),
    broadcasts=40,
    servers=ALL[1:],
    solo=True,
    stall_clients=5000,
    stall_fill=10.0,
    stall_window=30.0,
    stall_servers=ALL,
    compression_clients=1000,
    compression_servers=ALL,
)
QUICK = Plan(
    sizes=(1000, 2000),
    broadcasts=6,
    servers=ALL[1:],
    solo=False,
    stall_clients=1000,
    stall_fill=7.0,
    stall_window=8.0,
    stall_servers=("gateway", "seed"),
    compression_clients=1000,
    compression_servers=("gateway",),
    storm=False,  # a storm's length hangs on SYN retries (1, 3, 7... s): full run only
)
#: Figures that depend on wall time, taken from the window where the server ran alone.
TIMINGS = (
    "publish_ms_p50", "publish_ms_p99", "publish_ms_max", "spread_ms_p50", "spread_ms_p99",
    "spread_ms_max", "latency_ms_p50", "latency_ms_p99", "latency_ms_max",
)  # fmt: skip


async def run(
    *, iterations: int | None = None, quick: bool = False, out: Path | None = None
) -> Report:
    """Run every scenario of the plan and return the tables (and figures, into ``out``)."""
    plan = QUICK if quick else FULL
    if iterations is not None:
        plan = dataclasses.replace(plan, broadcasts=max(4, iterations // 100))
    results: dict[str, Any] = {"interval": INTERVAL, "plan": dataclasses.asdict(plan)}
    results["servers"] = {name: SERVERS[name].label for name in ALL}
    floor_solo = next((n for n in plan.servers if n != "gateway"), None)
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        workdir = Path(tmp)
        for index, name in enumerate(plan.servers):
            pair = await steady_pair(
                SERVERS[name],
                plan,
                workdir / f"steady-{name}",
                floor_solo=name == floor_solo,
                floor_storm=index == 0,
            )
            results.setdefault("steady", {})[name] = pair["rows"]
            results.setdefault("floor_beside", {})[name] = pair["floor_rows"]
            results.setdefault("storm", {}).update(pair["storms"])
        results["steady"]["floor"] = _floor_rows(results["floor_beside"], floor_solo)
        for name in plan.stall_servers:
            results.setdefault("stall", {})[name] = await stall(
                SERVERS[name], plan, workdir / f"stall-{name}"
            )
        for name in plan.compression_servers:
            results.setdefault("compression", {})[name] = await compressed(
                SERVERS[name], plan, workdir / f"deflate-{name}"
            )
    return report(results, out)


def _floor_rows(beside: dict[str, list[dict[str, Any]]], solo: str | None) -> list[dict[str, Any]]:
    """The floor's row per size: its timings alone (or beside the first server), its CPU per
    delivery the median of the windows it shared with each server."""
    source = beside[solo] if solo is not None else next(iter(beside.values()))
    rows = []
    for row in source:
        cpus = [
            r["cpu_us_per_delivery"]
            for rows_ in beside.values()
            for r in rows_
            if r["clients"] == row["clients"]
        ]
        rows.append({**row, "cpu_us_per_delivery": median(cpus), "x_floor": 1.0})
    return rows


# steady state ----------------------------------------------------------------------------


async def steady_pair(
    spec: ServerSpec, plan: Plan, workdir: Path, *, floor_solo: bool, floor_storm: bool
) -> dict[str, Any]:
    """``spec`` and the floor side by side: for each size a window where both publish (CPU per
    delivery compared in the same seconds), then, with ``plan.solo``, one where the floor is
    paused (the server's own timings); then the reconnect storms."""
    workdir.mkdir(parents=True)  # noqa: ASYNC240 - a fresh directory, before any I/O matters
    rows: list[dict[str, Any]] = []
    floor_rows: list[dict[str, Any]] = []
    async with contextlib.AsyncExitStack() as stack:
        clients = await stack.enter_async_context(LoadClients())
        floor = await stack.enter_async_context(ServerProcess(SERVERS["floor"], workdir, INTERVAL))
        server = await stack.enter_async_context(ServerProcess(spec, workdir, INTERVAL))
        idle_floor, idle = await asyncio.gather(idle_cost(floor), idle_cost(server))
        connected = 0
        for size in plan.sizes:
            for target in (floor, server):
                await connect(target, clients, size - connected, total=size)
            connected = size
            client_cpu0 = clients.cpu()
            beside_floor, beside = await asyncio.gather(
                measure(floor, clients, plan.broadcasts), measure(server, clients, plan.broadcasts)
            )
            client_cpu = clients.cpu() - client_cpu0
            both = beside_floor["deliveries"] + beside["deliveries"]
            row = {
                **beside,
                "clients": size,
                "timing": "beside the floor",
                "idle_cpu_share": idle["cpu_share"],
                "rss_per_client": (beside["rss"] - idle["rss"]) / size,
                "floor_cpu_us_per_delivery": beside_floor["cpu_us_per_delivery"],
                "x_floor": beside["cpu_us_per_delivery"] / beside_floor["cpu_us_per_delivery"],
                "client_cpu_us_per_delivery": client_cpu / max(1, both) * 1e6,
            }
            floor_row = {
                **beside_floor,
                "clients": size,
                "timing": f"beside {spec.name}",
                "idle_cpu_share": idle_floor["cpu_share"],
                "rss_per_client": (beside_floor["rss"] - idle_floor["rss"]) / size,
                "client_cpu_us_per_delivery": row["client_cpu_us_per_delivery"],
            }
            if plan.solo:
                row.update(await _alone(server, floor, clients, plan))
                if floor_solo:
                    floor_row.update(await _alone(floor, server, clients, plan))
            rows.append(row)
            floor_rows.append(floor_row)
            say(f"{spec.name} @ {size}: {brief(row)}")
        storms = {}
        if plan.storm:
            storms[spec.name] = await reconnect_storm(server, clients, connected)
            if floor_storm:
                storms["floor"] = await reconnect_storm(floor, clients, connected)
    return {"rows": rows, "floor_rows": floor_rows, "storms": storms}


async def _alone(
    server: ServerProcess, other: ServerProcess, clients: LoadClients, plan: Plan
) -> dict[str, Any]:
    """The timings of ``server`` while ``other`` is paused."""
    other.toggle_pause()
    try:
        alone = await measure(server, clients, plan.broadcasts)
    finally:
        other.toggle_pause()
    return {
        **{key: alone[key] for key in TIMINGS},
        "timing": "alone",
        "alone_cpu_us_per_delivery": alone["cpu_us_per_delivery"],
        "complete_share": min(alone["complete_share"], 1.0),
    }


# stalled clients -------------------------------------------------------------------------


async def stall(spec: ServerSpec, plan: Plan, workdir: Path) -> dict[str, Any]:
    """1 % of the clients never read; are the others still served, and what of the stalled?

    The healthy clients connect first and are measured alone (the reference), then the
    stalled ones join, their buffers fill, and the same figures are taken again."""
    workdir.mkdir(parents=True)  # noqa: ASYNC240 - a fresh directory, before any I/O matters
    n, stalled = plan.stall_clients, plan.stall_clients // STALLED_EVERY
    async with ServerProcess(spec, workdir, INTERVAL) as server, LoadClients() as clients:
        await server.next_broadcast(BROADCAST_TIMEOUT)
        await connect(server, clients, n - stalled, total=n)
        reference = await measure(server, clients, plan.broadcasts)
        await connect(server, clients, stalled, total=n, stalled_every=1)
        connected_at = time.time()
        say(
            f"{spec.name}: {stalled} stalled among {n}: {plan.stall_fill:.0f} s to"
            f" fill their buffers, then a {plan.stall_window:.0f} s window"
        )
        await asyncio.sleep(plan.stall_fill)
        first_broadcast = len(server.broadcasts)
        cpu0, t0 = server.cpu(), time.time()
        async with sampling(server.rss, 1.0) as rss:
            await asyncio.sleep(plan.stall_window)
        cpu, t1 = server.cpu() - cpu0, time.time()
        window = server.broadcasts[first_broadcast:]
        published = {}
        for reply in await clients.call("seqs", port=server.port):
            published.update({int(s): t for s, t in reply["published"].items()})
        seqs = sorted(s for s, t in published.items() if t0 <= t <= t1 - SETTLE)
        replies = await clients.call("report", seqs=seqs, span=[t0, t1])
        fates = await clients.call("unstall", wait=2.0)
    row = deliveries(replies)
    served = [s for r in replies for s in r["served"]]
    silence = 3 * INTERVAL
    row.update(
        clients=n,
        stalled=stalled,
        seconds=t1 - t0,
        broadcasts=len(window),
        cpu_us_per_delivery=cpu / max(1, row["deliveries"]) * 1e6,
        served_share=sum(1 for k, ok, gap in served if ok and gap <= silence) / max(1, len(served)),
        updates_per_s=median([k / (t1 - t0) for k, _, _ in served]),
        rss_samples=[(t - t0, v) for t, v in rss],
        rss_growth=(rss[-1][1] - rss[0][1]) if rss else 0,
        stalled_fate=stalled_fate(fates, published, connected_at),
        reference={k: reference[k] for k in (*TIMINGS, "cpu_us_per_delivery", "complete_share")},
        **percentiles("publish_ms", [b.seconds * 1000 for b in window]),
    )
    say(
        f"{spec.name}: stall: healthy served {row['served_share']:.1%},"
        f" {row['updates_per_s']:.2f} updates/s each; stalled: {row['stalled_fate']['summary']}"
    )
    return row


def stalled_fate(
    fates: Sequence[dict[str, Any]], published: dict[int, float], connected_at: float
) -> dict[str, Any]:
    """What reached the stalled clients once they read again: everything late, the newest
    only (conflated), or nothing more (cut off)."""
    newest = max(published, default=0)
    kinds: dict[str, int] = {}
    withheld_after: list[float] = []
    for fate in (f for reply in fates for f in reply["stalled"]):
        seqs: list[int] = fate["seqs"]
        missing = [s for s in range(seqs[0], seqs[-1] + 1) if s not in set(seqs)] if seqs else []
        if fate["close"] == 4008 or not fate["open"]:
            kind = f"cut off ({fate['close']})"
        elif missing and seqs[-1] >= newest:
            kind = "conflated"
        elif seqs and seqs[-1] >= newest:
            kind = "backlog delivered late"
        else:
            kind = "behind"
        kinds[kind] = kinds.get(kind, 0) + 1
        if missing and missing[0] in published:
            withheld_after.append(published[missing[0]] - connected_at)
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    return {
        "kinds": kinds,
        "summary": summary or "none",
        "first_withheld_s": median(withheld_after) if withheld_after else None,
    }


# compression -----------------------------------------------------------------------------


async def compressed(spec: ServerSpec, plan: Plan, workdir: Path) -> dict[str, Any]:
    """The steady figures with permessage-deflate offered by every client and enabled,
    beside a floor without it (so on and off compare through the same floor)."""
    workdir.mkdir(parents=True)  # noqa: ASYNC240 - a fresh directory, before any I/O matters
    n = plan.compression_clients
    async with contextlib.AsyncExitStack() as stack:
        clients = await stack.enter_async_context(LoadClients())
        floor = await stack.enter_async_context(ServerProcess(SERVERS["floor"], workdir, INTERVAL))
        server = await stack.enter_async_context(
            ServerProcess(spec, workdir, INTERVAL, compression=True)
        )
        _, idle = await asyncio.gather(idle_cost(floor), idle_cost(server))
        await connect(floor, clients, n, total=n)
        await connect(server, clients, n, total=n, deflate=True)
        beside_floor, row = await asyncio.gather(
            measure(floor, clients, plan.broadcasts), measure(server, clients, plan.broadcasts)
        )
    row.update(
        clients=n,
        rss_per_client=(row["rss"] - idle["rss"]) / n,
        x_floor=row["cpu_us_per_delivery"] / beside_floor["cpu_us_per_delivery"],
        floor_cpu_us_per_delivery=beside_floor["cpu_us_per_delivery"],
    )
    say(f"{spec.name} @ {n}, deflate: {brief(row)}, {row['compressed_share']:.0%} compressed")
    return row


async def smoke(clients: int = 20, updates: int = 3) -> dict[str, Any]:
    """The smallest run: the gateway alone, for the test suite."""
    with tempfile.TemporaryDirectory(prefix="bench-ws-smoke-") as tmp:
        async with (
            ServerProcess(SERVERS["gateway"], Path(tmp), INTERVAL) as server,
            LoadClients(1) as load,
        ):
            replies = await load.connect(server.port, clients)
            if sum(r["open"] for r in replies) != clients:
                raise RuntimeError(f"only {replies} of {clients} clients connected")
            window = [await broadcast(server) for _ in range(updates)]
            await asyncio.sleep(SETTLE)
            got = await load.call("report", seqs=[b.seq for b in window], port=server.port)
    return deliveries(got)
