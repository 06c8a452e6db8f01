"""The threshold engine: readings in, alert changes out. Pure: no I/O, no clock.

Time comes in as a :class:`Now`: the monotonic clock measures every duration
(``stale_after``), the wall clock only stamps what is told and stored. A wall
clock that steps (NTP at boot on a box without an RTC) raises nothing.

Per measurement there is at most one alert at a time. An alert is raised when
``delay`` consecutive good readings lie beyond a bound; it escalates (info ->
warning -> critical) when ``delay`` readings lie beyond a higher bound, and
de-escalates or clears, keeping its id, only once the reading is back inside
the bound by more than ``hysteresis``. A measurement with no good reading for
``stale_after`` seconds raises a warning "offline" alert, cleared by the next
good reading. Readings of bad quality are not values: they neither count
toward a raise nor clear anything. A probe past its calibration date raises an
info "calibration" alert, beside any other of its measurement, cleared by the
next calibration (:meth:`AlertEngine.calibration_due`).

A dismissed alert whose condition still holds is latched: the engine raises
nothing for that measurement at that severity or below until the reading has
returned to normal. Crossing a higher bound than the one dismissed raises a
new alert: an operator who dismissed a warning must still hear of a critical.

A shelved measurement (ISA-18.2: a probe being cleaned or calibrated) raises
nothing and its alert, if it has one, leaves the counts; the engine still counts
its readings, so that :meth:`AlertEngine.unshelve` settles it at once on the
latest reading: a bound still crossed raises then, without waiting for ``delay``
more readings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gateway.alerts.model import (
    RANK,
    SEVERITIES,
    Alert,
    Change,
    Direction,
    Event,
    Latch,
    Now,
    Rule,
    Severity,
)


@dataclass
class _Track:
    """What the engine remembers of one measurement."""

    rule: Rule
    last_good: float  # monotonic
    alert: Alert | None = None
    latch: Latch | None = None
    runs: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    value: float | None = None  # the latest good reading
    shelved: bool = False


class AlertEngine:
    def __init__(self, rules: Mapping[str, Rule], *, new_id: Callable[[], str], now: float) -> None:
        """``rules`` per watched measurement; ``now`` (monotonic) starts every stale clock."""
        self._new_id = new_id
        self._tracks = {m: _Track(rule, now) for m, rule in rules.items()}
        self._due: dict[str, float] = {}  # measurement -> wall time its calibration is due
        self._calibration: dict[str, Alert] = {}  # active "calibration" alerts
        self._quiet: dict[str, float] = {}  # dismissed: not again until the due date moves

    def restore(self, alerts: Iterable[Alert], latches: Iterable[Latch]) -> None:
        """Put back what the store held at start (before any reading)."""
        for alert in alerts:
            if alert.kind == "calibration" and alert.state == "active":
                self._calibration[alert.measurement] = alert
            elif alert.measurement in self._tracks and alert.state == "active":
                self._tracks[alert.measurement].alert = alert
        for latch in latches:
            if latch.measurement in self._tracks:
                self._tracks[latch.measurement].latch = latch

    # queries ---------------------------------------------------------------------

    def active(self) -> list[Alert]:
        """Active alerts, newest first (not those of a shelved measurement; a probe's
        "calibration due" stays: the shelf silences its readings, not its care)."""
        alerts = [t.alert for t in self._tracks.values() if t.alert is not None and not t.shelved]
        alerts += self._calibration.values()
        return sorted(alerts, key=lambda a: (a.raised_at, a.id), reverse=True)

    def shelved(self) -> dict[str, Alert | None]:
        """Each shelved measurement, with the alert it had when shelved (kept out of sight)."""
        return {m: t.alert for m, t in self._tracks.items() if t.shelved}

    def summary(self) -> dict[str, int]:
        counts = {"total": 0, "critical": 0, "warning": 0, "info": 0}
        for alert in self.active():
            counts["total"] += 1
            counts[alert.severity] += 1
        return counts

    def latches(self) -> list[Latch]:
        return [t.latch for t in self._tracks.values() if t.latch is not None]

    # changes -----------------------------------------------------------------------

    def evaluate(self, measurement: str, value: float | None, now: Now) -> list[Change]:
        """One reading (``value`` None: bad quality). Returns what changed."""
        track = self._tracks.get(measurement)
        if track is None or value is None:
            return []
        track.last_good, track.value = now.monotonic, value
        self._count(track, value)
        if track.shelved:
            return []
        return self._settle(track, measurement, value, now)

    def _settle(self, track: _Track, measurement: str, value: float, now: Now) -> list[Change]:
        """Bring the alert and the latch in line with ``value`` and the counted runs."""
        changes: list[Change] = []
        if track.alert is not None and track.alert.kind == "offline":
            changes.append(self._end(track, "cleared", value, now))
        if track.latch is not None and track.latch.kind == "offline":
            changes.append(self._unlatch(track, now))
        return changes + self._judge(track, measurement, value, now)

    def _judge(self, track: _Track, measurement: str, value: float, now: Now) -> list[Change]:
        """A good value against the track's rule and its counted runs: follow its alert,
        lift its latch, or raise."""
        changes: list[Change] = []
        confirmed = self._confirmed(track)
        if track.alert is not None:
            changes += self._follow(track, value, confirmed, now)
        if track.latch is not None and not self._holds(track.rule, track.latch, value):
            changes.append(self._unlatch(track, now))
        if track.alert is None and confirmed is not None:
            direction, severity = confirmed
            latch = track.latch
            if (
                latch is None
                or latch.direction != direction
                or RANK[severity] > RANK[latch.severity]
            ):
                if latch is not None:  # superseded: say so, or the store would keep it
                    changes.append(self._unlatch(track, now))
                changes.append(self._raise(track, measurement, direction, severity, value, now))
        return changes

    def check_stale(self, now: Now) -> list[Change]:
        """Raise "offline" for every measurement silent for longer than its stale_after."""
        changes = []
        for measurement, track in self._tracks.items():
            silent = now.monotonic - track.last_good > track.rule.stale_after
            dismissed_offline = track.latch is not None and track.latch.kind == "offline"
            if silent and track.alert is None and not dismissed_offline and not track.shelved:
                track.alert = Alert(
                    self._new_id(), measurement, "offline", None, "warning", "active",
                    None, None, now.wall, now.wall,
                )  # fmt: skip
                changes.append(Change("raised", track.alert, now.wall))
        return changes + self._check_calibration(now)

    def calibration_due(self, measurement: str, due: float | None, now: Now) -> list[Change]:
        """The probe of ``measurement`` wants calibrating at ``due`` (wall clock; None:
        never). A due date in the future clears its "calibration" alert."""
        if due is None:
            self._due.pop(measurement, None)
        else:
            self._due[measurement] = due
        alert = self._calibration.get(measurement)
        if alert is None or (due is not None and now.wall >= due):
            return self._check_calibration(now)  # due already: raised at once
        del self._calibration[measurement]
        done = dataclasses.replace(alert, state="cleared", updated_at=now.wall)
        return [Change("cleared", done, now.wall)]

    def _check_calibration(self, now: Now) -> list[Change]:
        changes = []
        for measurement, due in self._due.items():
            quiet = self._quiet.get(measurement) == due
            if now.wall >= due and measurement not in self._calibration and not quiet:
                alert = Alert(
                    self._new_id(), measurement, "calibration", None, "info", "active",
                    None, None, now.wall, now.wall,
                )  # fmt: skip
                self._calibration[measurement] = alert
                changes.append(Change("raised", alert, now.wall))
        return changes

    def dismiss(self, alert_id: str, now: Now, by: str | None = None) -> Change | None:
        """An operator closed the alert: it is latched while its condition holds."""
        for measurement, due_alert in list(self._calibration.items()):
            if due_alert.id == alert_id:  # quiet until the next calibration moves the date
                del self._calibration[measurement]
                self._quiet[measurement] = self._due.get(measurement, now.wall)
                done = dataclasses.replace(
                    due_alert, state="dismissed", updated_at=now.wall, dismissed_by=by
                )
                return Change("dismissed", done, now.wall)
        for track in self._tracks.values():
            alert = track.alert
            if alert is None or alert.id != alert_id:
                continue
            done = dataclasses.replace(
                alert, state="dismissed", updated_at=now.wall, dismissed_by=by
            )
            track.latch = Latch(done)
            track.alert = None
            track.runs.clear()
            return Change("dismissed", done, now.wall, latch=track.latch)
        return None

    def set_rules(
        self, rules: Mapping[str, Rule], latest: Mapping[str, float | None], now: Now
    ) -> list[Change]:
        """New rules (a reloaded config), keeping every active alert and dismissal.

        A measurement whose rule changed is judged again on its ``latest`` good value
        (None: none fresh), so a bound it now lies beyond raises at once (with
        ``delay`` 1) and one it is now back inside of clears. A measurement no longer
        watched has its alert cleared and its dismissal forgotten.
        """
        changes: list[Change] = []
        for measurement in [m for m in self._tracks if m not in rules]:
            track = self._tracks.pop(measurement)
            if track.alert is not None:
                changes.append(self._end(track, "cleared", None, now))
            if track.latch is not None:
                changes.append(self._unlatch(track, now))
        for measurement, rule in rules.items():
            track = self._tracks.setdefault(measurement, _Track(rule, now.monotonic))
            if track.rule == rule:
                continue
            track.rule = rule
            track.runs.clear()  # counted against the old bounds
            value = latest.get(measurement)
            if value is None or (track.alert is not None and track.alert.kind == "offline"):
                continue
            self._count(track, value)
            if not track.shelved:  # a shelved one is judged when its shelf ends
                changes += self._judge(track, measurement, value, now)
        return changes

    def shelve(self, measurement: str) -> bool:
        """Raise nothing for ``measurement`` until :meth:`unshelve`; False if not watched."""
        track = self._tracks.get(measurement)
        if track is None:
            return False
        track.shelved = True
        return True

    def unshelve(self, measurement: str, now: Now) -> list[Change]:
        """The shelf is over: settle the measurement on its latest reading at once."""
        track = self._tracks.get(measurement)
        if track is None or not track.shelved:
            return []
        track.shelved = False
        if track.value is None:
            return []
        return self._settle(track, measurement, track.value, now)

    # internals ---------------------------------------------------------------------

    def _count(self, track: _Track, value: float) -> None:
        """Update the runs of consecutive readings beyond each bound."""
        for direction in ("low", "high"):
            for severity in SEVERITIES:
                key = (direction, severity)
                beyond = track.rule.beyond(value, direction, severity)
                track.runs[key] = track.runs.get(key, 0) + 1 if beyond else 0

    @staticmethod
    def _confirmed(track: _Track) -> tuple[Direction, Severity] | None:
        """The worst bound crossed by ``delay`` readings in a row."""
        confirmed: tuple[Direction, Severity] | None = None
        for (direction, severity), run in track.runs.items():
            if run >= track.rule.delay and (
                confirmed is None or RANK[severity] > RANK[confirmed[1]]
            ):
                confirmed = (direction, severity)  # type: ignore[assignment]
        return confirmed

    def _follow(
        self, track: _Track, value: float, confirmed: tuple[Direction, Severity] | None, now: Now
    ) -> list[Change]:
        alert = track.alert
        assert alert is not None
        assert alert.direction is not None
        held = track.rule.held(value, alert.direction, alert.severity)
        if held is None:
            return [self._end(track, "cleared", value, now)]
        target: Severity = held
        if confirmed is not None and confirmed[0] == alert.direction:
            target = max(held, confirmed[1], key=RANK.__getitem__)
        if target == alert.severity:
            return []
        event: Event = "escalated" if RANK[target] > RANK[alert.severity] else "deescalated"
        bound = track.rule.bound(alert.direction, target)
        track.alert = dataclasses.replace(
            alert, severity=target, value=value, bound=bound, updated_at=now.wall
        )
        return [Change(event, track.alert, now.wall)]

    def _raise(
        self,
        track: _Track,
        measurement: str,
        direction: Direction,
        severity: Severity,
        value: float,
        now: Now,
    ) -> Change:
        bound = track.rule.bound(direction, severity)
        track.alert = Alert(
            self._new_id(), measurement, "threshold", direction, severity, "active",
            value, bound, now.wall, now.wall,
        )  # fmt: skip
        return Change("raised", track.alert, now.wall)

    def _end(self, track: _Track, event: Event, value: float | None, now: Now) -> Change:
        assert track.alert is not None
        done = dataclasses.replace(track.alert, state="cleared", value=value, updated_at=now.wall)
        track.alert = None
        return Change(event, done, now.wall)

    def _unlatch(self, track: _Track, now: Now) -> Change:
        assert track.latch is not None
        latch, track.latch = track.latch, None
        # The dismissed alert's condition is over; it stays dismissed, no count changes.
        return Change(
            "cleared",
            dataclasses.replace(latch.alert, updated_at=now.wall),
            now.wall,
            unlatched=True,
        )

    @staticmethod
    def _holds(rule: Rule, latch: Latch, value: float) -> bool:
        if latch.kind == "offline" or latch.direction is None:
            return False
        return rule.held(value, latch.direction, latch.severity) is not None
