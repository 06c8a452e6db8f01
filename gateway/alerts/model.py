"""What the alert engine reads and writes: rules, alerts, latches and changes, as plain
frozen data, and an alert as the API lists it. No I/O, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.timestamps import utc_timestamp

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
RANK = {"info": 1, "warning": 2, "critical": 3}
Direction = Literal["low", "high"]
Event = Literal["raised", "escalated", "deescalated", "dismissed", "cleared"]


@dataclass(frozen=True, slots=True)
class Now:
    """One moment on both clocks (``Now(time.monotonic(), time.time())``)."""

    monotonic: float  # durations: the stale check
    wall: float  # stamps: raised_at, updated_at, Change.at (epoch seconds)


@dataclass(frozen=True, slots=True)
class Rule:
    """The bounds of one measurement (``[thresholds.<measurement>]``)."""

    low: Mapping[str, float]  # severity -> bound, e.g. {"critical": 5.0, "warning": 6.0}
    high: Mapping[str, float]
    hysteresis: float = 0.0
    delay: int = 1
    stale_after: float = 30.0

    def bound(self, direction: Direction, severity: str) -> float | None:
        return (self.low if direction == "low" else self.high).get(severity)

    def beyond(self, value: float, direction: Direction, severity: str) -> bool:
        bound = self.bound(direction, severity)
        if bound is None:
            return False
        return value < bound if direction == "low" else value > bound

    def held(self, value: float, direction: Direction, ceiling: str) -> Severity | None:
        """The highest severity up to ``ceiling`` not yet left by more than the hysteresis."""
        for severity in SEVERITIES:
            bound = self.bound(direction, severity)
            if RANK[severity] > RANK[ceiling] or bound is None:
                continue
            if direction == "low" and value <= bound + self.hysteresis:
                return severity
            if direction == "high" and value >= bound - self.hysteresis:
                return severity
        return None


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    measurement: str
    kind: Literal["threshold", "offline", "calibration"]
    direction: Direction | None
    severity: Severity
    state: Literal["active", "dismissed", "cleared"]
    value: float | None  # the reading at the last change
    bound: float | None
    raised_at: float
    updated_at: float
    dismissed_by: str | None = None


@dataclass(frozen=True, slots=True)
class Latch:
    """A dismissal that holds until the measurement returns to normal."""

    alert: Alert  # the dismissed alert

    @property
    def measurement(self) -> str:
        return self.alert.measurement

    @property
    def kind(self) -> str:
        return self.alert.kind

    @property
    def direction(self) -> Direction | None:
        return self.alert.direction

    @property
    def severity(self) -> Severity:
        return self.alert.severity


@dataclass(frozen=True, slots=True)
class Change:
    event: Event
    alert: Alert  # as it is after the change
    at: float  # wall clock
    latch: Latch | None = None  # set by a dismissal: it holds until return to normal
    unlatched: bool = False  # a dismissed alert whose condition returned to normal


def rule_from_bounds(
    bounds: Mapping[str, float | None], *, hysteresis: float, delay: int, stale_after: float
) -> Rule:
    """A Rule from ``critical_low``-style keys (the config's names)."""
    low: dict[str, float] = {s: v for s in SEVERITIES if (v := bounds.get(f"{s}_low")) is not None}
    high: dict[str, float] = {
        s: v for s in SEVERITIES if (v := bounds.get(f"{s}_high")) is not None
    }
    return Rule(low, high, hysteresis, delay, stale_after)


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as ``GET /api/alerts`` lists it (and MQTT events carry it)."""
    return {
        "id": alert.id,
        "measurement": alert.measurement,
        "severity": alert.severity,
        "state": alert.state,
        "value": alert.value,
        "bound": alert.bound,
        "raised_at": utc_timestamp(alert.raised_at),
        "kind": alert.kind,
        "direction": alert.direction,
        "updated_at": utc_timestamp(alert.updated_at),
    }
