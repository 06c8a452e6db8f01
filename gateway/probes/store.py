"""The calibration records, in the gateway's SQLite database (its own table).

A table of its own, created if missing when the probes start, through the
Store's connection (one writer thread): the alert schema is untouched.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from gateway.alerts.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS calibrations (
    id INTEGER PRIMARY KEY, measurement TEXT NOT NULL, point TEXT NOT NULL, value REAL,
    command TEXT NOT NULL, points INTEGER, slope TEXT, by TEXT NOT NULL, at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calibrations_measurement ON calibrations (measurement, at);
"""


@dataclass(frozen=True, slots=True)
class CalibrationRecord:
    """One calibration command a person ran: what, on which probe, by whom, when."""

    measurement: str
    point: str
    value: float | None
    command: str
    points: int  # the circuit's ``Cal,?`` after it
    slope: str | None  # ``acid,base,offset`` (pH), else None
    by: str
    at: float  # wall clock

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CalibrationStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def open(self) -> None:
        await self.store._write("calibrations", lambda db: db.executescript(SCHEMA))

    async def record(self, record: CalibrationRecord) -> None:
        """Keep it; raises StoreWriteError when the disk refuses (counted by the store)."""

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO calibrations (measurement, point, value, command, points, slope, "
                "by, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record.measurement, record.point, record.value, record.command,
                 record.points, record.slope, record.by, record.at),
            )  # fmt: skip

        await self.store._write("calibration", work)

    async def last(self) -> dict[str, CalibrationRecord]:
        """The latest calibration of each measurement (a ``clear`` is no calibration)."""

        def work(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return db.execute(
                "SELECT measurement, point, value, command, points, slope, by, MAX(at) "
                "FROM calibrations WHERE point != 'clear' GROUP BY measurement"
            ).fetchall()

        return {row[0]: CalibrationRecord(*row) for row in await self.store._run(work)}
