"""The alert engine on a stepped float clock: readings in, changes out, no sleeps."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.alerts.engine import AlertEngine
from gateway.alerts.model import SEVERITIES, Alert, Change, Latch, Now, Rule, rule_from_bounds

STEP = 2.0  # seconds between readings
PH = {"critical_low": 5.0, "warning_low": 6.0, "warning_high": 8.5, "critical_high": 9.0}


def ph_rule(
    *, hysteresis: float = 0.0, delay: int = 1, stale_after: float = 30.0, **bounds: float
) -> Rule:
    return rule_from_bounds(
        {**PH, **bounds}, hysteresis=hysteresis, delay=delay, stale_after=stale_after
    )


@dataclass
class Clocked:
    """An engine with ids "A-1", "A-2", ... whose clock moves STEP per reading.

    ``now`` is the monotonic clock; the wall clock is ``now + wall_offset``, so a
    test steps the wall clock alone by changing the offset (NTP at boot)."""

    engine: AlertEngine
    now: float = 0.0
    changes: list[Change] = field(default_factory=list)
    wall_offset: float = 0.0

    @property
    def moment(self) -> Now:
        return Now(self.now, self.now + self.wall_offset)

    def read(self, value: float | None, measurement: str = "ph") -> list[Change]:
        self.now += STEP
        changes = self.engine.evaluate(measurement, value, self.moment)
        self.changes += changes
        return changes

    def feed(self, *values: float | None, measurement: str = "ph") -> list[list[Change]]:
        return [self.read(value, measurement) for value in values]

    def stale(self) -> list[Change]:
        changes = self.engine.check_stale(self.moment)
        self.changes += changes
        return changes

    def dismiss(self, alert_id: str, by: str = "operator") -> Change | None:
        change = self.engine.dismiss(alert_id, self.moment, by)
        if change is not None:
            self.changes.append(change)
        return change


def clocked(rules: Rule | Mapping[str, Rule], *, first_id: int = 1, now: float = 0.0) -> Clocked:
    counter = itertools.count(first_id)
    engine = AlertEngine(
        {"ph": rules} if isinstance(rules, Rule) else rules,
        new_id=lambda: f"A-{next(counter)}",
        now=now,
    )
    return Clocked(engine, now)


def events(changes: list[Change]) -> list[tuple[str, str, str]]:
    return [(c.event, c.alert.id, c.alert.severity) for c in changes]


# delay and strict bounds -------------------------------------------------------------


def test_delay_three_raises_on_the_third_consecutive_reading() -> None:
    eng = clocked(ph_rule(delay=3))
    assert eng.feed(7.0, 8.7, 8.8) == [[], [], []]
    (raised,) = eng.read(8.9)
    assert raised.event == "raised"
    assert raised.at == eng.now == 8.0
    assert raised.alert == Alert(
        "A-1", "ph", "threshold", "high", "warning", "active", 8.9, 8.5, 8.0, 8.0
    )
    assert eng.engine.summary() == {"total": 1, "critical": 0, "warning": 1, "info": 0}


def test_a_reading_equal_to_a_bound_is_not_beyond_it() -> None:
    eng = clocked(ph_rule())
    assert eng.feed(8.5, 6.0, 8.5) == [[], [], []]
    assert events(eng.read(9.0)) == [("raised", "A-1", "warning")]  # not critical
    assert events(eng.read(5.0)) == [("cleared", "A-1", "warning"), ("raised", "A-2", "warning")]


def test_a_one_sample_spike_raises_nothing() -> None:
    eng = clocked(ph_rule(delay=2))
    assert eng.feed(7.0, 9.5, 7.0, 4.0, 7.0, 8.7, 7.2) == [[]] * 7
    assert eng.engine.summary()["total"] == 0


def test_bad_readings_neither_count_toward_nor_break_a_run() -> None:
    """A None reading is skipped: the run of good readings around it goes on."""
    eng = clocked(ph_rule(delay=3))
    assert eng.feed(8.7, None, 8.7, None, None) == [[]] * 5
    (raised,) = eng.read(8.7)  # the third good reading beyond, two Nones in between
    assert (raised.event, raised.alert.id) == ("raised", "A-1")
    assert eng.feed(None, None, None) == [[]] * 3  # nor do they clear anything
    assert [a.id for a in eng.engine.active()] == ["A-1"]


# escalation, hysteresis ----------------------------------------------------------------


def test_escalation_and_deescalation_keep_the_id() -> None:
    eng = clocked(ph_rule(hysteresis=0.2, delay=2))
    assert eng.feed(8.7) == [[]]
    assert events(eng.read(8.7)) == [("raised", "A-1", "warning")]
    assert eng.read(9.5) == []  # escalation waits for `delay` readings too
    (up,) = eng.read(9.6)
    assert (up.event, up.alert.id, up.alert.severity) == ("escalated", "A-1", "critical")
    assert (up.alert.bound, up.alert.value, up.alert.state) == (9.0, 9.6, "active")
    assert eng.engine.summary() == {"total": 1, "critical": 1, "warning": 0, "info": 0}
    assert eng.read(8.85) == []  # inside 9.0 but not by more than the hysteresis
    (down,) = eng.read(8.7)  # the first reading inside by more: no delay
    assert (down.event, down.alert.id, down.alert.severity) == ("deescalated", "A-1", "warning")
    assert (down.alert.bound, down.alert.value) == (8.5, 8.7)
    assert down.alert.raised_at == up.alert.raised_at == 4.0
    assert eng.engine.summary() == {"total": 1, "critical": 0, "warning": 1, "info": 0}


def test_a_sudden_critical_raises_critical_at_once() -> None:
    eng = clocked(ph_rule(delay=2))
    assert eng.feed(9.5) == [[]]
    assert events(eng.read(9.5)) == [("raised", "A-1", "critical")]


@pytest.mark.parametrize(
    ("beyond", "kept", "at_hysteresis", "cleared"),
    [(8.6, 8.4, 8.3, 8.29), (5.9, 6.1, 6.2, 6.21)],
    ids=["high", "low"],
)
def test_hysteresis(beyond: float, kept: float, at_hysteresis: float, cleared: float) -> None:
    eng = clocked(ph_rule(hysteresis=0.2))
    assert events(eng.read(beyond)) == [("raised", "A-1", "warning")]
    assert eng.feed(kept, at_hysteresis, kept) == [[], [], []]
    (done,) = eng.read(cleared)
    assert (done.event, done.alert.id, done.alert.state) == ("cleared", "A-1", "cleared")
    assert (done.alert.value, done.at, done.alert.updated_at) == (cleared, eng.now, eng.now)
    assert not done.unlatched
    assert eng.engine.active() == []
    assert eng.engine.summary()["total"] == 0


def test_critical_clears_straight_to_normal() -> None:
    eng = clocked(ph_rule(hysteresis=0.2))
    assert events(eng.read(9.5)) == [("raised", "A-1", "critical")]
    assert events(eng.read(7.0)) == [("cleared", "A-1", "critical")]


def test_direction_flip_clears_then_raises_low_after_delay() -> None:
    eng = clocked(ph_rule(hysteresis=0.2, delay=2))
    eng.feed(8.7, 8.7)
    assert events(eng.read(5.5)) == [("cleared", "A-1", "warning")]
    assert eng.engine.active() == []
    (raised,) = eng.read(5.5)
    assert (raised.event, raised.alert.id, raised.alert.direction) == ("raised", "A-2", "low")
    assert (raised.alert.severity, raised.alert.bound) == ("warning", 6.0)


def test_info_bounds_rank_below_warning() -> None:
    rule = ph_rule(hysteresis=0.1, info_high=8.0, info_low=6.5)
    eng = clocked({"ph": rule, "tank": rule})
    (info,) = eng.read(8.2)
    assert (info.event, info.alert.severity, info.alert.bound) == ("raised", "info", 8.0)
    assert events(eng.read(6.4, measurement="tank")) == [("raised", "A-2", "info")]
    assert eng.engine.summary() == {"total": 2, "critical": 0, "warning": 0, "info": 2}
    (up,) = eng.read(8.7)
    assert (up.event, up.alert.id, up.alert.severity, up.alert.bound) == (
        "escalated",
        "A-1",
        "warning",
        8.5,
    )
    assert eng.engine.summary() == {"total": 2, "critical": 0, "warning": 1, "info": 1}
    assert events(eng.read(8.3)) == [("deescalated", "A-1", "info")]
    assert events(eng.read(7.8)) == [("cleared", "A-1", "info")]
    assert eng.engine.summary() == {"total": 1, "critical": 0, "warning": 0, "info": 1}


# stale -----------------------------------------------------------------------------------


def test_stale_raises_one_offline_warning_and_the_next_good_reading_clears_it() -> None:
    eng = clocked(ph_rule(stale_after=30.0))
    eng.read(7.0)  # the last good reading, at 2.0
    raised: list[Change] = []
    while eng.now < 100.0:
        eng.read(None)  # bad quality does not reset the stale clock
        raised += eng.stale()
        raised += eng.stale()
    (offline,) = raised
    assert offline.at == 34.0  # first check more than 30 s after the reading at 2.0
    assert (offline.event, offline.alert.kind, offline.alert.severity) == (
        "raised",
        "offline",
        "warning",
    )
    assert (offline.alert.direction, offline.alert.value, offline.alert.bound) == (None, None, None)
    assert eng.engine.summary() == {"total": 1, "critical": 0, "warning": 1, "info": 0}
    (cleared,) = eng.read(7.1)
    assert (cleared.event, cleared.alert.id, cleared.alert.state) == ("cleared", "A-1", "cleared")
    assert eng.stale() == []
    assert eng.engine.active() == []


def test_stale_clock_starts_at_construction() -> None:
    eng = clocked(ph_rule(stale_after=10.0), now=100.0)
    eng.now = 110.0
    assert eng.stale() == []
    eng.now = 110.5
    assert events(eng.stale()) == [("raised", "A-1", "warning")]


def test_a_good_reading_beyond_a_bound_replaces_offline_by_a_threshold_alert() -> None:
    eng = clocked(ph_rule(stale_after=5.0))
    eng.feed(None, None, None)
    assert events(eng.stale()) == [("raised", "A-1", "warning")]
    assert events(eng.read(9.5)) == [("cleared", "A-1", "warning"), ("raised", "A-2", "critical")]


def test_no_offline_while_a_threshold_alert_is_active() -> None:
    eng = clocked(ph_rule(stale_after=5.0))
    eng.read(8.7)
    eng.feed(None, None, None, None)
    assert eng.stale() == []
    assert [(a.id, a.kind) for a in eng.engine.active()] == [("A-1", "threshold")]


def test_a_dismissed_offline_alert_is_latched_until_the_next_good_reading() -> None:
    eng = clocked(ph_rule(stale_after=5.0))
    eng.feed(None, None, None)
    (offline,) = eng.stale()
    dismissed = eng.dismiss(offline.alert.id)
    assert dismissed is not None
    assert dismissed.latch is not None
    eng.feed(None, None)
    assert eng.stale() == []
    (released,) = eng.read(7.0)
    assert (released.event, released.alert.id, released.unlatched) == ("cleared", "A-1", True)
    assert eng.engine.latches() == []
    eng.feed(None, None, None)
    assert events(eng.stale()) == [("raised", "A-2", "warning")]


# the two clocks --------------------------------------------------------------------------


def test_a_wall_clock_step_forward_raises_no_offline() -> None:
    eng = clocked(ph_rule(stale_after=30.0))
    eng.read(7.0)
    eng.wall_offset += 3600.0  # NTP steps the clock at boot
    assert eng.stale() == []
    eng.read(7.0)
    eng.wall_offset += 86400.0
    assert eng.stale() == []
    assert eng.changes == []


def test_a_wall_clock_step_back_does_not_delay_offline() -> None:
    eng = clocked(ph_rule(stale_after=5.0))
    eng.read(7.0)
    eng.wall_offset -= 3600.0
    eng.now += 5.5
    (offline,) = eng.stale()
    assert offline.alert.kind == "offline"


def test_changes_are_stamped_with_the_wall_clock() -> None:
    eng = clocked(ph_rule(stale_after=5.0))
    eng.wall_offset = 1.7e9
    (raised,) = eng.read(9.5)
    assert raised.at == raised.alert.raised_at == raised.alert.updated_at == 1.7e9 + STEP
    dismissed = eng.dismiss(raised.alert.id)
    assert dismissed is not None
    assert dismissed.at == dismissed.alert.updated_at == 1.7e9 + STEP
    eng.now += 6.0
    (offline,) = eng.stale()  # the latch of a threshold alert does not stop an offline
    assert offline.at == offline.alert.raised_at == 1.7e9 + STEP + 6.0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(5.0, 7.0),  # a good reading, inside every bound
            st.floats(0.0, 0.999),  # the monotonic gap before it, as a share of stale_after
            st.floats(-1e7, 1e7),  # the wall clock's step in that gap, either way
            st.none() | st.floats(0.0, 1.0),  # a stale check somewhere in the gap
        ),
        min_size=1,
        max_size=50,
    ),
    st.floats(1.0, 120.0),
)
def test_no_offline_while_good_readings_come_within_stale_after_whatever_the_wall_clock(
    steps: list[tuple[float, float, float, float | None]], stale_after: float
) -> None:
    rule = ph_rule(stale_after=stale_after, critical_low=4.0, warning_low=4.5)
    engine = AlertEngine({"ph": rule}, new_id=lambda: "A-1", now=0.0)
    monotonic, wall, changes = 0.0, 1.7e9, []
    for value, share, wall_step, check in steps:
        gap = share * stale_after
        if check is not None:
            changes += engine.check_stale(Now(monotonic + gap * check, wall + wall_step * check))
        monotonic, wall = monotonic + gap, wall + wall_step
        changes += engine.evaluate("ph", value, Now(monotonic, wall))
    assert changes == []


# dismissal and latching --------------------------------------------------------------


def test_dismiss_latches_until_the_reading_returns_to_normal() -> None:
    eng = clocked(ph_rule(hysteresis=0.2))
    eng.read(8.7)
    dismissed = eng.dismiss("A-1", by="ana")
    assert dismissed is not None
    assert (dismissed.event, dismissed.alert.state, dismissed.alert.dismissed_by) == (
        "dismissed",
        "dismissed",
        "ana",
    )
    assert dismissed.latch == Latch(dismissed.alert)
    assert eng.engine.latches() == [dismissed.latch]
    assert eng.engine.summary() == {"total": 0, "critical": 0, "warning": 0, "info": 0}
    assert eng.feed(8.7, 8.9, 8.6, 8.4, 8.3, 8.8) == [[]] * 6  # beyond, or within hysteresis
    (released,) = eng.read(8.29)
    assert (released.event, released.alert.id, released.unlatched) == ("cleared", "A-1", True)
    assert (released.alert.state, released.at) == ("dismissed", eng.now)
    assert eng.engine.latches() == []
    assert eng.engine.summary()["total"] == 0
    assert events(eng.read(8.6)) == [("raised", "A-2", "warning")]


def test_a_latched_warning_still_lets_a_critical_through_with_a_new_id() -> None:
    eng = clocked(ph_rule(hysteresis=0.2, delay=2))
    eng.feed(8.7, 8.7)
    assert eng.dismiss("A-1") is not None
    assert eng.feed(8.8, 8.8, 9.5) == [[]] * 3  # a critical also waits for `delay`
    unlatched, raised = eng.read(9.5)
    assert (unlatched.event, unlatched.alert.id, unlatched.unlatched) == ("cleared", "A-1", True)
    assert (raised.event, raised.alert.id, raised.alert.severity) == ("raised", "A-2", "critical")
    assert eng.engine.summary() == {"total": 1, "critical": 1, "warning": 0, "info": 0}
    assert eng.engine.latches() == []


def test_a_latch_holds_only_in_its_own_direction() -> None:
    eng = clocked(ph_rule())
    eng.read(8.7)
    assert eng.dismiss("A-1") is not None
    assert events(eng.read(5.5)) == [("cleared", "A-1", "warning"), ("raised", "A-2", "warning")]
    assert [c.unlatched for c in eng.changes[-2:]] == [True, False]


def test_every_dropped_latch_is_announced_by_a_change() -> None:
    """Replaying the changes (as the store does) gives the engine's latches."""
    eng = clocked(ph_rule(hysteresis=0.2))
    eng.read(8.7)
    assert eng.dismiss("A-1") is not None
    eng.feed(9.5, 8.7, 7.0)  # A-2 raised critical, de-escalates, clears
    assert eng.engine.latches() == []
    assert replayed_latches(eng.changes) == {}


