"""Deprecated alias of :mod:`gateway.api.listen`, for code written to the seed walkthrough
before the modules were grouped (import from ``gateway.api.listen`` instead)."""

from gateway.api.listen import listen

__all__ = ["listen"]
