"""The client side of a WebSocket connection as a sans-I/O state machine.

A :class:`Session` takes one client text frame and the time, and says what to
do: send a message, subscribe, unsubscribe, refresh, or close. It does no I/O
and imports no aiohttp, so its tests step a float clock and it can be fuzzed
with any text: only effects come out, never an exception.
(``gateway.api.websocket`` is the aiohttp adapter that carries the effects out.)
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from gateway.api.params import BadInput, load_json, seq, shown

log = logging.getLogger("gateway.session")  # the name logs were filtered by

CLOSE_POLICY = 1008
#: A refresh costs this many actions of the rate limit: it builds a whole state.
REFRESH_COST = 5


@dataclass(frozen=True, slots=True)
class Send:
    """A message for this client alone; on ``/ws`` it names ``channel`` (or null)."""

    message: dict[str, Any]
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Refresh:
    """Send ``{"type": "refresh", "data": <the stream's state now>}``."""

    stream: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Start ``stream`` for this client: its opening (or what it missed after ``since``)."""

    stream: str
    since: int | None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    stream: str


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Effect = Send | Refresh | Subscribe | Unsubscribe | Close


def error(code: str, detail: str) -> dict[str, Any]:
    return {"type": "error", "error": code, "detail": detail}


class RateLimit:
    """A token bucket: ``rate`` actions a second, bursts of ``burst``; time is passed in."""

    __slots__ = ("burst", "rate", "refused_in_a_row", "stamp", "tokens", "warned_at")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = now
        self.refused_in_a_row = 0
        self.warned_at = float("-inf")

    def allow(self, now: float, cost: int = 1) -> bool:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        return False


class Session:
    """What one client asks for, turned into effects.

    ``fixed`` is the one stream of ``/ws/alerts`` or ``/ws/sensors`` (None on
    ``/ws``, where clients pick channels); ``streams`` the channels that exist
    now (read at each frame: a relay learns of reservoirs as it runs).
    """

    def __init__(
        self,
        *,
        fixed: str | None,
        streams: Collection[str],
        rate: float,
        burst: int,
        now: float,
    ) -> None:
        self.fixed = fixed
        self.streams = streams
        self.limit = RateLimit(rate, burst, now)
        self.actions = (
            ("ping", "refresh") if fixed else ("ping", "refresh", "subscribe", "unsubscribe")
        )

    def handle(self, text: str, now: float) -> list[Effect]:
        """The effects of one client text frame received at ``now`` (monotonic seconds)."""
        try:
            message = load_json(text)
        except BadInput as exc:
            return [Send(error(exc.code, exc.detail))]
        if not isinstance(message, dict):
            return [Send(error("invalid_message", 'expected an object, e.g. {"action": "ping"}'))]
        action = message.get("action")
        if not isinstance(action, str):
            return [Send(error("missing_action", 'expected an "action" string'))]
        log.debug("[WebSocket] Message received: %s", shown(action)[1:-1])
        if not self.limit.allow(now, REFRESH_COST if action == "refresh" else 1):
            return self.refused(now)
        if action == "ping":
            return [Send({"type": "pong"})]
        if action not in self.actions:
            detail = f"unknown action {shown(action)}: use {', '.join(self.actions)}"
            return [Send(error("unknown_action", detail))]
        return self._on_channel(action, message)

    def handle_binary(self) -> list[Effect]:
        """A binary frame: we speak JSON text only."""
        return [Send(error("binary_not_supported", "send JSON text frames, not binary"))]

    def _on_channel(self, action: str, message: dict[str, Any]) -> list[Effect]:
        channel = self.fixed or message.get("channel")
        if not isinstance(channel, str) or channel not in self.streams:
            known = ", ".join(self.streams)
            detail = f"channel {shown(channel)}: use {known}"
            return [
                Send(error("unknown_channel", detail), channel if _printable(channel) else None)
            ]
        if action == "refresh":
            return [Refresh(channel)]
        if action == "unsubscribe":
            return [Unsubscribe(channel), Send({"type": "unsubscribed"}, channel)]
        try:
            since = seq(message.get("since"))
        except BadInput as exc:
            return [Send(error(exc.code, exc.detail), channel)]
        return [Send({"type": "subscribed"}, channel), Subscribe(channel, since)]

    def refused(self, now: float) -> list[Effect]:
        """Over the rate limit: warn (once a second); close 1008 if it goes on."""
        if self.limit.refused_in_a_row >= self.limit.burst:
            return [Close(CLOSE_POLICY, "too many messages")]
        if now - self.limit.warned_at < 1.0:
            return []
        self.limit.warned_at = now
        detail = f"at most {self.limit.rate:g} actions a second; slow down"
        return [Send(error("rate_limited", detail))]


def _printable(channel: object) -> bool:
    """A channel name safe to echo back in the ``channel`` key: short ASCII text."""
    return isinstance(channel, str) and len(channel) <= 40 and channel.isascii()
