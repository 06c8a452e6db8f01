"""What the store tests share: alert changes as the engine would make them (to write to a
store without an engine), and a database as an older schema version left it."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from pathlib import Path

from gateway.alerts.model import Alert, Change, Latch
from gateway.alerts.store import Store
from gateway.alerts.tables import SCHEMA


def raised(store: Store, measurement: str = "ph", at: float = 100.0) -> Change:
    """A warning raised at ``at`` (8.7 over a bound of 8.5), with the store's next id."""
    alert = Alert(
        store.new_id(), measurement, "threshold", "high", "warning", "active", 8.7, 8.5, at, at
    )
    return Change("raised", alert, at)


def then(change: Change, event: str, at: float, **fields: object) -> Change:
    """The next ``event`` of ``change``'s alert at ``at``, with ``fields`` changed."""
    alert = dataclasses.replace(change.alert, updated_at=at, **fields)  # type: ignore[arg-type]
    latch = Latch(alert) if event == "dismissed" else None
    return Change(event, alert, at, latch=latch)  # type: ignore[arg-type]


def database_before(path: Path, table: str, version: int) -> Path:
    """A database as schema ``version`` left it: SCHEMA up to the creation of ``table``."""
    with contextlib.closing(sqlite3.connect(path)) as old:
        old.executescript(SCHEMA.split(f"CREATE TABLE IF NOT EXISTS {table}")[0])
        old.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
        old.commit()
    return path
