"""The engine's "calibration" alerts: info, raised once a probe is past its due date,
beside the measurement's threshold alert, cleared by a calibration, quiet once dismissed."""

from __future__ import annotations

import itertools

from gateway.alerts.engine import AlertEngine
from gateway.alerts.model import Now, Rule

DAY = 86400.0


def engine() -> AlertEngine:
    counter = itertools.count(1)
    rule = Rule(low={}, high={"warning": 8.5}, stale_after=1e9)
    return AlertEngine({"ph": rule}, new_id=lambda: f"A-{next(counter)}", now=0.0)


def test_due_raises_an_info_beside_a_threshold_alert_and_a_calibration_clears_it() -> None:
    alerts = engine()
    assert alerts.calibration_due("ph", 10 * DAY, Now(0.0, 5 * DAY)) == []
    assert alerts.check_stale(Now(1.0, 9 * DAY)) == []
    [raised] = alerts.check_stale(Now(2.0, 10 * DAY))
    assert (raised.event, raised.alert.kind, raised.alert.severity) == (
        "raised",
        "calibration",
        "info",
    )
    assert alerts.check_stale(Now(3.0, 11 * DAY)) == []  # once
    [threshold] = alerts.evaluate("ph", 9.0, Now(4.0, 11 * DAY))
    assert {a.kind for a in alerts.active()} == {"calibration", "threshold"}
    assert alerts.summary() == {"total": 2, "critical": 0, "warning": 1, "info": 1}
    [cleared] = alerts.calibration_due("ph", 41 * DAY, Now(5.0, 11 * DAY))
    assert (cleared.event, cleared.alert.id) == ("cleared", raised.alert.id)
    assert [a.kind for a in alerts.active()] == ["threshold"]
    assert threshold.alert.id != raised.alert.id


def test_a_dismissed_due_alert_stays_quiet_until_the_date_moves() -> None:
    alerts = engine()
    [raised] = alerts.calibration_due("ph", 0.0, Now(0.0, DAY))  # overdue: raised at once
    change = alerts.dismiss(raised.alert.id, Now(1.0, DAY), by="ana")
    assert change is not None
    assert (change.event, change.alert.dismissed_by) == ("dismissed", "ana")
    assert alerts.check_stale(Now(2.0, 2 * DAY)) == []
    [again] = alerts.calibration_due("ph", DAY, Now(3.0, 3 * DAY))  # a new, past date
    assert again.event == "raised"
