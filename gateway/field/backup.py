"""``sensor-gateway backup``: a consistent copy of the live SQLite database.

SQLite's online backup API copies the database page by page under one read
transaction, so the copy is the database as it stood at one instant, however
busy the gateway is writing to it (WAL: the gateway's writes do not wait for
the copy, nor the copy for them). Copying the file with ``cp`` instead can
catch a write half done and leaves the WAL file behind.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from drivers.errors import GatewayError


class BackupError(GatewayError):
    """A backup that cannot be made; the message says what to do."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size: int
    alerts: int


def backup_database(source: Path, dest: Path, *, now: float | None = None) -> BackupResult:
    """Copy ``source`` to ``dest`` (a new file, or a directory to put a dated file in).

    The copy is written beside its final name and renamed into place once it
    passes ``PRAGMA integrity_check``, so a failed or interrupted backup never
    leaves a file that looks like a good one. It is a self-contained file
    (rollback journal, no WAL) that opens anywhere.
    """
    if not source.is_file():
        raise BackupError(f"{source}: no database there; is data_dir the gateway's?")
    if dest.is_dir():
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        dest = dest / f"{source.stem}-{stamp}{source.suffix}"
    if dest.exists():
        raise BackupError(f"{dest}: already exists; give a new name or a directory")
    partial = dest.with_name(dest.name + ".partial")
    try:
        _copy(source, partial)
        alerts = _check(partial)
        partial.replace(dest)
    except sqlite3.Error as exc:
        raise BackupError(f"{source} -> {dest}: {exc}") from None
    except OSError as exc:
        raise BackupError(f"{dest}: cannot write: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return BackupResult(dest, dest.stat().st_size, alerts)


def _copy(source: Path, target: Path) -> None:
    # Read-only: a backup must never change the live database (nor create one).
    src = sqlite3.connect(f"{source.absolute().as_uri()}?mode=ro", uri=True, timeout=30.0)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # every page in one step: one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


def _check(path: Path) -> int:
    """Raise unless the copy is sound; return how many alerts it holds (0 if no table)."""
    db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        result = db.execute("PRAGMA integrity_check").fetchall()
        if result != [("ok",)]:
            problems = "; ".join(str(row[0]) for row in result[:5])
            raise BackupError(f"{path}: the copy failed its integrity check: {problems}")
        try:
            count: int = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
        except sqlite3.OperationalError:
            count = 0
        return count
    finally:
        db.close()
