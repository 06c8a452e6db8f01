"""The history API: readings in SQL buckets (checked against a brute-force sum), raw
readings, CSV that Python's csv module reads back, and strict since/until/bucket."""

from __future__ import annotations

import csv
import io
import math
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.model import Quality, Reading
from gateway.alerts import history
from gateway.alerts.store import Store
from gateway.alerts.tables import SCHEMA, SCHEMA_VERSION
from gateway.api import params
from gateway.broadcast import broadcast_alert_dismissed, broadcast_alert_update
from tests.gateway.alerting import active_id, unplug_ph
from tests.gateway.conftest import Client, gateway_of

DAY = 86400.0
T0 = 1_600_000_000.0  # 2020-09-13: far before anything the live simulators store

readings_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3 * DAY, allow_nan=False),
        st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)),
    ),
    max_size=120,
)


def brute_force(
    rows: list[tuple[float, float | None]], since: float, until: float, bucket: int
) -> list[tuple[float, float | None, float | None, float | None, int]]:
    grouped: dict[int, list[float | None]] = defaultdict(list)
    for at, value in rows:
        if since < at <= until:
            grouped[int(at / bucket)].append(value)
    out = []
    for k in sorted(grouped):
        good = [v for v in grouped[k] if v is not None]
        if good:
            out.append((k * bucket, min(good), sum(good) / len(good), max(good), len(good)))
        else:
            out.append((k * bucket, None, None, None, 0))
    return out


@settings(max_examples=150, deadline=None)
@given(
    rows=readings_strategy,
    bucket=st.integers(min_value=1, max_value=int(2 * DAY)),
    since=st.floats(min_value=0, max_value=DAY),
    length=st.floats(min_value=0, max_value=3 * DAY),
)
def test_buckets_match_a_brute_force_computation(
    rows: list[tuple[float, float | None]], bucket: int, since: float, length: float
) -> None:
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    db.executemany(
        "INSERT INTO readings VALUES (?, ?, ?, ?, 'bus')",
        [("ph", at, v, "good" if v is not None else "timeout") for at, v in rows]
        + [("temperature", at, 1.0, "good") for at, _ in rows],  # another measurement: not counted
    )
    got = history.buckets(db, "ph", since, since + length, bucket)
    expected = brute_force(rows, since, since + length, bucket)
    assert [(t, lo, hi, n) for t, lo, _, hi, n in got] == [
        (t, lo, hi, n) for t, lo, _, hi, n in expected
    ]
    for (*_, mean, _hi, _n), (*_, want, _hi2, _n2) in zip(got, expected, strict=True):
        assert (mean is None and want is None) or math.isclose(
            mean or 0.0, want or 0.0, rel_tol=1e-9, abs_tol=1e-6
        )


async def store_readings(client: Client, rows: list[tuple[float, float | None]]) -> None:
    await gateway_of(client).store.add_readings(
        Reading("ph", v, Quality.GOOD if v is not None else Quality.TIMEOUT, at, "ph-probe")
        for at, v in rows
    )


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_bucketed_history_as_json_and_csv(client: Client) -> None:
    rows = [(T0 + i * 10.0, 7.0 + i / 1000) for i in range(720)] + [(T0 + 7205.0, None)]
    await store_readings(client, rows)
    query = f"/api/sensors/history?measurement=ph&since={T0 - 1}&until={T0 + 3 * 3600}&bucket=3600"
    body = await (await client.get(query)).json()
    assert body["measurement"] == "ph"
    assert body["bucket"] == 3600
    expected = brute_force(rows, T0 - 1, T0 + 3 * 3600, 3600)
    assert [p["n"] for p in body["points"]] == [n for *_, n in expected]
    assert [(p["min"], p["max"]) for p in body["points"]] == [(e[1], e[3]) for e in expected]
    response = await client.get(query + "&format=csv")
    assert response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    table = parse_csv(await response.text())
    assert list(table[0]) == ["t", "min", "avg", "max", "n"]
    assert [float(r["avg"]) if r["avg"] else None for r in table] == [
        p["avg"] for p in body["points"]
    ]  # the same numbers, exactly
    assert table[0]["t"] == body["points"][0]["t"]


async def test_raw_readings_round_trip_through_csv(client: Client) -> None:
    rows = [(T0 + i, v) for i, v in enumerate([7.123456789012345, None, 0.1 + 0.2, -1e-300])]
    await store_readings(client, rows)
    response = await client.get(
        f"/api/sensors/history?measurement=ph&since={T0 - 1}&until={T0 + 10}",
        headers={"Accept": "text/csv"},
    )
    table = parse_csv(await response.text())
    assert [(float(r["value"]) if r["value"] else None) for r in table] == [v for _, v in rows]
    assert [r["quality"] for r in table] == ["good", "timeout", "good", "good"]
    as_json = await (
        await client.get(f"/api/sensors/history?measurement=ph&since={T0 - 1}&until={T0 + 10}")
    ).json()
    assert [r["timestamp"] for r in as_json] == [r["timestamp"] for r in table]


