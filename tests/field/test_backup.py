"""``sensor-gateway backup`` while another process keeps writing alerts to the database."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.field.backup import BackupError, backup_database
from gateway.service import DB_NAME

# Writes alerts the way the gateway's store does (WAL, synchronous=FULL, one
# transaction per change), printing each committed count, until stdin closes.
WRITER = r"""
import sqlite3, sys, threading
from gateway.alerts.tables import SCHEMA
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.executescript(SCHEMA)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
n = 0
while not stop.is_set():
    n += 1
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "INSERT INTO alerts VALUES (?, ?, 'ph', 'threshold', 'high', 'warning', 'active',"
        " 8.7, 8.5, ?, ?, NULL)", (f"EMBALSE_01-{n}", n, float(n), float(n)))
    db.execute("INSERT INTO alert_events (alert_id, event, at, severity, value, bound)"
               " VALUES (?, 'raised', ?, 'warning', 8.7, 8.5)", (f"EMBALSE_01-{n}", float(n)))
    db.execute("COMMIT")
    print(n, flush=True)
"""


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return config


async def test_backup_while_alerts_are_written_is_a_valid_database_holding_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    live = tmp_path / "data" / DB_NAME
    live.parent.mkdir()
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(live),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert writer.stdin is not None
    assert writer.stdout is not None
    try:
        committed = 0
        while committed < 50:  # it is writing, in WAL mode
            committed = int(await asyncio.wait_for(writer.stdout.readline(), 9.0))
        assert (live.parent / (DB_NAME + "-wal")).exists()
        dest = tmp_path / "backup.sqlite3"
        code = await asyncio.to_thread(main, ["backup", "-c", str(config), str(dest)])
        line = await asyncio.wait_for(writer.stdout.readline(), 9.0)
        assert line, "the writer stopped during the backup"
        writing_after = int(line)
    finally:
        writer.stdin.close()
        await asyncio.wait_for(writer.wait(), 9.0)
    assert code == 0
    assert f"{dest}:" in capsys.readouterr().out
    assert not (tmp_path / "backup.sqlite3-wal").exists()
    copy = sqlite3.connect(dest)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        alerts = copy.execute("SELECT count(*), max(seq) FROM alerts").fetchone()
        events = copy.execute("SELECT count(*) FROM alert_events").fetchone()[0]
    finally:
        copy.close()
    # Everything committed before the backup, nothing torn: each alert with its event.
    assert committed <= alerts[0] == alerts[1] == events
    assert writing_after > committed


def test_backup_into_a_directory_is_dated_and_never_overwrites(tmp_path: Path) -> None:
    live = tmp_path / DB_NAME
    db = sqlite3.connect(live)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE alerts (id TEXT)")
    db.execute("INSERT INTO alerts VALUES ('a')")
    db.commit()
    db.close()  # stopped cleanly: no -wal file left
    out = tmp_path / "backups"
    out.mkdir()
    first = backup_database(live, out, now=0.0)
    assert first.path == out / "gateway-19700101T000000Z.sqlite3"
    assert first.alerts == 1
    with pytest.raises(BackupError, match="already exists"):
        backup_database(live, out, now=0.0)
    assert sorted(p.name for p in out.iterdir()) == [first.path.name]


def test_backup_without_a_database_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backup", "-c", str(_config(tmp_path)), str(tmp_path / "b.sqlite3")])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'data' / DB_NAME}: no database there" in err
    assert not (tmp_path / "data").exists()  # nothing created