def replayed_latches(changes: list[Change]) -> dict[str, str]:
    """measurement -> dismissed alert id, as the store's ``latches`` table holds them."""
    latches: dict[str, str] = {}
    for change in changes:
        if change.unlatched:
            latches = {m: i for m, i in latches.items() if i != change.alert.id}
        if change.latch is not None:
            latches[change.alert.measurement] = change.alert.id
    return latches


def test_dismiss_of_an_unknown_or_closed_id_returns_none() -> None:
    eng = clocked(ph_rule())
    eng.read(8.7)
    assert eng.dismiss("A-99") is None
    assert eng.dismiss("A-1") is not None
    assert eng.dismiss("A-1") is None
    eng.read(7.0)
    assert eng.dismiss("A-1") is None


# restart -------------------------------------------------------------------------------


def test_restore_continues_after_a_restart() -> None:
    rules = {"ph": ph_rule(hysteresis=0.2, delay=2), "tank": ph_rule(hysteresis=0.2, delay=2)}
    live = clocked(rules)
    live.feed(8.7, 8.7)  # A-1 warning high, active
    live.feed(5.5, 5.5, measurement="tank")  # A-2, dismissed below: latched
    assert live.dismiss("A-2") is not None
    live.feed(5.4, measurement="tank")

    restarted = clocked(rules, first_id=3, now=live.now)
    restarted.engine.restore(live.engine.active(), live.engine.latches())
    assert restarted.engine.active() == live.engine.active()
    assert restarted.engine.latches() == live.engine.latches()
    assert restarted.engine.summary() == live.engine.summary()

    script: list[tuple[str, float | None]] = [
        ("tank", 5.5), ("tank", 5.3), ("ph", 9.5), ("ph", None), ("ph", 9.4), ("ph", 8.6),
        ("tank", 6.3), ("tank", 5.5), ("tank", 5.5), ("ph", 7.0), ("ph", 8.9), ("ph", 8.9),
    ]  # fmt: skip
    for measurement, value in script:
        assert restarted.read(value, measurement) == live.read(value, measurement)
    assert events(restarted.changes) == [
        ("escalated", "A-1", "critical"),
        ("deescalated", "A-1", "warning"),
        ("cleared", "A-2", "warning"),  # the tank's latch, released
        ("raised", "A-3", "warning"),
        ("cleared", "A-1", "warning"),
        ("raised", "A-4", "warning"),
    ]


