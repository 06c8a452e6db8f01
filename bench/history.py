"""The history API's bucketed query against a plain SELECT of the same rows.

A SQLite file filled like a gateway that kept every reading: 8 measurements
every 10 s for 30 days (2.07 M rows; ``--quick``: 3 days, 207 k rows). Timed
through :class:`gateway.alerts.store.Store`, as the REST handlers call it:

- ``buckets``: one measurement, 1 h buckets over the whole span (min, avg,
  max, n per bucket, aggregated by SQLite over the covering index);
- ``plain SELECT``: the same measurement's rows over the same span, fetched
  (what a client aggregating for itself would have to read);
- ``buckets, old index``: the bucketed query again after swapping the covering
  index for the (measurement, at) index of schema version 2.

The issue's target: the bucketed 30-day query under 100 ms on the bench machine.
"""

from __future__ import annotations

import contextlib
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import Report, markdown_table
from gateway.alerts.store import Store

MEASUREMENTS = 8
EVERY = 10.0  # s between readings of one measurement
DAYS, QUICK_DAYS = 30, 3
BUCKET = 3600
REPEATS, QUICK_REPEATS = 15, 5
TARGET_MS = 100.0
START = 1_780_000_000.0  # a fixed epoch second (2026) so the buckets fall the same each run


async def run(
    *, iterations: int | None = None, quick: bool = False, out: Path | None = None
) -> Report:
    days = QUICK_DAYS if quick else DAYS
    repeats = min(iterations, 50) if iterations else (QUICK_REPEATS if quick else REPEATS)
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        path = Path(tmp) / "gateway.db"
        store = Store(path)
        await store.open()  # the schema, with its indexes, as a gateway makes it
        await store.close()
        rows, fill_s = _fill(path, days)
        since, until = START - 1, START + days * 86400
        async with _opened(path) as store:
            buckets = await store.buckets("m3", since, until, BUCKET)
            selected = await store.readings_between("m3", since, until, 10**9)
            times = {
                "buckets": await _median_ms(
                    repeats, lambda: store.buckets("m3", since, until, BUCKET)
                ),
                "select": await _median_ms(
                    repeats, lambda: store.readings_between("m3", since, until, 10**9)
                ),
            }
        db = sqlite3.connect(path, isolation_level=None)  # the schema-2 index instead
        db.executescript(
            "DROP INDEX readings_measurement_at_value;"
            "CREATE INDEX readings_measurement_at ON readings (measurement, at); ANALYZE;"
        )
        db.close()
        async with _opened(path) as store:
            times["old_index"] = await _median_ms(
                repeats, lambda: store.buckets("m3", since, until, BUCKET)
            )
    times |= {"points": len(buckets), "rows_one": len(selected)}
    return _report(rows, fill_s, days, repeats, times)


def _fill(path: Path, days: int) -> tuple[int, float]:
    """Readings of ``m0``..``m7`` every EVERY seconds over ``days``; returns (rows, seconds)."""
    started = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    steps = int(days * 86400 / EVERY)
    db.execute("BEGIN")
    db.executemany(  # interleaved, as a gateway writes them: each cycle stores all eight
        "INSERT INTO readings VALUES (?, ?, ?, 'good', 'bench')",
        (
            (f"m{m}", START + i * EVERY, 7.0 + (i % 360) / 360)
            for i in range(steps)
            for m in range(MEASUREMENTS)
        ),
    )
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    return steps * MEASUREMENTS, time.perf_counter() - started


@contextlib.asynccontextmanager
async def _opened(path: Path) -> AsyncIterator[Store]:
    store = Store(path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _median_ms(repeats: int, query: Callable[[], Awaitable[object]]) -> float:
    await query()  # warm the page cache
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        await query()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return statistics.median(samples)


def _report(rows: int, fill_s: float, days: int, repeats: int, times: dict[str, Any]) -> Report:
    select = times["select"]
    table = markdown_table(
        [f"query (one measurement, {days} days)", "median ms", "vs plain SELECT"],
        [
            [f"buckets of {BUCKET} s ({times['points']} points)", f"{times['buckets']:.1f}",
             f"{times['buckets'] / select:.2f}x"],
            [f"plain SELECT ({times['rows_one']} rows)", f"{select:.1f}", "1.00x"],
            ["buckets, schema-2 index (measurement, at)", f"{times['old_index']:.1f}",
             f"{times['old_index'] / select:.2f}x"],
        ],
    )  # fmt: skip
    verdict = "met" if times["buckets"] < TARGET_MS else "NOT met"
    text = (
        f"### History queries ({rows} readings: {MEASUREMENTS} measurements every "
        f"{EVERY:.0f} s for {days} days, filled in {fill_s:.1f} s; median of {repeats})\n\n"
        f"{table}\n\nTarget: the bucketed query under {TARGET_MS:.0f} ms: {verdict}."
    )
    return Report(text, {"rows": rows, "days": days, "repeats": repeats, **times})
