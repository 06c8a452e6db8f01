"""The alert rules a configuration asks for: one per measurement a bus reads."""

from __future__ import annotations

from gateway.alerts.model import Rule, rule_from_bounds
from gateway.config import Config, ThresholdConfig
from gateway.config.base import BOUNDS


def rules_of(config: Config) -> dict[str, Rule]:
    """The alert rule of every measurement a bus reads."""
    thresholds = {str(m): t for m, t in config.thresholds.items()}
    watched = [s.measurement for bus in config.buses for s in bus.sensors]
    return {str(m): _rule(thresholds.get(m) or ThresholdConfig()) for m in watched}


def _rule(config: ThresholdConfig) -> Rule:
    bounds = {name: getattr(config, name) for name in BOUNDS}
    return rule_from_bounds(
        bounds, hysteresis=config.hysteresis, delay=config.delay, stale_after=config.stale_after
    )
