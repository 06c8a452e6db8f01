"""Shelves (ISA-18.2): a measurement silenced by someone, for a reason, until a time.

Plain data and the SQL that keeps it; no asyncio. :class:`gateway.alerts.store.Store`
runs :func:`apply` in the transaction that commits the alert changes and the
MQTT outbox of the same batch, and :func:`load` when it opens. ``shelves`` holds
the shelves in force (one per measurement), ``shelf_events`` every shelving and
unshelving, for the alert history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gateway.timestamps import utc_timestamp

SCHEMA = """
CREATE TABLE IF NOT EXISTS shelves (
    measurement TEXT PRIMARY KEY, until REAL NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shelf_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, measurement TEXT NOT NULL, event TEXT NOT NULL,
    at REAL NOT NULL, until REAL NOT NULL, by TEXT, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS shelf_events_at ON shelf_events (at);
"""
ShelfEventName = Literal["shelved", "unshelved"]


@dataclass(frozen=True, slots=True)
class Shelf:
    measurement: str
    until: float  # wall clock: when it ends by itself
    by: str  # who shelved it
    reason: str
    at: float  # wall clock: when it was shelved


@dataclass(frozen=True, slots=True)
class ShelfEvent:
    """A shelf put up or taken down; ``by`` None: it expired."""

    event: ShelfEventName
    shelf: Shelf
    at: float  # wall clock
    by: str | None

    def message(self) -> dict[str, Any]:
        """The /ws/alerts news (before the hub stamps its ``timestamp`` and ``seq``)."""
        return {
            "type": self.event,
            "measurement": self.shelf.measurement,
            "until": utc_timestamp(self.shelf.until),
            "by": self.by,
            "reason": self.shelf.reason,
        }


def shelf_json(shelf: Shelf, now: float) -> dict[str, Any]:
    """A shelf as ``GET /api/alerts/shelved`` lists it (``now``: wall clock)."""
    return {
        "measurement": shelf.measurement,
        "until": utc_timestamp(shelf.until),
        "seconds_left": round(max(0.0, shelf.until - now), 3),
        "by": shelf.by,
        "reason": shelf.reason,
        "shelved_at": utc_timestamp(shelf.at),
    }


def apply(db: sqlite3.Connection, events: Sequence[ShelfEvent]) -> None:
    """Record ``events`` (inside the caller's transaction)."""
    for e in events:
        s = e.shelf
        if e.event == "shelved":
            db.execute(
                "INSERT OR REPLACE INTO shelves VALUES (?, ?, ?, ?, ?)",
                (s.measurement, s.until, s.by, s.reason, s.at),
            )
        else:
            db.execute("DELETE FROM shelves WHERE measurement = ?", (s.measurement,))
        db.execute(
            "INSERT INTO shelf_events (measurement, event, at, until, by, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (s.measurement, e.event, e.at, s.until, e.by, s.reason),
        )


def load(db: sqlite3.Connection) -> list[Shelf]:
    """The shelves in force when the gateway stopped (some may have expired since)."""
    rows = db.execute("SELECT measurement, until, by, reason, at FROM shelves").fetchall()
    return [Shelf(*row) for row in rows]


def history(db: sqlite3.Connection, since: float, limit: int) -> list[dict[str, Any]]:
    """Shelf events after ``since``, oldest first, shaped as alert history events."""
    rows = db.execute(
        "SELECT at, event, measurement, by, until, reason FROM shelf_events WHERE at > ? "
        "ORDER BY id LIMIT ?",
        (since, limit),
    ).fetchall()
    empty = dict.fromkeys(("alert_id", "direction", "severity", "value", "bound"))
    return [
        {
            "at": at,
            "event": event,
            "measurement": measurement,
            "kind": "shelf",
            "by": by,
            "until": utc_timestamp(until),
            "reason": reason,
            **empty,
        }
        for at, event, measurement, by, until, reason in rows
    ]
