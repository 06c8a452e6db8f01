"""Alerts as the server sees them. The threshold engine plugs in here.

Until the engine lands this is an empty book: no alert is ever raised, the
summary is all zeros and every dismissal is for an unknown id.
"""

from __future__ import annotations

from typing import Any, Protocol

SEVERITIES = ("critical", "warning", "info")


def empty_summary() -> dict[str, int]:
    return {"total": 0, "critical": 0, "warning": 0, "info": 0}


class AlertSource(Protocol):
    """What the server needs of the alert engine."""

    def summary(self) -> dict[str, int]:
        """``{"total", "critical", "warning", "info"}`` of the active alerts."""

    def active(self) -> list[dict[str, Any]]:
        """Active alerts, newest first, as ``GET /api/alerts`` lists them."""

    async def dismiss(self, alert_id: str, by: str | None = None) -> bool:
        """Dismiss an active alert; False if no active alert has that id."""


class NoAlerts:
    def summary(self) -> dict[str, int]:
        return empty_summary()

    def active(self) -> list[dict[str, Any]]:
        return []

    async def dismiss(self, alert_id: str, by: str | None = None) -> bool:
        return False
