"""What the alert engine costs per reading, and what committing its changes costs.

Engine rows time single ``AlertEngine.evaluate`` calls with ``time.perf_counter_ns``
on a float clock: a reading inside every bound, and readings cycling across the
bounds so that nearly every call raises, escalates, de-escalates or clears. The
floor calls a trivial function with the same arguments, timed the same way: the
difference of the medians is the engine's own cost. Rows run interleaved in rounds.

Store rows commit real changes (made by the engine, ids from the store) through
``gateway.alerts.store.Store`` in a temporary directory: one change per ``save``, and ten
per ``save``. Each ``save`` is a transaction committed with WAL and
``synchronous=FULL`` on the store's own thread; the floor is an empty job sent to
a one-thread executor, the hop every ``save`` makes.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import Summary, markdown_table
from gateway.alerts.engine import AlertEngine
from gateway.alerts.model import Change, Now, Rule, rule_from_bounds
from gateway.alerts.store import Store

ITERATIONS = 200_000
QUICK_ITERATIONS = 5000
STORE_ITERATIONS = 300
QUICK_STORE_ITERATIONS = 30
ROUNDS = 10
WARMUP_SHARE = 0.1
BATCH = 10
#: The engine's cost per reading the issue asks for, at most (median, microseconds).
TARGET_US = 20.0

#: The gateway's four measurements, with info bounds, hysteresis and a delay of 1 so
#: that the toggling row changes something on nearly every reading.
RULES: dict[str, Rule] = {
    "ph": rule_from_bounds(
        {"critical_low": 5.0, "warning_low": 6.0, "info_low": 6.5,
         "info_high": 8.0, "warning_high": 8.5, "critical_high": 9.0},
        hysteresis=0.1, delay=1, stale_after=30.0,
    ),
    "water_level": rule_from_bounds(
        {"critical_low": 2.0, "warning_low": 4.0, "warning_high": 18.0, "critical_high": 20.0},
        hysteresis=0.2, delay=3, stale_after=30.0,
    ),
    "conductivity": rule_from_bounds(
        {"warning_high": 1500.0, "critical_high": 2000.0}, hysteresis=20.0, delay=2,
        stale_after=60.0,
    ),
    "temperature": rule_from_bounds(
        {"warning_low": 2.0, "warning_high": 30.0}, hysteresis=0.5, delay=2, stale_after=60.0
    ),
}  # fmt: skip
NORMAL = 7.2
#: pH values walking across every bound and back: each one changes the alert.
TOGGLE = (8.2, 8.7, 9.5, 8.7, 8.2, 7.2, 6.4, 5.8, 4.5, 5.8, 6.4, 7.2)
STEP = 2.0


@dataclass
class Row:
    name: str
    floor: bool
    call: Callable[[], object]
    samples: list[int] = field(default_factory=list)


@dataclass
class StoreRow:
    name: str
    floor: bool
    per_call: int  # changes per timed call
    call: Callable[[], Awaitable[None]]
    samples: list[int] = field(default_factory=list)  # ns per change


async def run(
    *, iterations: int | None = None, quick: bool = False, out: Path | None = None
) -> str:
    """Measure every row and return the report (markdown tables and their notes)."""
    n = iterations or (QUICK_ITERATIONS if quick else ITERATIONS)
    default_store = QUICK_STORE_ITERATIONS if quick else STORE_ITERATIONS
    store_n = min(iterations, STORE_ITERATIONS) if iterations else default_store
    rows, changes = _engine_rows()
    _measure(rows, n, max(20, round(n * WARMUP_SHARE)))
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        store_rows = await _measure_store(Path(tmp), store_n)
        filesystem = _filesystem(Path(tmp))
    return _report(rows, changes(), store_rows, filesystem)


def _engine_rows() -> tuple[list[Row], Callable[[], tuple[int, int]]]:
    """The rows, and a function returning the crossing row's (readings, changes)."""
    counter = itertools.count(1)
    quiet = AlertEngine(RULES, new_id=lambda: f"A-{next(counter)}", now=0.0)
    busy = AlertEngine(RULES, new_id=lambda: f"A-{next(counter)}", now=0.0)
    clock = itertools.count(1)
    values = itertools.cycle(TOGGLE)
    calls = made = 0

    def floor(measurement: str, value: float | None, now: Now) -> list[Change]:
        return []

    def moment() -> Now:
        at = next(clock) * STEP
        return Now(at, at)

    def normal() -> object:
        return quiet.evaluate("ph", NORMAL, moment())

    def toggling() -> object:
        nonlocal calls, made
        calls += 1
        changes = busy.evaluate("ph", next(values), moment())
        made += len(changes)
        return changes

    def trivial() -> object:
        return floor("ph", NORMAL, moment())

    rows = [
        Row("floor: trivial function, same arguments", True, trivial),
        Row("evaluate: normal reading (no bound crossed)", False, normal),
        Row("evaluate: reading crossing bounds (a change each)", False, toggling),
    ]
    return rows, lambda: (calls, made)


