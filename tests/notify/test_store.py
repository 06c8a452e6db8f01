"""The notification outbox in SQLite: an older database gains it, and a full disk holds
the notifications with the alert changes until it takes writes again."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.alerts.store import Store
from gateway.alerts.tables import SCHEMA_VERSION, Notification
from tests.gateway.conftest import Client
from tests.gateway.test_storage_failure import fill, small_disk  # noqa: F401 - a fixture
from tests.helpers import until_true
from tests.notify.servers import Webhook
from tests.notify.test_delivery import notify
from tests.stores import database_before


async def test_a_version_1_database_gains_the_outbox(tmp_path: Path) -> None:
    path = database_before(tmp_path / "gateway.sqlite3", "notifications", version=1)
    store = Store(path)
    await store.open()
    try:
        row = Notification("k", "title", "body", "warning", "raised", 1.0, "A-1")
        await store.add_notifications([row])
        stored = await store.next_notification("k")
        assert stored is not None
        assert (stored.title, stored.alert_id, stored.attempts) == ("title", "A-1", 0)
        await store.notification_done(stored.id, sent=False)
        assert (await store.notifications_queued()) == {"k": 1}
    finally:
        await store.close()
    db = sqlite3.connect(path)
    (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    (attempts,) = db.execute("SELECT attempts FROM notifications").fetchone()
    db.close()
    assert (version, attempts) == (str(SCHEMA_VERSION), 1)
    assert SCHEMA_VERSION >= 2  # 2 brought the notifications


async def test_a_full_disk_holds_the_notifications_with_the_changes(
    small_disk: Path,  # noqa: F811
    make_client: Callable[..., Any],
    webhook: Webhook,
) -> None:
    extra = "[storage]\nretry_interval = 0.1\n" + notify(webhook.url)
    client: Client = await make_client(data_dir=small_disk / "data", extra=extra)
    ballast = fill(small_disk)
    await client.put("/api/simulator/ph", json={"value": 9.5})

    async def held() -> bool:
        health = await (await client.get("/healthz")).json()
        return bool(health["storage"].get("held_alert_changes") == 1)

    await until_true(held)
    assert webhook.bodies == []  # not committed: not sent
    ballast.unlink()
    [body] = await webhook.wait_for(1)
    assert body["title"].startswith("[CRÍTICA] EMBALSE_01: ph 9.5")
