"""The SQLite tables under the store: the schema, the rows as dataclasses, and the SQL of a
save (alert changes, their events and latches, the outboxes) in one transaction.

Plain functions on a ``sqlite3.Connection``: :class:`gateway.alerts.store.Store` runs
them on its own thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.alerts import shelves
from gateway.alerts.model import Alert, Change, Latch
from gateway.alerts.shelves import Shelf, ShelfEvent

# 2: notifications; 3: shelves and shelf_events, the readings index covers value (history
# buckets). SCHEMA brings an older database up to date (CREATE ... IF NOT EXISTS).
SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, measurement TEXT NOT NULL, kind TEXT NOT NULL,
    direction TEXT, severity TEXT NOT NULL, state TEXT NOT NULL, value REAL, bound REAL,
    raised_at REAL NOT NULL, updated_at REAL NOT NULL, dismissed_by TEXT
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state);
CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL REFERENCES alerts (id),
    event TEXT NOT NULL, at REAL NOT NULL, severity TEXT NOT NULL, value REAL, bound REAL,
    by TEXT
);
CREATE INDEX IF NOT EXISTS alert_events_at ON alert_events (at);
CREATE TABLE IF NOT EXISTS latches (
    measurement TEXT PRIMARY KEY, alert_id TEXT NOT NULL REFERENCES alerts (id)
);
CREATE TABLE IF NOT EXISTS readings (
    measurement TEXT NOT NULL, at REAL NOT NULL, value REAL, quality TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_measurement_at_value ON readings (measurement, at, value);
DROP INDEX IF EXISTS readings_measurement_at;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, droppable INTEGER NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, title TEXT NOT NULL,
    body TEXT NOT NULL, kind TEXT NOT NULL, alert_id TEXT, event TEXT NOT NULL, at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS notifications_target ON notifications (target, id);
"""
SCHEMA += shelves.SCHEMA

ALERT_COLUMNS = (
    "id, measurement, kind, direction, severity, state, value, bound, raised_at, updated_at, "
    "dismissed_by"
)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message for the MQTT broker, kept on disk until the broker acknowledges it."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    droppable: bool = True  # readings and states may go when the outbox is full; events never
    id: int = 0  # set once stored


@dataclass(frozen=True, slots=True)
class Notification:
    """A message for one ``[[notify]]`` target, kept on disk until it was sent."""

    target: str  # the target's key (gateway/notify/targets.py)
    title: str
    body: str
    kind: str  # apprise's notify type: info, success, warning, failure
    event: str  # raised, escalated, ..., reminder, test
    at: float  # wall clock
    alert_id: str | None = None
    id: int = 0  # set once stored
    attempts: int = 0


@dataclass(frozen=True)
class Restored:
    alerts: list[Alert]
    latches: list[Latch]
    shelves: list[Shelf] = field(default_factory=list)


def alert_of(row: Sequence[Any]) -> Alert:
    return Alert(*row)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    """Commit, or roll back: also when COMMIT itself fails (disk full), or the next
    BEGIN would find the failed transaction still open."""
    db.execute(begin)
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
                db.execute("ROLLBACK")
        raise


def in_transaction(db: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    with transaction(db):
        db.executemany(sql, rows)


def insert_outgoing(db: sqlite3.Connection, outgoing: Sequence[Outgoing]) -> None:
    db.executemany(
        "INSERT INTO outbox (topic, payload, qos, retain, droppable, at) "
        "VALUES (?, ?, ?, ?, ?, julianday('now'))",
        [(o.topic, o.payload, o.qos, int(o.retain), int(o.droppable)) for o in outgoing],
    )


def insert_notifications(db: sqlite3.Connection, notifications: Sequence[Notification]) -> None:
    db.executemany(
        "INSERT INTO notifications (target, title, body, kind, event, at, alert_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(n.target, n.title, n.body, n.kind, n.event, n.at, n.alert_id) for n in notifications],
    )


def save_changes(
    db: sqlite3.Connection,
    changes: Sequence[Change],
    outgoing: Sequence[Outgoing],
    notifications: Sequence[Notification],
    shelf_events: Sequence[ShelfEvent] = (),
) -> None:
    with transaction(db, "BEGIN IMMEDIATE"):
        shelves.apply(db, shelf_events)
        for change in changes:
            _apply(db, change)
        insert_outgoing(db, outgoing)
        insert_notifications(db, notifications)


def _apply(db: sqlite3.Connection, change: Change) -> None:
    a = change.alert
    if change.unlatched:
        db.execute("DELETE FROM latches WHERE alert_id = ?", (a.id,))
    elif change.event == "raised":
        tail = a.id.rsplit("-", 1)[-1]  # ids are "<prefix><seq>", see Store.new_id
        seq = int(tail) if tail.isdigit() else 0
        db.execute(
            f"INSERT INTO alerts (seq, {ALERT_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            (seq, a.id, a.measurement, a.kind, a.direction, a.severity, a.state, a.value,
             a.bound, a.raised_at, a.updated_at, a.dismissed_by),
        )  # fmt: skip
    else:
        db.execute(
            "UPDATE alerts SET severity = ?, state = ?, value = ?, bound = ?, updated_at = ?, "
            "dismissed_by = ? WHERE id = ?",
            (a.severity, a.state, a.value, a.bound, a.updated_at, a.dismissed_by, a.id),
        )
    if change.latch is not None:
        db.execute("INSERT OR REPLACE INTO latches VALUES (?, ?)", (a.measurement, a.id))
    db.execute(
        "INSERT INTO alert_events (alert_id, event, at, severity, value, bound, by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (a.id, change.event, change.at, a.severity, a.value, a.bound,
         a.dismissed_by if change.event == "dismissed" else None),
    )  # fmt: skip