def _measure(rows: list[Row], n: int, warmup: int) -> None:
    for row in rows:
        for _ in range(warmup):
            row.call()
    for round_ in range(ROUNDS):
        share = n // ROUNDS + (1 if round_ < n % ROUNDS else 0)
        for row in rows:
            gc.collect()  # start each block clean; collections inside it count
            row.samples += _timed(row.call, share)


def _timed(call: Callable[[], object], count: int) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(count):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


async def _measure_store(directory: Path, n: int) -> list[StoreRow]:
    store = Store(directory / "gateway.sqlite3")
    await store.open()
    hop = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-hop")
    try:
        changes = _changes(store.new_id)
        loop = asyncio.get_running_loop()

        async def empty_job() -> None:
            await loop.run_in_executor(hop, _nothing)

        async def single() -> None:
            await store.save([next(changes)])

        async def batch() -> None:
            await store.save([next(changes) for _ in range(BATCH)])

        rows = [
            StoreRow("floor: empty job on a one-thread executor", True, 1, empty_job),
            StoreRow("Store.save: 1 change per commit", False, 1, single),
            StoreRow(f"Store.save: {BATCH} changes per commit", False, BATCH, batch),
        ]
        for row in rows:  # warm up: the first commits also grow the files
            for _ in range(max(3, n // 10)):
                await row.call()
        for round_ in range(ROUNDS):
            share = n // ROUNDS + (1 if round_ < n % ROUNDS else 0)
            for row in rows:
                for _ in range(share):
                    start = time.perf_counter_ns()
                    await row.call()
                    row.samples.append((time.perf_counter_ns() - start) // row.per_call)
        return rows
    finally:
        hop.shutdown(wait=True)
        await store.close()


def _nothing() -> None:
    return None


def _changes(new_id: Callable[[], str]) -> Iterator[Change]:
    """An endless stream of real changes, in an order the store accepts (raised first)."""
    engine = AlertEngine(RULES, new_id=new_id, now=0.0)
    for step, value in enumerate(itertools.cycle(TOGGLE), start=1):
        yield from engine.evaluate("ph", value, Now(step * STEP, step * STEP))


def _filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (fsync on tmpfs costs nothing)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return kind
    real = os.path.realpath(path)
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def _report(
    rows: list[Row], crossing: tuple[int, int], store_rows: list[StoreRow], filesystem: str
) -> str:
    summaries = [Summary.of_ns(row.samples) for row in rows]
    floor = next(s for row, s in zip(rows, summaries, strict=True) if row.floor)
    header = ["row", "n", "median µs", "p90 µs", "p99 µs", "over floor µs", "x floor"]
    table = [
        [
            row.name,
            str(s.n),
            f"{s.median:.2f}",
            f"{s.p90:.2f}",
            f"{s.p99:.2f}",
            "—" if row.floor else f"{s.median - floor.median:+.2f}",
            f"{s.median / floor.median:.2f}x",
        ]
        for row, s in zip(rows, summaries, strict=True)
    ]
    engine = summaries[1:]
    worst = max(s.median for s in engine)
    verdict = f"met, {TARGET_US / worst:.1f}x headroom" if worst < TARGET_US else "NOT met"

    store_summaries = [Summary.of_ns(row.samples) for row in store_rows]
    store_floor = store_summaries[0]
    store_header = ["row", "n", "median ms", "p90 ms", "p99 ms", "x floor"]
    store_table = [
        [
            f"{row.name} (per change)" if row.per_call > 1 else row.name,
            str(s.n),
            f"{s.median / 1000:.3f}",
            f"{s.p90 / 1000:.3f}",
            f"{s.p99 / 1000:.3f}",
            f"{s.median / store_floor.median:.1f}x",
        ]
        for row, s in zip(store_rows, store_summaries, strict=True)
    ]
    calls, made = crossing
    notes = [
        f"Issue target: engine under {TARGET_US:.0f} µs per reading (median): {verdict}"
        f" (worst row {worst:.2f} µs).",
        f"The crossing row made {made} changes in {calls} readings; each sample"
        " includes one perf_counter_ns pair, as the floor's does.",
        f"Rows interleaved in {ROUNDS} rounds after {WARMUP_SHARE:.0%} untimed calls each.",
        f"Store: WAL, synchronous=FULL, one commit per save, on {filesystem}"
        " (a tmpfs makes fsync free: run on the data disk for real figures).",
    ]
    return "\n".join(
        [
            "### Alert engine cost per reading (AlertEngine.evaluate, 4 rules)",
            "",
            markdown_table(header, table),
            "",
            "### SQLite commit per alert change (gateway.store.Store, temporary directory)",
            "",
            markdown_table(store_header, store_table),
            "",
            *notes,
        ]
    )
