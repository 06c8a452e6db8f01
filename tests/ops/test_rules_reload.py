"""AlertEngine.set_rules: new bounds applied in place (a reload), alerts and dismissals kept."""

from __future__ import annotations

import itertools

from gateway.alerts.engine import AlertEngine
from gateway.alerts.model import Now, Rule

WARN_8_5 = Rule(low={}, high={"warning": 8.5})
WARN_7 = Rule(low={}, high={"warning": 7.0})


def engine(rules: dict[str, Rule]) -> AlertEngine:
    ids = itertools.count(1)
    return AlertEngine(rules, new_id=lambda: f"A-{next(ids)}", now=0.0)


def test_a_lowered_bound_raises_at_once_on_the_latest_reading() -> None:
    alerts = engine({"ph": WARN_8_5})
    assert alerts.evaluate("ph", 7.25, Now(1.0, 1.0)) == []
    [change] = alerts.set_rules({"ph": WARN_7}, {"ph": 7.25}, Now(2.0, 2.0))
    assert (change.event, change.alert.severity, change.alert.bound) == ("raised", "warning", 7.0)


def test_unchanged_rules_keep_the_active_alert_untouched() -> None:
    alerts = engine({"ph": WARN_7, "temperature": Rule(low={}, high={})})
    [raised] = alerts.evaluate("ph", 7.25, Now(1.0, 1.0))
    changes = alerts.set_rules(
        {"ph": WARN_7, "temperature": Rule(low={}, high={"warning": 30.0})},
        {"ph": 7.25, "temperature": 20.0},
        Now(2.0, 2.0),
    )
    assert changes == []
    assert alerts.active() == [raised.alert]


def test_a_raised_bound_clears_and_a_dropped_measurement_ends_its_alert() -> None:
    alerts = engine({"ph": WARN_7, "conductivity": Rule(low={}, high={"warning": 100.0})})
    alerts.evaluate("ph", 7.25, Now(1.0, 1.0))
    [ec] = alerts.evaluate("conductivity", 466.0, Now(1.0, 1.0))
    changes = alerts.set_rules({"ph": WARN_8_5}, {"ph": 7.25}, Now(2.0, 2.0))
    assert sorted((c.alert.measurement, c.event) for c in changes) == [
        ("conductivity", "cleared"),
        ("ph", "cleared"),
    ]
    assert alerts.active() == []
    assert alerts.evaluate("conductivity", 466.0, Now(3.0, 3.0)) == []  # no longer watched
    assert ec.alert.id not in {a.id for a in alerts.active()}


def test_a_dismissal_stays_latched_across_a_reload() -> None:
    alerts = engine({"ph": WARN_7})
    [raised] = alerts.evaluate("ph", 7.25, Now(1.0, 1.0))
    assert alerts.dismiss(raised.alert.id, Now(1.5, 1.5)) is not None
    changes = alerts.set_rules({"ph": Rule(low={}, high={"warning": 7.1})}, {"ph": 7.25},
                               Now(2.0, 2.0))  # fmt: skip
    assert changes == []  # still beyond, still dismissed: nothing raised again
    assert len(alerts.latches()) == 1
