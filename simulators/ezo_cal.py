"""What a simulated EZO circuit measures, through its probe and its calibration.

Each circuit holds a probe model (what the probe puts out for the true value:
a pH probe's millivolts, an EC or DO probe's sensitivity, an ORP or RTD probe's
offset) and the calibration the circuit applies to turn that back into a
reading. Out of the box the calibration fits the probe, so the reading is the
true value; age the probe (:meth:`Model.set_probe`) and the reading drifts until
the probe is calibrated again, as with a real one. ``Cal`` commands follow the
datasheets' sequences; out of sequence or a bad value: ``*ER``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

IDEAL_MV_PER_PH = 59.16  # Nernst slope at 25 C


class Model:
    """One circuit's probe and calibration. ``command`` takes the argument of ``Cal``."""

    probe: object

    @property
    def points(self) -> int:
        raise NotImplementedError

    def command(self, arg: str) -> bool:
        """``Cal,<arg>``: True if taken, False for ``*ER``."""
        raise NotImplementedError

    def reading(self, true: float) -> float:
        raise NotImplementedError

    def slope(self) -> str | None:
        return None

    def set_probe(self, **changes: float) -> None:
        """Age the probe (``offset_mv=12, acid=95``). Raises ValueError for unknown keys."""
        known = {f.name for f in fields(self.probe)}  # type: ignore[arg-type]
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"probe: unknown key {key!r}; known: {', '.join(sorted(known))}")
            if not math.isfinite(value):
                raise ValueError(f"probe.{key}: must be a finite number")
            setattr(self.probe, key, float(value))


def _number(text: str, low: float, high: float) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and low <= value <= high else None


# pH ------------------------------------------------------------------------------


@dataclass
class PhProbe:
    offset_mv: float = 0.0  # mV at pH 7
    acid: float = 100.0  # % of the ideal slope below pH 7
    base: float = 100.0  # % above

    def mv(self, ph: float) -> float:
        slope = (self.acid if ph < 7 else self.base) / 100 * IDEAL_MV_PER_PH
        return self.offset_mv - slope * (ph - 7.0)


@dataclass
class PhModel(Model):
    """Mid point first (it clears the others), then low and high."""

    probe: PhProbe = field(default_factory=PhProbe)
    mid: tuple[float, float] | None = None  # (pH of the buffer, mV the probe gave)
    low: tuple[float, float] | None = None
    high: tuple[float, float] | None = None

    def __post_init__(self) -> None:  # calibrated at the factory, to this probe
        self.mid, self.low, self.high = ((ph, self.probe.mv(ph)) for ph in (7.0, 4.0, 10.0))

    @property
    def points(self) -> int:
        return sum(p is not None for p in (self.mid, self.low, self.high))

    def command(self, arg: str) -> bool:
        point, _, text = arg.lower().partition(",")
        if point == "clear" and not text:
            self.mid = self.low = self.high = None
            return True
        value = _number(text, 0.0, 14.0)
        if value is None:
            return False
        taken = (value, self.probe.mv(value))
        if point == "mid":
            self.mid, self.low, self.high = taken, None, None
        elif point == "low" and self.mid is not None and value < self.mid[0]:
            self.low = taken
        elif point == "high" and self.mid is not None and value > self.mid[0]:
            self.high = taken
        else:
            return False
        return True

    def _curve(self) -> tuple[float, float, float, float]:
        """(mid pH, mid mV, acid and base mV per pH)."""
        mid_ph, mid_mv = self.mid or (7.0, 0.0)
        acid = base = IDEAL_MV_PER_PH
        if self.mid is not None and self.low is not None:
            acid = (self.low[1] - mid_mv) / (mid_ph - self.low[0])
        if self.mid is not None and self.high is not None:
            base = (mid_mv - self.high[1]) / (self.high[0] - mid_ph)
        return mid_ph, mid_mv, acid, base

    def reading(self, true: float) -> float:
        mid_ph, mid_mv, acid, base = self._curve()
        mv = self.probe.mv(true)
        per_ph = acid if mv > mid_mv else base
        return mid_ph - (mv - mid_mv) / per_ph

    def slope(self) -> str:
        mid_ph, mid_mv, acid, base = self._curve()
        offset = mid_mv + IDEAL_MV_PER_PH * (mid_ph - 7.0)
        acid_pct, base_pct = (100 * s / IDEAL_MV_PER_PH for s in (acid, base))
        return f"?Slope,{acid_pct:.1f},{base_pct:.1f},{offset:.2f}"