def test_restore_keeps_only_active_alerts_of_watched_measurements() -> None:
    eng = clocked(ph_rule())
    alert = Alert("A-7", "ph", "threshold", "high", "warning", "active", 8.7, 8.5, 1.0, 1.0)
    eng.engine.restore(
        [alert, Alert("A-8", "gone", "threshold", "high", "warning", "active", 1, 0, 1, 1)],
        [Latch(Alert("A-9", "gone", "offline", None, "warning", "dismissed", None, None, 1, 1))],
    )
    assert eng.engine.active() == [alert]
    assert eng.engine.latches() == []
    assert events(eng.read(7.0)) == [("cleared", "A-7", "warning")]


# ids -----------------------------------------------------------------------------------


def test_ids_are_never_reused_over_a_long_random_run() -> None:
    rng = random.Random(20240611)
    rule = ph_rule(hysteresis=0.2, delay=2, stale_after=20.0, info_high=8.0)
    eng = clocked({"ph": rule, "tank": rule})
    for _ in range(5000):
        measurement = rng.choice(["ph", "tank"])
        eng.read(rng.choice([None, rng.uniform(4.0, 10.0), 7.0]), measurement)
        if rng.random() < 0.05 and (active := eng.engine.active()):
            eng.dismiss(rng.choice(active).id)
        if rng.random() < 0.1:
            eng.now += rng.uniform(0, 30)
            eng.stale()
    raised = [c.alert.id for c in eng.changes if c.event == "raised"]
    assert len(raised) > 300
    assert len(set(raised)) == len(raised)


