"""The ``sites`` stream: every site served here, its status, alert counts and newest reading.

A gateway has one site (itself, always ``online``); a relay has every reservoir it
hears on the broker. Each message carries the whole map (a client needs no
earlier one, and a slow client needs only the newest: they are conflated):

    {"type": "sites", "timestamp", "seq",
     "data": {"EMBALSE_01": {"status": "online", "offline_since": null,
                             "summary": {"total", "critical", "warning", "info"},
                             "last_reading_at": "2025-11-11T10:30:00.123Z"}}}

It is sent when a site appears, when its status or its counts change, on its
first reading, and otherwise at most every :data:`READING_EVERY` seconds for
newer readings alone: ``last_reading_at`` may lag that much behind (a client that
needs each reading follows ``sensors:<reservoir_id>``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.api.hub import Hub
from gateway.timestamps import utc_timestamp

SITES = "sites"
#: s: a newer reading alone sends a ``sites`` message at most this often per site.
READING_EVERY = 30.0
STATES = ("online", "offline", "unknown")


def no_alerts() -> dict[str, int]:
    return {"total": 0, "critical": 0, "warning": 0, "info": 0}


@dataclass
class SiteState:
    """What the ``sites`` stream says of one site."""

    status: str = "unknown"
    offline_since: str | None = None
    summary: dict[str, int] = field(default_factory=no_alerts)
    last_reading_at: str | None = None
    reading_sent: float | None = None  # monotonic s when a reading last caused a message

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "offline_since": self.offline_since,
            "summary": dict(self.summary),
            "last_reading_at": self.last_reading_at,
        }


class SitesFeed:
    """The sites' states, and the ``sites`` messages their changes cause on ``hub``."""

    def __init__(
        self,
        hub: Hub,
        *,
        reading_every: float = READING_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.reading_every = reading_every
        self.monotonic = monotonic
        self.wall = wall
        self.states: dict[str, SiteState] = {}

    def current(self) -> dict[str, Any]:
        """The ``data`` of a ``sites`` message now."""
        return {site: state.as_json() for site, state in self.states.items()}

    def add(self, site: str, status: str = "unknown") -> None:
        if site not in self.states:
            self.states[site] = SiteState(status=status)
            self._publish()

    def status(self, site: str, state: str, *, since: str | None = None) -> None:
        """``site`` is ``state`` now; ``since``: when it went offline, if known (None: the
        time it is heard, unless it is told by a retained message: then unknown)."""
        entry = self.states[site]
        if entry.status == state:
            return
        entry.status = state
        entry.offline_since = since if state == "offline" else None
        self._publish()

    def summary(self, site: str, counts: dict[str, int]) -> None:
        entry = self.states[site]
        if entry.summary != counts:
            entry.summary = dict(counts)
            self._publish()

    def reading(self, site: str, timestamp: str) -> None:
        """A sensor_update stamped ``timestamp``: sent at once if it is the site's first,
        else at most every ``reading_every`` s."""
        entry = self.states[site]
        if entry.last_reading_at is not None and timestamp <= entry.last_reading_at:
            return
        entry.last_reading_at = timestamp
        now = self.monotonic()
        if entry.reading_sent is None or now - entry.reading_sent >= self.reading_every:
            self._publish()

    def now(self) -> str:
        return utc_timestamp(self.wall())

    def _publish(self) -> None:
        now = self.monotonic()
        for entry in self.states.values():
            if entry.last_reading_at is not None:
                entry.reading_sent = now  # every site's newest reading went out with this
        self.hub.publish(SITES, {"type": "sites", "data": self.current()}, conflate=SITES)
