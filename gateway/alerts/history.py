"""The stored history as the REST API serves it: readings (raw or in buckets) and
alert events, as JSON rows or CSV.

The SQL runs on the store's own thread (see :class:`gateway.alerts.store.Store`); the
buckets are aggregated by SQLite (``GROUP BY CAST(at / bucket AS INTEGER)``)
over the covering index ``readings (measurement, at, value)`` (gateway/alerts/store.py's
SCHEMA), so a 30-day
query of one measurement reads the index alone (bench/history.py measures it).
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

READING_COLUMNS = ("timestamp", "value", "quality")
POINT_COLUMNS = ("t", "min", "avg", "max", "n")
EVENT_COLUMNS = ("at", "event", "alert_id", "measurement", "kind", "direction", "severity",
                 "value", "bound", "by")  # fmt: skip


def count_readings(db: sqlite3.Connection, measurement: str, since: float, until: float) -> int:
    """Readings of ``measurement`` with ``since < at <= until``."""
    (count,) = db.execute(
        "SELECT COUNT(*) FROM readings WHERE measurement = ? AND at > ? AND at <= ?",
        (measurement, since, until),
    ).fetchone()
    return int(count)


def raw_readings(
    db: sqlite3.Connection, measurement: str, since: float, until: float, limit: int
) -> list[tuple[float, float | None, str]]:
    """(time, value, quality) with ``since < at <= until``, oldest first."""
    rows = db.execute(
        "SELECT at, value, quality FROM readings WHERE measurement = ? AND at > ? AND at <= ? "
        "ORDER BY at LIMIT ?",
        (measurement, since, until, limit),
    ).fetchall()
    return [(at, value, quality) for at, value, quality in rows]


def buckets(
    db: sqlite3.Connection, measurement: str, since: float, until: float, bucket: int
) -> list[tuple[float, float | None, float | None, float | None, int]]:
    """(bucket start, min, avg, max, good readings) per ``bucket`` seconds (aligned to
    multiples of ``bucket`` since the epoch) holding a reading with ``since < at <= until``;
    readings without a value (failed reads) count in no bucket's ``n``."""
    rows = db.execute(
        "SELECT CAST(at / ? AS INTEGER) AS k, MIN(value), AVG(value), MAX(value), COUNT(value) "
        "FROM readings WHERE measurement = ? AND at > ? AND at <= ? GROUP BY k ORDER BY k",
        (bucket, measurement, since, until),
    ).fetchall()
    return [(k * bucket, low, mean, high, int(n)) for k, low, mean, high, n in rows]


#: The alert-history filters and the column each one matches.
EVENT_FILTERS = {"measurement": "a.measurement", "severity": "e.severity", "event": "e.event"}


def alert_events(
    db: sqlite3.Connection, since: float, until: float, filters: Mapping[str, str], limit: int
) -> list[dict[str, Any]]:
    """Alert events with ``since < at <= until`` matching ``filters`` (keys of
    EVENT_FILTERS: measurement, severity, event), oldest first."""
    where = "".join(f" AND {EVENT_FILTERS[key]} = ?" for key in filters)
    rows = db.execute(
        "SELECT e.at, e.event, e.alert_id, a.measurement, a.kind, a.direction, e.severity, "
        "e.value, e.bound, e.by FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
        f"WHERE e.at > ? AND e.at <= ?{where} ORDER BY e.id LIMIT ?",
        (since, until, *filters.values(), limit),
    ).fetchall()
    return [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows]


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A header line and one line per row; None is an empty cell, a float its shortest
    round-tripping text (``repr``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)