# properties ----------------------------------------------------------------------------

MEASUREMENTS = ("a", "b")


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    """Bounds valid as the config checks them: lows below highs, ordered by severity."""
    lows = sorted(draw(st.lists(st.floats(0.0, 4.9).map(round1), min_size=3, max_size=3)))
    highs = sorted(draw(st.lists(st.floats(5.0, 10.0).map(round1), min_size=3, max_size=3)))
    bounds: dict[str, float | None] = {}
    for severity, low, high in zip(SEVERITIES, lows, reversed(highs), strict=True):
        bounds[f"{severity}_low"] = draw(st.sampled_from([low, None]))
        bounds[f"{severity}_high"] = draw(st.sampled_from([high, None]))
    return rule_from_bounds(
        bounds,
        hysteresis=draw(st.sampled_from([0.0, 0.1, 0.25, 1.0])),
        delay=draw(st.integers(1, 4)),
        stale_after=draw(st.floats(5.0, 60.0)),
    )


def round1(x: float) -> float:
    return round(x, 1)


Step = tuple[str, str, float | None, float, int]  # action, measurement, value, time step, times


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Rule], list[Step]]:
    watched = draw(st.sampled_from([MEASUREMENTS[:1], MEASUREMENTS]))
    rule_map = {m: draw(rules()) for m in watched}
    edges = {b for r in rule_map.values() for b in (*r.low.values(), *r.high.values())}
    near = sorted({round(b + d, 2) for b in edges for d in (-0.3, -0.1, 0.0, 0.1, 0.3)})
    value = st.one_of(
        st.none(),
        st.floats(-1.0, 11.0),
        st.sampled_from(near or [7.0]),  # on a bound, or within a hysteresis of one
        st.sampled_from([5.0, 7.0, 7.5]),  # inside most rules' bounds
    )
    step = st.tuples(
        st.sampled_from(["read"] * 6 + ["dismiss", "stale"]),
        st.sampled_from(watched),
        value,
        st.floats(0.5, 40.0),
        st.integers(1, 5),  # the same reading repeated: runs reach the delay
    )
    return rule_map, draw(st.lists(step, min_size=5, max_size=60))


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_counts_match_active_alerts_and_cleared_stays_cleared(
    scenario: tuple[dict[str, Rule], list[Step]], rng: random.Random
) -> None:
    rule_map, steps = scenario
    counter = itertools.count(1)
    engine = AlertEngine(rule_map, new_id=lambda: f"A-{next(counter)}", now=0.0)
    now = 0.0
    raised: list[str] = []
    cleared: set[str] = set()
    record: dict[str, Alert] = {}  # the active alerts, as a client replaying the changes sees
    for action, measurement, value, dt, times in steps:
        for _ in range(times if action == "read" else 1):
            now += dt
            changes: list[Change] = []
            if action == "read":
                changes = engine.evaluate(measurement, value, Now(now, now))
            elif action == "stale":
                changes = engine.check_stale(Now(now, now))
            elif active := engine.active():
                change = engine.dismiss(rng.choice(active).id, Now(now, now), "op")
                assert change is not None
                changes = [change]
            for change in changes:
                follow(change, raised, cleared, record)
            check_invariants(engine, cleared, record)
    assert len(set(raised)) == len(raised)


