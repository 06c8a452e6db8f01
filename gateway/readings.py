"""The latest reading of each measurement, and what counts as stale."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from drivers.model import MEASUREMENTS, Quality, Reading


@dataclass
class MeasurementState:
    last: Reading | None = None  # the last reading of any quality
    last_good: Reading | None = None
    good_at: float | None = None  # monotonic time of last_good


class LatestReadings:
    """Keeps, per measurement, the last reading and the last good one.

    A measurement with no good reading within its ``stale_after`` seconds is
    offline: its value is reported as null, never as the last number seen.
    Ages are measured on ``clock``, the monotonic clock: a wall-clock step
    changes nothing here.
    """

    def __init__(
        self,
        reservoir_id: str,
        stale_after: Mapping[str, float],
        *,
        measurements: Iterable[str] = MEASUREMENTS,
        default_stale_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reservoir_id = reservoir_id
        self._stale_after = stale_after
        self._default = default_stale_after
        self._clock = clock
        # The seed's four are always reported (null when no bus reads them); the
        # measurements with a stale_after are the watched ones, whatever their names.
        self._watched = tuple(stale_after) or tuple(measurements)
        self._states = {m: MeasurementState() for m in (*measurements, *self._watched)}
        self.started_at = clock()

    def record(self, reading: Reading) -> None:
        state = self._states.setdefault(reading.measurement, MeasurementState())
        state.last = reading
        if reading.quality is Quality.GOOD:
            state.last_good = reading
            state.good_at = self._clock()

    def age(self, measurement: str) -> float | None:
        """Seconds (monotonic) since the last good reading; None before the first."""
        state = self._states.get(measurement)
        if state is None or state.good_at is None:
            return None
        return self._clock() - state.good_at

    def stale_after(self, measurement: str) -> float:
        return self._stale_after.get(measurement, self._default)

    def value(self, measurement: str) -> float | None:
        """The current value, or None if the measurement is offline."""
        state = self._states.get(measurement)
        if state is None or state.last_good is None or state.good_at is None:
            return None
        if self._clock() - state.good_at > self.stale_after(measurement):
            return None
        return state.last_good.value

    def snapshot(self) -> dict[str, float | str | None]:
        """The ``data`` of a sensor_update."""
        data: dict[str, float | str | None] = {m: self.value(m) for m in self._states}
        data["reservoir_id"] = self.reservoir_id
        return data

    def offline(self) -> list[str]:
        """Watched measurements without a fresh good reading (after a start-up grace period)."""
        return [
            m
            for m in self._watched
            if self.value(m) is None and self._clock() - self.started_at > self.stale_after(m)
        ]

    def status(self) -> dict[str, dict[str, object]]:
        """Per measurement: value, quality of the last reading, and why it failed."""
        out: dict[str, dict[str, object]] = {}
        for name, state in self._states.items():
            last = state.last
            out[name] = {
                "value": self.value(name),
                "quality": last.quality.value if last else None,
                "detail": last.detail if last else "no reading yet",
                "source": last.source if last else None,
            }
        return out