# EC and DO: a gain --------------------------------------------------------------------


@dataclass
class GainProbe:
    sensitivity: float = 1.0  # what the probe puts out per unit of the true value
    zero: float = 0.0  # what it puts out at none


@dataclass
class EcModel(Model):
    """``Cal,dry`` first, then ``Cal,<n>`` (one point) or ``Cal,low,<n>`` and ``Cal,high,<n>``."""

    probe: GainProbe = field(default_factory=GainProbe)
    dry: bool = True
    gain: float = 1.0
    taken: int = 2  # calibrated at the factory at two points
    low: bool = True

    @property
    def points(self) -> int:
        return self.taken

    def command(self, arg: str) -> bool:
        point, _, text = arg.lower().partition(",")
        if point in ("clear", "dry") and not text:
            self.gain, self.taken, self.low, self.dry = 1.0, 0, False, point == "dry"
            return True
        value = _number(text if point in ("low", "high") else arg, 0.07, 500000.0)
        if value is None or not self.dry or (point == "high" and not self.low):
            return False
        self.gain = value / (value * self.probe.sensitivity + self.probe.zero)
        self.low = point == "low"
        self.taken = 2 if point == "high" else 1
        return True

    def reading(self, true: float) -> float:
        return (true * self.probe.sensitivity + self.probe.zero) * self.gain


@dataclass
class DoModel(Model):
    """``Cal`` in air (saturated: the probe's gain), ``Cal,0`` in a zero solution."""

    probe: GainProbe = field(default_factory=GainProbe)
    gain: float = 1.0
    zero: float = 0.0
    atm: bool = True
    zeroed: bool = False

    @property
    def points(self) -> int:
        return int(self.atm) + int(self.zeroed)

    def command(self, arg: str) -> bool:
        arg = arg.lower()
        if arg == "clear":
            self.gain, self.zero, self.atm, self.zeroed = 1.0, 0.0, False, False
            return True
        if arg == "0":
            self.zero, self.zeroed = self.probe.zero, True
            return True
        if arg == "":
            self.gain = 1.0 / self.probe.sensitivity
            self.atm = True
            return True
        return False

    def reading(self, true: float) -> float:
        return max(0.0, (true * self.probe.sensitivity + self.probe.zero - self.zero) * self.gain)


def oxygen_saturation(temperature: float, conductivity: float) -> float:
    """mg/L of dissolved oxygen in water saturated with air at ``temperature`` (C) and
    the salinity of ``conductivity`` (uS/cm), at sea level (a fit of the APHA table)."""
    t = temperature
    fresh = 14.652 - 0.41022 * t + 0.007991 * t**2 - 0.000077774 * t**3
    salinity_ppt = conductivity * 0.00064
    return fresh * (1.0 - 0.0055 * salinity_ppt)


# ORP and RTD: an offset --------------------------------------------------------------


@dataclass
class OffsetProbe:
    offset: float = 0.0


@dataclass
class OffsetModel(Model):
    """One point: ``Cal,<value>`` with the probe in a standard of that value."""

    probe: OffsetProbe = field(default_factory=OffsetProbe)
    low_limit: float = -1019.9
    high_limit: float = 1019.9
    correction: float = 0.0
    taken: int = 1

    @property
    def points(self) -> int:
        return self.taken

    def command(self, arg: str) -> bool:
        if arg.lower() == "clear":
            self.correction, self.taken = 0.0, 0
            return True
        if _number(arg, self.low_limit, self.high_limit) is None:
            return False
        self.correction, self.taken = -self.probe.offset, 1
        return True

    def reading(self, true: float) -> float:
        return true + self.probe.offset + self.correction


def model_for(circuit: str) -> Model:
    if circuit == "pH":
        return PhModel()
    if circuit == "EC":
        return EcModel()
    if circuit == "DO":
        return DoModel()
    if circuit == "RTD":
        return OffsetModel(low_limit=-126.0, high_limit=1254.0)
    return OffsetModel()