def follow(change: Change, raised: list[str], cleared: set[str], record: dict[str, Alert]) -> None:
    """Check one change against what came before, and apply it to ``record``."""
    alert = change.alert
    assert alert.id not in cleared, f"{alert.id} changed after it was cleared"
    if change.event == "raised":
        assert alert.id not in record
        raised.append(alert.id)
    if change.unlatched:
        assert (change.event, alert.state) == ("cleared", "dismissed")
    elif change.event in ("cleared", "dismissed"):
        assert alert.state == change.event
        assert record.pop(alert.id).severity == alert.severity
        if change.event == "cleared":
            cleared.add(alert.id)
    else:
        assert alert.state == "active"
        assert change.event == "raised" or alert.id in record
        record[alert.id] = alert


def check_invariants(engine: AlertEngine, cleared: set[str], record: dict[str, Alert]) -> None:
    active = engine.active()
    summary = engine.summary()
    assert summary["total"] == len(active)
    for severity in SEVERITIES:
        assert summary[severity] == sum(a.severity == severity for a in active)
    assert all(a.state == "active" for a in active)
    assert not {a.id for a in active} & cleared
    assert len({a.measurement for a in active}) == len(active)  # one per measurement
    assert sorted(active, key=lambda a: a.id) == sorted(record.values(), key=lambda a: a.id)
