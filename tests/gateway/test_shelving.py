"""Shelving end to end: the simulated pH probe, the REST calls, /ws/alerts, SQLite."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.alerts.shelves import Shelf, ShelfEvent
from gateway.alerts.store import Store
from gateway.alerts.tables import SCHEMA_VERSION
from gateway.api.params import BadInput
from gateway.api.shelving import MAX_REASON, shelve_request
from tests.gateway.alerting import simulate
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import next_news, until
from tests.stores import database_before

#: 1.2 s: long enough to see that nothing is raised, short enough for a test.
SHORT = 0.02


async def counted(ws: Any, total: int) -> dict[str, Any]:
    """Read up to the counts message (``initial`` or ``update``) that shows ``total``: the
    gateway tells its counts (``summary``) before the ``update`` is delivered."""
    while True:
        message = await next_news(ws)
        if message["type"] in ("initial", "update") and message["data"]["total"] == total:
            return message


async def shelve(client: Client, minutes: float, reason: str = "cleaning the probe") -> Any:
    body = {"measurement": "ph", "minutes": minutes, "reason": reason}
    response = await client.post("/api/alerts/shelve", json=body)
    assert response.status == 200, await response.text()
    return await response.json()


async def reads_ph(client: Client, value: float) -> None:
    """Set the simulated pH; return once the gateway has read it."""
    await simulate(client, "ph", {"value": value})
    readings = gateway_of(client).readings
    await until(lambda: readings.value("ph") == value)


async def test_a_shelved_crossing_raises_nothing_until_the_shelf_ends_then_at_once(
    client: Client,
) -> None:
    gateway = gateway_of(client)
    async with client.ws_connect("/ws/alerts") as ws:
        counts = await counted(ws, 0)
        shelf = await shelve(client, SHORT)
        shelved = await next_news(ws)
        assert shelved["seq"] == counts["seq"] + 1, shelved
        for key in ("measurement", "until", "by", "reason"):
            assert shelved[key] == shelf[key]
        assert (shelved["type"], shelved["by"]) == ("shelved", "local")
        await reads_ph(client, 9.5)  # past critical_high
        assert gateway.summary["total"] == 0
        assert (await (await client.get("/api/alerts")).json()) == []
        unshelved = await next_news(ws)  # the shelf ends: nothing came in between
        assert (unshelved["type"], unshelved["by"], unshelved["measurement"]) == (
            "unshelved", None, "ph",
        )  # fmt: skip
        update = await next_news(ws)  # raised at once, on the latest reading
        assert (update["type"], update["data"]["critical"]) == ("update", 1)
        assert update["seq"] == unshelved["seq"] + 1
    assert (await (await client.get("/api/alerts/shelved")).json()) == []


async def test_an_active_alert_leaves_the_counts_while_shelved_and_unshelve_brings_it_back(
    client: Client,
) -> None:
    async with client.ws_connect("/ws/alerts") as ws:
        await counted(ws, 0)  # connected before the alert: its update is the next count
        await reads_ph(client, 8.7)
        await counted(ws, 1)
        [alert] = await (await client.get("/api/alerts")).json()
        await shelve(client, 60, "calibrating")
        shelved = await next_news(ws)
        assert shelved["type"] == "shelved", shelved
        update = await next_news(ws)
        assert (update["type"], update["data"]["total"]) == ("update", 0)
        assert (await (await client.get("/api/alerts")).json()) == []
        [listed] = await (await client.get("/api/alerts/shelved")).json()
        assert (listed["measurement"], listed["by"], listed["reason"]) == (
            "ph", "local", "calibrating",
        )  # fmt: skip
        assert 3590 < listed["seconds_left"] <= 3600
        assert listed["alert"]["id"] == alert["id"]
        response = await client.delete("/api/alerts/shelve/ph")
        assert response.status == 200
        unshelved = await next_news(ws)
        assert (unshelved["type"], unshelved["by"]) == ("unshelved", "local")
        update = await next_news(ws)
        assert (update["type"], update["data"]["total"]) == ("update", 1)
    assert [a["id"] for a in await (await client.get("/api/alerts")).json()] == [alert["id"]]
    history = await (await client.get("/api/alerts/history")).json()
    shelf_events = [
        (e["event"], e["measurement"], e["by"]) for e in history if e["kind"] == "shelf"
    ]
    assert shelf_events == [("shelved", "ph", "local"), ("unshelved", "ph", "local")]
    response = await client.delete("/api/alerts/shelve/ph")  # nothing shelved any more
    assert response.status == 404


async def test_shelves_survive_a_restart(make_client: Callable[..., Any]) -> None:
    first: Client = await make_client()
    await shelve(first, 30, "probe out for cleaning")
    await first.close()  # the gateway stops; its database stays
    second: Client = await make_client()
    [listed] = await (await second.get("/api/alerts/shelved")).json()
    assert (listed["measurement"], listed["reason"]) == ("ph", "probe out for cleaning")
    assert 1700 < listed["seconds_left"] <= 1800  # recomputed from the wall clock
    await reads_ph(second, 9.5)
    assert gateway_of(second).summary["total"] == 0  # still shelved after the restart


async def test_a_shelf_that_ended_while_stopped_ends_at_start(
    make_client: Callable[..., Any],
) -> None:
    first: Client = await make_client()
    await shelve(first, SHORT)
    await first.close()
    second: Client = await make_client()
    await until(lambda: not gateway_of(second).alerts.shelves)
    history = await (await second.get("/api/alerts/history")).json()
    assert [(e["event"], e["by"]) for e in history if e["kind"] == "shelf"] == [
        ("shelved", "local"),
        ("unshelved", None),
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"measurement": "turbidity", "minutes": 5, "reason": "x"}, "measurement"),
        ({"minutes": 5, "reason": "x"}, "measurement"),
        ({"measurement": "ph", "minutes": 0, "reason": "x"}, "minutes"),
        ({"measurement": "ph", "minutes": -5, "reason": "x"}, "minutes"),
        ({"measurement": "ph", "minutes": 480.5, "reason": "x"}, "alerts.max_shelve_minutes"),
        ({"measurement": "ph", "minutes": "30", "reason": "x"}, "minutes"),
        ({"measurement": "ph", "minutes": True, "reason": "x"}, "minutes"),
        ({"measurement": "ph", "minutes": 5, "reason": ""}, "reason"),
        ({"measurement": "ph", "minutes": 5, "reason": "   "}, "reason"),
        ({"measurement": "ph", "minutes": 5, "reason": "x" * 201}, "reason"),
        ({"measurement": "ph", "minutes": 5}, "reason"),
        ({"measurement": "ph", "minutes": 5, "reason": "x", "by": "me"}, "unknown key"),
        ([], "expected"),
    ],
)
async def test_bad_shelve_bodies_are_422_naming_the_key(
    client: Client, body: Any, fragment: str
) -> None:
    response = await client.post("/api/alerts/shelve", json=body)
    assert response.status == 422
    problem = await response.json()
    assert problem["error"] == "invalid_body"
    assert fragment in problem["detail"]
    assert gateway_of(client).alerts.shelves == {}


@pytest.mark.parametrize(
    "body", [b"", b"{", b"\xff\xfe", b'{"minutes": NaN}', b'{"minutes": 1e999}', b"[" * 100]
)
async def test_garbage_shelve_bodies_are_422(client: Client, body: bytes) -> None:
    response = await client.post("/api/alerts/shelve", data=body)
    assert response.status == 422
    assert (await response.json())["error"] == "invalid_body"


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
MEASUREMENTS = ("ph", "water_level")


@settings(max_examples=200, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.fixed_dictionaries(
            {},
            optional={
                "measurement": st.sampled_from([*MEASUREMENTS, "", "PH"]) | JSON,
                "minutes": st.floats() | st.integers(-(10**20), 10**20) | JSON,
                "reason": st.text(max_size=210) | JSON,
            },
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_shelve_body_gives_a_request_or_bad_input(body: bytes) -> None:
    try:
        asked = shelve_request(body, MEASUREMENTS, 480.0)
    except BadInput as exc:
        code = exc.code
        assert code == "invalid_body"
        return
    assert asked.measurement in MEASUREMENTS
    assert math.isfinite(asked.minutes)
    assert 0 < asked.minutes <= 480.0
    assert 0 < len(asked.reason) <= MAX_REASON


async def test_a_version_2_database_gains_the_shelves(tmp_path: Path) -> None:
    path = database_before(tmp_path / "gateway.sqlite3", "shelves", version=2)
    store = Store(path)
    assert (await store.open()).shelves == []
    shelf = Shelf("ph", 2000.0, "ana", "cleaning", 1000.0)
    try:
        await store.save([], shelf_events=[ShelfEvent("shelved", shelf, 1000.0, "ana")])
        [event] = await store.shelf_history(0.0, 10)
    finally:
        await store.close()
    assert (event["event"], event["by"], event["reason"]) == ("shelved", "ana", "cleaning")
    reopened = Store(path)
    try:
        assert (await reopened.open()).shelves == [shelf]
    finally:
        await reopened.close()
    db = sqlite3.connect(path)
    (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert version == str(SCHEMA_VERSION) == "3"
