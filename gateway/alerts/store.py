"""SQLite under ``data_dir``: alerts with their whole history, latches, readings.

Every alert change is committed (WAL, ``synchronous=FULL``) before it is
published while the disk takes writes, so a ``kill -9`` or a power cut then
loses nothing a client was told (gateway/alerts/pipeline.py says what happens when it
does not). All database work runs on one thread of its own, in submission
order, so the event loop never waits on a disk.

A write the disk refuses (full, read-only, I/O error) raises
:class:`StoreWriteError` and is counted and reported by :class:`StorageHealth`:
one ERROR line when writes start failing, at most one a minute while they go
on failing, one INFO line when they succeed again.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from drivers.errors import GatewayError
from drivers.model import Reading
from gateway.alerts import history as history_sql
from gateway.alerts import shelves
from gateway.alerts.model import Change, Latch
from gateway.alerts.shelves import ShelfEvent
from gateway.alerts.tables import (
    ALERT_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    Notification,
    Outgoing,
    Restored,
    alert_of,
    in_transaction,
    insert_notifications,
    insert_outgoing,
    save_changes,
    transaction,
)

T = TypeVar("T")
log = logging.getLogger("gateway.store")  # the name logs were filtered by
REPORT_EVERY = 60.0  # s between ERROR lines while writes go on failing


class StoreWriteError(GatewayError):
    """The disk refused a write (full, read-only, I/O error): worth retrying later."""

    def __init__(self, what: str, error: str) -> None:
        super().__init__(f"cannot write {what}: {error}")
        self.what, self.error = what, error


class StorageHealth:
    """Whether the last write succeeded, reported without flooding the log."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.failures = 0  # failed writes since start: gateway_storage_write_failures_total
        self.error: str | None = None  # the last failure, while failing
        self._clock = clock
        self._failing_since: float | None = None
        self._failures_then = 0
        self._reported_at = float("-inf")

    @property
    def failing(self) -> bool:
        return self.error is not None

    def failed(self, error: StoreWriteError) -> None:
        now = self._clock()
        self.failures += 1
        self.error = str(error)
        if self._failing_since is None:
            self._failing_since, self._failures_then = now, self.failures - 1
        if now - self._reported_at >= REPORT_EVERY:
            self._reported_at = now
            log.error(
                "storage: %s (%s); %d failed writes so far; alert changes are held in "
                "memory and retried (this line repeats at most once a minute)",
                error, self.path, self.failures - self._failures_then,
            )  # fmt: skip

    def succeeded(self) -> None:
        if self._failing_since is not None:
            log.info(
                "storage: writes to %s succeed again after %d failures over %.0f s",
                self.path,
                self.failures - self._failures_then,
                self._clock() - self._failing_since,
            )
        self._failing_since, self.error = None, None


