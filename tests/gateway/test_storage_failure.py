"""A disk that fills up, for real: a 4 MiB tmpfs under data_dir, filled with a file
until the kernel says ENOSPC. The gateway runs on the simulators; no write is faked.

Mounting needs root (CI runs as root); elsewhere these tests skip, saying why.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.alerts.store import StorageHealth, StoreWriteError
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import next_of, until, until_true

RETRY = "[storage]\nretry_interval = 0.1\n"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 4 MiB tmpfs, unmounted after the test whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 4 MiB tmpfs needs root (CI runs the tests as root)")
    where = tmp_path / "disk"
    where.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Write one file until the filesystem has not a byte left; return it."""
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        assert _write_until_refused(fd) == errno.ENOSPC
        os.fsync(fd)
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0
    return ballast


def _write_until_refused(fd: int) -> int | None:
    chunk = b"\0" * 65536
    try:
        while True:
            os.write(fd, chunk)  # the last one short, then an error
    except OSError as exc:
        return exc.errno


async def storage_state(client: Client) -> str:
    health = await (await client.get("/healthz")).json()
    state: str = health["storage"]["state"]
    return state


async def test_a_full_disk_loses_no_alert(
    small_disk: Path, make_client: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    data_dir = small_disk / "data"
    client: Client = await make_client(data_dir=data_dir, extra=RETRY)
    assert (await (await client.get("/healthz")).json())["storage"] == {"state": "ok"}
    ws = await client.ws_connect("/ws/alerts")
    initial = await ws.receive_json(timeout=3.0)
    ballast = fill(small_disk)

    await client.put("/api/simulator/ph", json={"value": 9.5})  # beyond critical_high
    raised = await next_of(ws, "update")  # heard at once, though the disk refused it
    assert (raised["seq"], raised["data"]["critical"]) == (initial["seq"] + 1, 1)
    (alert,) = await (await client.get("/api/alerts")).json()
    assert (alert["measurement"], alert["severity"]) == ("ph", "critical")
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "degraded"
    assert health["storage"]["state"] == "failing"
    assert "full" in health["storage"]["error"]
    assert health["storage"]["held_alert_changes"] == 1

    await client.put("/api/simulator/ph", json={"value": 7.25})  # a later event, same alert
    cleared = await next_of(ws, "update")
    assert (cleared["seq"], cleared["data"]["total"]) == (raised["seq"] + 1, 0)
    await until(lambda: gateway_of(client).store.health.failures >= 5)  # retried, and again
    metrics = (await (await client.get("/metrics")).text()).splitlines()
    assert any(line.startswith("gateway_storage_write_failures_total ") for line in metrics)
    assert "gateway_storage_free_bytes 0.0" in metrics
    assert any(line.startswith("gateway_storage_db_bytes ") for line in metrics)

    ballast.unlink()
    await until_true(lambda: _ok(client), timeout=5.0)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.name for r in errors] == ["gateway.store"]  # one line, however many failures
    assert "database or disk is full" in errors[0].getMessage()
    assert any("succeed again" in r.getMessage() for r in caplog.records)
    await ws.close()
    await client.close()  # the gateway stops; then a new one on the same data_dir

    client = await make_client(data_dir=data_dir, extra=RETRY)
    history = await (await client.get("/api/alerts/history")).json()
    assert [(e["alert_id"], e["event"]) for e in history] == [
        (alert["id"], "raised"),
        (alert["id"], "cleared"),
    ]


async def _ok(client: Client) -> bool:
    health = await (await client.get("/healthz")).json()
    return bool(health["storage"] == {"state": "ok"} and health["status"] == "ok")


async def test_stopping_with_changes_held_says_what_was_not_written(
    small_disk: Path, make_client: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    client: Client = await make_client(data_dir=small_disk / "data", extra=RETRY)
    fill(small_disk)
    await client.put("/api/simulator/ph", json={"value": 9.5})
    await until(lambda: gateway_of(client).alerts.held == 1)
    (alert,) = gateway_of(client).active_alerts()
    await client.close()
    (unsaved,) = [r for r in caplog.records if "not written" in r.getMessage()]
    assert unsaved.levelno == logging.ERROR
    assert f"{alert['id']} raised ph critical" in unsaved.getMessage()


def test_one_error_line_a_minute_while_writes_fail(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.store")
    clock = [0.0]
    health = StorageHealth(Path("/data/gateway.sqlite3"), clock=lambda: clock[0])
    error = StoreWriteError("readings", "database or disk is full")
    for clock[0] in (0.0, 1.0, 30.0, 59.9, 60.0, 61.0, 119.0):
        health.failed(error)
    assert health.failing
    assert health.failures == 7
    assert [r.levelname for r in caplog.records] == ["ERROR", "ERROR"]  # at 0 and at 60
    assert "5 failed writes" in caplog.records[1].getMessage()
    clock[0] = 130.0
    health.succeeded()
    assert not health.failing
    assert caplog.records[-1].levelname == "INFO"
    assert "after 7 failures over 130 s" in caplog.records[-1].getMessage()
    health.succeeded()
    assert len(caplog.records) == 3
