"""Closed alerts past [storage] alert_retention_days go; active and latched ones stay;
the MQTT outbox's depth is a metric. On real SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.alerts.model import Change
from gateway.alerts.store import Store
from gateway.alerts.tables import Outgoing
from gateway.api.metrics import Metrics
from tests.stores import raised, then

DAY = 86400.0
NOW = 1000 * DAY


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(tmp_path / "gateway.sqlite3")
    await store.open()
    yield store
    await store.close()


def rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(store.path) as db:
        return db.execute(sql).fetchall()


async def test_closed_alerts_past_retention_go_with_their_events(store: Store) -> None:
    old, recent = NOW - 400 * DAY, NOW - 10 * DAY
    cleared_old = raised(store, "ph", old)
    dismissed_done = raised(store, "conductivity", old)
    dismissed = then(dismissed_done, "dismissed", old + 60, state="dismissed")
    await store.save([cleared_old, then(cleared_old, "cleared", old + 60, state="cleared")])
    await store.save([dismissed_done, dismissed])
    await store.save([Change("cleared", dismissed.alert, old + 120, unlatched=True)])
    active_old = raised(store, "temperature", old)
    latched = raised(store, "water_level", old)
    await store.save([active_old, latched, then(latched, "dismissed", old, state="dismissed")])
    cleared_recent = raised(store, "ph", recent)
    await store.save([cleared_recent, then(cleared_recent, "cleared", recent, state="cleared")])

    assert await store.prune_alerts(NOW - 365 * DAY) == 2

    kept = {row[0] for row in rows(store, "SELECT id FROM alerts")}
    assert kept == {active_old.alert.id, latched.alert.id, cleared_recent.alert.id}
    events = {row[0] for row in rows(store, "SELECT alert_id FROM alert_events")}
    assert events == kept
    assert await store.prune_alerts(NOW - 365 * DAY) == 0


async def test_an_alert_closed_recently_stays_though_raised_long_ago(store: Store) -> None:
    """A dismissed alert's row keeps its dismissal time; its 'cleared' event is newer."""
    old = NOW - 400 * DAY
    alert = raised(store, "ph", old)
    dismissed = then(alert, "dismissed", old, state="dismissed")
    await store.save([alert, dismissed])
    await store.save([Change("cleared", dismissed.alert, NOW - DAY, unlatched=True)])
    assert await store.prune_alerts(NOW - 365 * DAY) == 0
    assert rows(store, "SELECT id FROM alerts") == [(alert.alert.id,)]


async def test_ids_are_not_used_again_after_the_newest_alert_is_pruned(store: Store) -> None:
    old = NOW - 400 * DAY
    first = raised(store, "ph", old)
    await store.save([first, then(first, "cleared", old, state="cleared")])
    assert await store.prune_alerts(NOW) == 1
    await store.close()
    again = Store(store.path)
    await again.open()
    try:
        assert again.new_id() != first.alert.id
    finally:
        await again.close()


async def test_outbox_depth_is_a_metric_kept_without_a_query(store: Store, tmp_path: Path) -> None:
    metrics = Metrics()
    metrics.watch_storage(
        tmp_path, store.path, failures=lambda: 0, outbox=lambda: store.outbox_rows
    )

    def depth() -> float:
        for line in metrics.render().decode().splitlines():
            if line.startswith("gateway_mqtt_outbox_messages "):
                return float(line.split()[1])
        raise AssertionError("no gateway_mqtt_outbox_messages")

    assert depth() == 0
    await store.enqueue([Outgoing(f"t/{i}", b"{}") for i in range(5)], keep=10)
    assert depth() == 5
    await store.enqueue([Outgoing("t/x", b"{}") for _ in range(8)], keep=10)
    assert depth() == 10  # the oldest droppable ones went
    event = raised(store, "ph", NOW)
    await store.save([event], [Outgoing("t/event", b"{}", droppable=False)])
    assert depth() == 11
    batch = await store.outbox(4)
    await store.acknowledged([o.id for o in batch])
    assert depth() == 7 == await store.outbox_size()
    await store.close()
    again = Store(store.path)
    await again.open()
    try:
        assert again.outbox_rows == 7
    finally:
        await again.close()
