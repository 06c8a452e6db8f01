"""The delays between tries, for everything that reconnects or retries: the MQTT uplink
and the relays (doubling), the notification senders (doubling), and the Python client
(the seed's schedule: the interval times 1, 2, 3, 4, 5, 5, ..., jittered so that many
clients do not come back in lockstep). Plain arithmetic: no I/O, importable anywhere."""

from __future__ import annotations

import random
from typing import Literal

FIRST_DELAY, MAX_DELAY = 0.5, 30.0


class Backoff:
    """Delays ``first``, then growing (``double``: 2x, 4x ...; ``linear``: 2x, 3x ...)
    up to ``cap``, each times a random factor in ``1 +/- jitter``; :meth:`reset` after a
    success."""

    def __init__(
        self,
        first: float = FIRST_DELAY,
        cap: float = MAX_DELAY,
        *,
        grow: Literal["double", "linear"] = "double",
        jitter: float = 0.0,
    ) -> None:
        if not 0 < first <= cap:
            raise ValueError("Backoff: need 0 < first <= cap")
        if not 0 <= jitter < 1:
            raise ValueError("Backoff: need 0 <= jitter < 1")
        self.first, self.cap, self.grow, self.jitter = first, cap, grow, jitter
        self._next = first

    def next(self) -> float:
        """The delay before the next try (and the step to the one after it)."""
        delay = self._next
        grown = delay * 2 if self.grow == "double" else delay + self.first
        self._next = min(self.cap, grown)
        if self.jitter:
            delay *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return delay

    def reset(self) -> None:
        self._next = self.first


def seed_schedule(interval: float, jitter: float = 0.2) -> Backoff:
    """The seed client's reconnect schedule: ``interval`` x 1, 2, 3, 4, 5, 5, ... +/- 20 %."""
    return Backoff(interval, interval * 5, grow="linear", jitter=jitter)
