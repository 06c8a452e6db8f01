"""Shelving in the alert engine, on a stepped float clock: nothing raised while shelved,
the latest reading settled at once when the shelf ends."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.gateway.test_alerts import clocked, events, ph_rule


def test_a_shelved_crossing_raises_nothing_until_unshelved_then_at_once() -> None:
    eng = clocked(ph_rule(delay=3))
    assert eng.engine.shelve("ph")
    assert eng.feed(9.5, 9.5, 9.5, 9.5) == [[]] * 4
    assert eng.engine.summary()["total"] == 0
    changes = eng.engine.unshelve("ph", eng.moment)
    # the runs were counted while shelved: no three more readings are needed
    assert events(changes) == [("raised", "A-1", "critical")]
    assert eng.engine.summary() == {"total": 1, "critical": 1, "warning": 0, "info": 0}


def test_a_reading_back_to_normal_before_the_end_raises_nothing() -> None:
    eng = clocked(ph_rule())
    eng.engine.shelve("ph")
    eng.feed(9.5, 7.0)
    assert eng.engine.unshelve("ph", eng.moment) == []
    assert eng.engine.summary()["total"] == 0


def test_an_alert_active_when_shelved_leaves_the_counts_and_comes_back() -> None:
    eng = clocked(ph_rule())
    eng.read(8.7)
    eng.engine.shelve("ph")
    assert eng.engine.summary()["total"] == 0
    assert eng.engine.active() == []
    [(measurement, hidden)] = eng.engine.shelved().items()
    assert measurement == "ph"
    assert hidden is not None
    assert hidden.id == "A-1"
    assert eng.read(9.5) == []  # no escalation while shelved
    assert events(eng.engine.unshelve("ph", eng.moment)) == [("escalated", "A-1", "critical")]
    assert [a.id for a in eng.engine.active()] == ["A-1"]


def test_an_alert_that_cleared_while_shelved_clears_on_unshelve() -> None:
    eng = clocked(ph_rule())
    eng.read(8.7)
    eng.engine.shelve("ph")
    eng.read(7.0)
    assert events(eng.engine.unshelve("ph", eng.moment)) == [("cleared", "A-1", "warning")]
    assert eng.engine.summary()["total"] == 0


def test_a_shelved_probe_going_silent_is_not_offline_until_the_shelf_ends() -> None:
    eng = clocked(ph_rule(stale_after=5.0))
    eng.read(7.0)
    eng.engine.shelve("ph")
    eng.now += 60.0
    assert eng.stale() == []
    assert eng.engine.unshelve("ph", eng.moment) == []  # settles the last value: normal
    assert [c.alert.kind for c in eng.stale()] == ["offline"]


def test_unshelving_twice_or_an_unknown_measurement_changes_nothing() -> None:
    eng = clocked(ph_rule())
    assert not eng.engine.shelve("turbidity")
    assert eng.engine.unshelve("ph", eng.moment) == []
    eng.engine.shelve("ph")
    assert eng.engine.unshelve("ph", eng.moment) == []  # no reading yet
    assert eng.engine.unshelve("ph", eng.moment) == []


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.floats(3.0, 11.0), min_size=2, max_size=12))
def test_while_shelved_nothing_changes_and_the_end_raises_what_the_last_readings_cross(
    values: list[float],
) -> None:
    eng = clocked(ph_rule(delay=2))
    eng.engine.shelve("ph")
    assert [eng.read(value) for value in values] == [[]] * len(values)
    assert eng.engine.summary()["total"] == 0
    changes = eng.engine.unshelve("ph", eng.moment)
    last_two = values[-2:]
    crossed = all(v < 6.0 for v in last_two) or all(v > 8.5 for v in last_two)
    assert [c.event for c in changes] == (["raised"] if crossed else [])
