"""``[[notify]]`` targets: their apprise URL, how they are shown without secrets, and
which alert changes each one hears of.

Events a target may choose: the engine's ``raised``, ``escalated``,
``deescalated``, ``dismissed`` and ``cleared``, and ``offline``. ``offline`` is
the raise of an offline alert (no good reading for ``stale_after``); ``raised``
is the raise of a threshold alert only, so a target may hear of one and not the
other. ``cleared`` covers both kinds (an offline alert clears when readings come
back). The clearing of an alert an operator had already dismissed is not sent:
someone has answered it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gateway.alerts.model import RANK, Alert, Change

if TYPE_CHECKING:  # config imports this module to check URLs
    import apprise  # loaded with its plugins only where a URL is read: not at every start

    from gateway.config import NotifyTarget

#: Apprise's own lines stay out of the gateway's log: a failed send is logged by the
#: sender with apprise's reason (captured per call), a bad URL by config validation.
logging.getLogger("apprise").propagate = False
logging.getLogger("apprise").addHandler(logging.NullHandler())


def parse_url(url: str) -> apprise.Apprise | None:
    """An apprise instance for ``url``, or None when apprise cannot use it."""
    import apprise

    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception:  # apprise's plugins raise what they like on odd input
        return None
    if not plugin:
        return None
    instance = apprise.Apprise()
    instance.add(plugin)
    return instance


def redact(url: str) -> str:
    """Scheme and host of the URL as apprise shows it privately: no password, no token
    (a Telegram bot token sits where the host would be: apprise masks it)."""
    import apprise

    try:
        plugin = apprise.Apprise.instantiate(url)
        private = str(plugin.url(privacy=True)) if plugin else url  # type: ignore[no-untyped-call]
    except Exception:
        private = url
    parts = urlsplit(private)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" if parts.scheme else "?"


def event_of(change: Change) -> str | None:
    """The event a target routes on; None for a change nobody is told of."""
    if change.unlatched:
        return None
    if change.event == "raised" and change.alert.kind == "offline":
        return "offline"
    return change.event


class Target:
    """One configured target: routing, and the key its outbox rows carry."""

    def __init__(
        self,
        index: int,
        url: str,
        *,
        min_severity: str = "warning",
        measurements: Sequence[str] | None = None,
        events: Sequence[str] = ("raised", "escalated", "offline", "cleared"),
        repeat_minutes: float = 0.0,
    ) -> None:
        self.index, self.url = index, url
        self.min_severity = min_severity
        self.measurements = None if measurements is None else frozenset(measurements)
        self.events = frozenset(events)
        self.repeat_seconds = repeat_minutes * 60.0
        # Stable across restarts and reorderings of the file: what the outbox rows name.
        self.key = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.shown = redact(url)
        self.name = f"{index}:{self.shown}"  # the metrics label and /api/notify's name

    def wants(self, alert: Alert, event: str) -> bool:
        return (
            event in self.events
            and RANK[alert.severity] >= RANK[self.min_severity]
            and (self.measurements is None or alert.measurement in self.measurements)
        )

    def reminds_of(self, alert: Alert) -> bool:
        """Whether a still-active alert is worth a reminder here."""
        raised = "offline" if alert.kind == "offline" else "raised"
        return self.repeat_seconds > 0 and (
            self.wants(alert, raised) or self.wants(alert, "escalated")
        )


def from_config(tables: Sequence[NotifyTarget]) -> list[Target]:
    """The ``[[notify]]`` tables as targets, in the file's order."""
    return [
        Target(
            i,
            t.url,
            min_severity=t.min_severity,
            measurements=t.measurements,
            events=t.events,
            repeat_minutes=t.repeat_minutes,
        )
        for i, t in enumerate(tables)
    ]