class Store:
    """Open with :meth:`open`, close with :meth:`close`; every method is awaited."""

    def __init__(self, path: Path, *, id_prefix: str = "A-") -> None:
        self.path = path
        self.id_prefix = id_prefix
        self.health = StorageHealth(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._db: sqlite3.Connection | None = None
        self._next_seq = 1
        self._outbox_rows = 0

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None, "store not open"
            return work(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _write(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a write; what the disk refuses comes out as StoreWriteError, counted."""
        try:
            result = await self._run(work)
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise  # a bug, not the disk
        except (sqlite3.DatabaseError, OSError) as exc:
            error = StoreWriteError(what, str(exc))
            self.health.failed(error)
            raise error from exc
        self.health.succeeded()
        return result

    async def open(self) -> Restored:
        """Open (creating if need be) and return the active alerts and latches."""

        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA temp_store=MEMORY")  # history buckets sort in memory
            db.executescript(SCHEMA)
            db.execute(  # SCHEMA creates what an older database lacks: say it is current
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        return await self._run(self._restore)

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def close(self) -> None:
        if self._db is not None:
            await self._run(lambda db: db.close())
            self._db = None
        self._executor.shutdown(wait=True)

    def new_id(self) -> str:
        """An alert id never used before, in this database, across restarts."""
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        return f"{self.id_prefix}{seq}"

    def _restore(self, db: sqlite3.Connection) -> Restored:
        (top,) = db.execute(
            "SELECT MAX((SELECT COALESCE(MAX(seq), 0) FROM alerts), COALESCE((SELECT "
            "CAST(value AS INTEGER) FROM meta WHERE key = 'max_seq'), 0))"
        ).fetchone()
        self._next_seq = top + 1
        (self._outbox_rows,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        active = db.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state = 'active'")
        latched = db.execute(
            f"SELECT {', '.join('a.' + c.strip() for c in ALERT_COLUMNS.split(','))} "
            "FROM latches l JOIN alerts a ON a.id = l.alert_id"
        )
        return Restored(
            [alert_of(row) for row in active],
            [Latch(alert_of(row)) for row in latched],
            shelves.load(db),
        )

    # alert changes ------------------------------------------------------------------

    async def save(
        self,
        changes: Sequence[Change],
        outgoing: Sequence[Outgoing] = (),
        notifications: Sequence[Notification] = (),
        shelf_events: Sequence[ShelfEvent] = (),
    ) -> None:
        """Commit the changes, and the messages that tell of them, in one transaction."""

        def work(db: sqlite3.Connection) -> None:
            save_changes(db, changes, outgoing, notifications, shelf_events)
            self._outbox_rows += len(outgoing)

        await self._write("alert changes", work)

    # the notification outbox ------------------------------------------------------------

    async def add_notifications(self, notifications: Sequence[Notification]) -> None:
        """Queue notifications that no alert change carries (reminders)."""

        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                insert_notifications(db, notifications)

        await self._write("the notification outbox", work)

    async def next_notification(self, target: str) -> Notification | None:
        """The oldest notification not yet sent to ``target``."""
        query = (
            "SELECT target, title, body, kind, event, at, alert_id, id, attempts "
            "FROM notifications WHERE target = ? ORDER BY id LIMIT 1"
        )
        row = await self._run(lambda db: db.execute(query, (target,)).fetchone())
        return None if row is None else Notification(*row)

    async def notification_done(self, id: int, *, sent: bool) -> None:
        """Sent: forget it. Not sent: count the attempt."""
        sql = (
            "DELETE FROM notifications WHERE id = ?"
            if sent
            else "UPDATE notifications SET attempts = attempts + 1 WHERE id = ?"
        )
        await self._write("the notification outbox", lambda db: in_transaction(db, sql, [(id,)]))

    async def notifications_queued(self) -> dict[str, int]:
        """Notifications not yet sent, by target key."""
        query = "SELECT target, COUNT(*) FROM notifications GROUP BY target"
        rows = await self._run(lambda db: db.execute(query).fetchall())
        return {target: int(count) for target, count in rows}

    async def drop_notifications(self, target: str) -> None:
        """Forget what waits for a target no longer configured."""
        await self._write(
            "the notification outbox",
            lambda db: in_transaction(
                db, "DELETE FROM notifications WHERE target = ?", [(target,)]
            ),
        )

    # the MQTT outbox ------------------------------------------------------------------

    async def enqueue(self, outgoing: Sequence[Outgoing], keep: int) -> None:
        """Add messages; then drop the oldest droppable ones beyond ``keep``."""

        def work(db: sqlite3.Connection) -> None:
            with transaction(db, "BEGIN IMMEDIATE"):
                insert_outgoing(db, outgoing)
                dropped = db.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE droppable = 1 "
                    "ORDER BY id DESC LIMIT -1 OFFSET ?)",
                    (keep,),
                ).rowcount
            self._outbox_rows += len(outgoing) - dropped

        await self._write("the MQTT outbox", work)

    async def outbox(self, limit: int) -> list[Outgoing]:
        """The oldest messages not yet acknowledged, in the order they were queued."""
        query = "SELECT id, topic, payload, qos, retain, droppable FROM outbox ORDER BY id LIMIT ?"
        rows = await self._run(lambda db: db.execute(query, (limit,)).fetchall())
        return [Outgoing(t, bytes(p), q, bool(r), bool(d), i) for i, t, p, q, r, d in rows]

    async def acknowledged(self, ids: Sequence[int]) -> None:
        """The broker has them: forget them."""
        rows = [(i,) for i in ids]

        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                deleted = db.executemany("DELETE FROM outbox WHERE id = ?", rows).rowcount
            self._outbox_rows -= deleted

        await self._write("the MQTT outbox", work)

    async def outbox_size(self) -> int:
        (count,) = await self._run(lambda db: db.execute("SELECT COUNT(*) FROM outbox").fetchone())
        return int(count)

    @property
    def outbox_rows(self) -> int:
        """Messages in the MQTT outbox, kept as they are added and removed (no query)."""
        return self._outbox_rows

    async def history(self, since: float, limit: int) -> list[dict[str, Any]]:
        """Alert events after ``since`` (epoch seconds), oldest first."""
        query = (
            "SELECT e.at, e.event, e.alert_id, a.measurement, a.kind, a.direction, e.severity, "
            "e.value, e.bound, e.by FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
            "WHERE e.at > ? ORDER BY e.id LIMIT ?"
        )
        names = ("at", "event", "alert_id", "measurement", "kind", "direction", "severity",
                 "value", "bound", "by")  # fmt: skip
        rows = await self._run(lambda db: db.execute(query, (since, limit)).fetchall())
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def shelf_history(self, since: float, limit: int) -> list[dict[str, Any]]:
        """Shelvings and unshelvings after ``since`` (epoch seconds), oldest first."""
        return await self._run(lambda db: shelves.history(db, since, limit))

    # readings -------------------------------------------------------------------------

    async def add_readings(self, readings: Iterable[Reading]) -> None:
        rows = [(r.measurement, r.timestamp, r.value, r.quality.value, r.source) for r in readings]
        if rows:
            await self._write(
                "readings",
                lambda db: in_transaction(db, "INSERT INTO readings VALUES (?, ?, ?, ?, ?)", rows),
            )

    async def readings(
        self, measurement: str, since: float, limit: int
    ) -> list[tuple[float, float | None, str]]:
        """(time, value, quality) of one measurement after ``since``, oldest first."""
        query = (
            "SELECT at, value, quality FROM readings WHERE measurement = ? AND at > ? "
            "ORDER BY at LIMIT ?"
        )
        rows = await self._run(lambda db: db.execute(query, (measurement, since, limit)).fetchall())
        return [(at, value, quality) for at, value, quality in rows]

    # history (gateway/alerts/history.py) -------------------------------------------------------

    async def count_readings(self, measurement: str, since: float, until: float) -> int:
        return await self._run(lambda db: history_sql.count_readings(db, measurement, since, until))

    async def readings_between(
        self, measurement: str, since: float, until: float, limit: int
    ) -> list[tuple[float, float | None, str]]:
        return await self._run(
            lambda db: history_sql.raw_readings(db, measurement, since, until, limit)
        )

    async def buckets(
        self, measurement: str, since: float, until: float, bucket: int
    ) -> list[tuple[float, float | None, float | None, float | None, int]]:
        return await self._run(
            lambda db: history_sql.buckets(db, measurement, since, until, bucket)
        )

    async def alert_events(
        self, since: float, until: float, filters: Mapping[str, str], limit: int
    ) -> list[dict[str, Any]]:
        return await self._run(
            lambda db: history_sql.alert_events(db, since, until, filters, limit)
        )

    async def prune_readings(self, before: float) -> int:
        """Drop readings older than ``before``."""
        cursor = await self._write(
            "readings", lambda db: db.execute("DELETE FROM readings WHERE at < ?", (before,))
        )
        return cursor.rowcount

    async def prune_alerts(self, before: float) -> int:
        """Drop closed alerts last changed before ``before`` (epoch s), with their events.

        Closed: cleared, or dismissed with no latch left (its condition is over). An
        active alert, and a dismissed one whose condition still holds, are kept whatever
        their age. Returns how many alerts went.
        """
        closed = (
            "SELECT id FROM alerts WHERE updated_at < :before AND (state = 'cleared' OR "
            "(state = 'dismissed' AND id NOT IN (SELECT alert_id FROM latches))) AND id NOT IN "
            "(SELECT alert_id FROM alert_events WHERE at >= :before)"
        )
        args = {"before": before}

        def work(db: sqlite3.Connection) -> int:
            with transaction(db, "BEGIN IMMEDIATE"):
                # Ids are never used again: remember the highest before it may go.
                db.execute(
                    "INSERT OR REPLACE INTO meta SELECT 'max_seq', MAX(seq, COALESCE("
                    "(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'max_seq'), 0)) "
                    "FROM (SELECT COALESCE(MAX(seq), 0) AS seq FROM alerts)"
                )
                db.execute(f"DELETE FROM alert_events WHERE alert_id IN ({closed})", args)
                count: int = db.execute(f"DELETE FROM alerts WHERE id IN ({closed})", args).rowcount
            return count

        return await self._write("alert history", work)
