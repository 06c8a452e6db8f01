"""The simulated reservoir: what each probe would see, and the faults asked for."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

FAULTS = ("timeout", "crc", "garbage", "unplug")


@dataclass
class Signal:
    """A value that wanders slowly around its set point, with a little noise.

    ``drift`` is how far (at most, about) it wanders from the set point and
    ``noise`` the spread between two readings; both 0 make it exact.
    """

    setpoint: float
    drift: float
    noise: float
    period: float = 600.0  # seconds of a slow swing
    phase: float = 0.0

    def sample(self, now: float, rng: random.Random) -> float:
        wander = self.drift * math.sin(2 * math.pi * now / self.period + self.phase)
        return (
            self.setpoint + wander + rng.gauss(0.0, self.noise)
            if self.noise
            else (self.setpoint + wander)
        )

    def set(self, value: float) -> None:
        """Pin the value: set point to ``value``, no drift, no noise."""
        self.setpoint, self.drift, self.noise = value, 0.0, 0.0


#: Typical water of a reservoir: 18 C, pH 7.4, 450 uS/cm, 12.5 m of level.
DEFAULT_SIGNALS: dict[str, tuple[float, float, float]] = {
    "temperature": (18.0, 1.5, 0.02),
    "ph": (7.4, 0.15, 0.005),
    "conductivity": (450.0, 20.0, 1.0),
    "water_level": (12.5, 0.3, 0.002),
}


@dataclass
class World:
    """Values and faults by name; devices ask it each time they answer."""

    seed: int | None = None
    clock: Callable[[], float] | None = None
    signals: dict[str, Signal] = field(default_factory=dict)
    faults: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        for name, (setpoint, drift, noise) in DEFAULT_SIGNALS.items():
            self.signals.setdefault(
                name, Signal(setpoint, drift, noise, phase=self.rng.uniform(0, 2 * math.pi))
            )

    def value(self, measurement: str, now: float) -> float:
        return self.signals[measurement].sample(now, self.rng)

    def fault(self, name: str) -> str | None:
        return self.faults.get(name)