async def test_over_ten_thousand_raw_readings_ask_for_a_bucket(client: Client) -> None:
    await store_readings(client, [(T0 + i, 7.0) for i in range(10_001)])
    span = f"measurement=ph&since={T0 - 1}&until={T0 + DAY}"
    response = await client.get(f"/api/sensors/history?{span}")
    assert response.status == 422
    body = await response.json()
    assert body["error"] == "too_many_readings"
    assert "bucket" in body["detail"]
    assert len(await (await client.get(f"/api/sensors/history?{span}&limit=50")).json()) == 50
    bucketed = await (await client.get(f"/api/sensors/history?{span}&bucket=60")).json()
    assert sum(p["n"] for p in bucketed["points"]) == 10_001


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("bucket=0", "bucket"),
        ("bucket=-60", "bucket"),
        ("bucket=1.5", "bucket"),
        ("bucket=nan", "bucket"),
        ("bucket=" + "9" * 30, "bucket"),
        ("bucket=1&since=0", "bucket"),  # 1.7 billion buckets
        ("since=&bucket=60", "since"),
        ("since=2026-13-01T00:00:00Z", "since"),
        ("until=tomorrow", "until"),
        ("until=1e999", "until"),
        ("format=xml", "format"),
    ],
)
async def test_bad_history_input_is_422_naming_the_key(
    client: Client, query: str, key: str
) -> None:
    response = await client.get("/api/sensors/history?measurement=ph&" + query)
    assert response.status == 422, await response.text()
    assert (await response.json())["detail"].startswith(key + ":")


@pytest.mark.parametrize(
    "query", ["measurement=PH", "measurement=p%20h", "format=tsv", "severity=high", "event=Raised"]
)
async def test_bad_alert_history_input_is_422(client: Client, query: str) -> None:
    response = await client.get("/api/alerts/history?" + query)
    assert response.status == 422
    assert (await response.json())["detail"].startswith(query.split("=")[0] + ":")


async def test_alert_history_csv_round_trips_with_who_dismissed(client: Client) -> None:
    await unplug_ph(client)
    await broadcast_alert_update({"measurement": "ph", "value": 9.5})
    await broadcast_alert_dismissed(await active_id(client), by="ana")
    events: list[dict[str, Any]] = await (await client.get("/api/alerts/history?since=0")).json()
    response = await client.get("/api/alerts/history?since=0&format=csv&measurement=ph")
    table = parse_csv(await response.text())
    assert [(r["event"], r["by"]) for r in table][-2:] == [("raised", ""), ("dismissed", "ana")]
    assert [float(r["value"]) for r in table] == [e["value"] for e in events]
    assert [r["at"] for r in table] == [e["at"] for e in events]
    other = await client.get("/api/alerts/history?since=0&measurement=water_level")
    assert await other.json() == []
    before = await client.get(f"/api/alerts/history?since=0&until={T0}")
    assert await before.json() == []
    dismissals = await client.get("/api/alerts/history?since=0&event=dismissed&severity=critical")
    assert [(e["event"], e["by"]) for e in await dismissals.json()] == [("dismissed", "ana")]
    assert await (await client.get("/api/alerts/history?since=0&severity=info")).json() == []


@settings(max_examples=200, deadline=None)
@given(raw=st.text(), accept=st.text())
def test_history_parameters_give_a_value_or_our_error(raw: str, accept: str) -> None:
    for parse in (
        lambda: params.bucket(raw),
        lambda: params.output_format({"format": raw}, accept),
        lambda: params.output_format({}, accept),
        lambda: params.measurement_name(raw),
        lambda: params.event_filters({"severity": raw, "event": raw}),
    ):
        detail = ""
        try:
            parse()
        except params.BadInput as exc:
            detail = exc.detail
        assert detail == "" or detail.split(":")[0] in (
            "bucket",
            "format",
            "measurement",
            "severity",
        )


async def test_a_version_2_database_gets_the_covering_index(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        SCHEMA.replace("readings_measurement_at_value", "unused_new_index")  # not yet there
        .replace("DROP INDEX IF EXISTS readings_measurement_at;", "")
        .replace("(measurement, at, value)", "(measurement)")
        + "CREATE INDEX readings_measurement_at ON readings (measurement, at);"
        "DROP INDEX unused_new_index;"
        "INSERT INTO meta VALUES ('schema_version', '2');"
        "INSERT INTO readings VALUES ('ph', 10.0, 7.0, 'good', 'bus');"
    )
    old.close()
    store = Store(path)
    await store.open()
    try:
        assert await store.buckets("ph", 0.0, 100.0, 60) == [(0, 7.0, 7.0, 7.0, 1)]
    finally:
        await store.close()
    db = sqlite3.connect(path)
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    plan = db.execute(
        "EXPLAIN QUERY PLAN SELECT MIN(value) FROM readings WHERE measurement = 'ph' AND at > 0"
    ).fetchall()
    (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert "readings_measurement_at_value" in indexes
    assert "readings_measurement_at" not in indexes
    assert "COVERING INDEX readings_measurement_at_value" in str(plan)
    assert version == str(SCHEMA_VERSION) == "3"
