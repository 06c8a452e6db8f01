"""Deprecated alias of :mod:`gateway.api.server`, for code written to the seed walkthrough
before the modules were grouped (import from ``gateway.api.server`` instead)."""

from gateway.api.server import GATEWAY, SIMULATED, build_app

__all__ = ["GATEWAY", "SIMULATED", "build_app"]
