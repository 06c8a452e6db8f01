"""The SQLite store, on real files."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.model import Quality, Reading
from gateway.alerts.model import Alert, Change, Latch
from gateway.alerts.store import Store
from tests.stores import raised, then


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(tmp_path / "data" / "gateway.sqlite3")
    await store.open()
    yield store
    await store.close()


async def reopen(store: Store) -> tuple[Store, list[Alert], list[Latch]]:
    await store.close()
    again = Store(store.path)
    restored = await again.open()
    return again, restored.alerts, restored.latches


async def test_wal_and_full_sync(store: Store) -> None:
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # kept in the file
    finally:
        db.close()
    # synchronous is per connection (a fresh one says nothing): ask the store's own, on
    # the thread that owns it. 2 is FULL: a commit is on disk before a client hears of it.
    synchronous = await store._run(lambda db: db.execute("PRAGMA synchronous").fetchone())
    assert synchronous == (2,)


async def test_active_alerts_come_back_after_a_restart(store: Store) -> None:
    first = raised(store)
    await store.save([first])
    escalated = then(first, "escalated", 110.0, severity="critical", value=9.2, bound=9.0)
    await store.save([escalated])
    other = raised(store, "water_level", 120.0)
    await store.save([other, then(other, "cleared", 130.0, state="cleared")])
    store, alerts, latches = await reopen(store)
    try:
        assert alerts == [escalated.alert]
        assert latches == []
        assert store.new_id() == "A-3"  # never an id used before
    finally:
        await store.close()


async def test_a_dismissal_latch_survives_a_restart_until_released(store: Store) -> None:
    first = raised(store)
    dismissed = then(first, "dismissed", 105.0, state="dismissed", dismissed_by="ana")
    await store.save([first, dismissed])
    store, alerts, latches = await reopen(store)
    assert alerts == []
    assert latches == [Latch(dismissed.alert)]
    released = Change("cleared", dismissed.alert, 150.0, unlatched=True)
    await store.save([released])
    store, _, latches = await reopen(store)
    try:
        assert latches == []
        events = await store.history(0.0, 100)
    finally:
        await store.close()
    assert [(e["event"], e["by"]) for e in events] == [
        ("raised", None),
        ("dismissed", "ana"),
        ("cleared", None),
    ]
    assert events[1]["measurement"] == "ph"


async def test_history_since_and_limit(store: Store) -> None:
    changes = [raised(store, at=float(t)) for t in (10, 20, 30)]
    for change in changes:
        await store.save([change])
    assert [e["at"] for e in await store.history(15.0, 100)] == [20.0, 30.0]
    assert len(await store.history(0.0, 2)) == 2


async def test_a_failed_batch_leaves_nothing_behind(store: Store) -> None:
    change = raised(store)
    await store.save([change])
    fresh = raised(store, "water_level")
    with pytest.raises(sqlite3.IntegrityError):
        await store.save([fresh, change])  # the second one's id already exists
    store, alerts, _ = await reopen(store)
    try:
        assert [a.id for a in alerts] == [change.alert.id]  # not the fresh one
    finally:
        await store.close()


async def test_readings_are_stored_queried_and_pruned(store: Store) -> None:
    readings = [
        Reading("ph", 7.1, Quality.GOOD, 100.0, "ph-probe"),
        Reading("ph", None, Quality.TIMEOUT, 110.0, "ph-probe", "no reply"),
        Reading("ph", 7.3, Quality.GOOD, 120.0, "ph-probe"),
        Reading("water_level", 12.5, Quality.GOOD, 120.0, "rs485-1"),
    ]
    await store.add_readings(readings)
    assert await store.readings("ph", 105.0, 10) == [(110.0, None, "timeout"), (120.0, 7.3, "good")]
    assert await store.prune_readings(115.0) == 2
    assert await store.readings("ph", 0.0, 10) == [(120.0, 7.3, "good")]
