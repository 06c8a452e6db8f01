"""What arrives from the MQTT broker, parsed: topic and payload bytes in, a typed value out.

Pure functions, no I/O. Anything a broker may hand us (a peer's bug, a retained
leftover, hostile bytes) either becomes one of the dataclasses below or raises
:class:`BadMessage` naming the topic and what was wrong, never anything else.
The relay (:func:`parse_relayed`) and the uplink (:func:`parse_dismiss`) log
that one line and carry on.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from drivers.errors import GatewayError

MAX_PAYLOAD = 1 << 20  # bytes; a gateway's largest message (alerts/active) is far smaller
MAX_DEPTH = 16  # our messages nest four deep at most
MAX_ID = 200  # characters in an alert id or a ``by``
MAX_SEQ = (1 << 63) - 1
STATES = ("online", "offline")
EVENTS = ("raised", "escalated", "deescalated", "dismissed", "cleared")
SHELF_EVENTS = ("shelved", "unshelved")
COUNTS = ("total", "critical", "warning", "info")
_RESERVOIR = re.compile(r"[A-Za-z0-9_-]+")  # config.reservoir_id's rule


class BadMessage(GatewayError, ValueError):
    """A payload (or topic) that is not what it should be: ``<topic>: <what is wrong>``."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic, self.reason = topic, reason
        super().__init__(f"{topic}: {reason}")


@dataclass(frozen=True)
class Status:
    """``<prefix>/<id>/status``: ``online``, or ``offline`` (said or the last will)."""

    reservoir: str
    state: Literal["online", "offline"]


@dataclass(frozen=True)
class StreamMessage:
    """``sensors`` (a sensor_update) or ``alerts`` (an update): passed on unchanged."""

    reservoir: str
    stream: Literal["sensors", "alerts"]
    seq: int
    timestamp: str
    data: dict[str, Any]
    message: dict[str, Any]


@dataclass(frozen=True)
class ActiveAlerts:
    """``alerts/active``: the alerts active at that gateway now."""

    reservoir: str
    alerts: dict[str, dict[str, Any]]  # id -> alert


@dataclass(frozen=True)
class AlertEvent:
    """``alerts/events``: one change of one alert, with the /ws/alerts message it caused."""

    reservoir: str
    event: str
    alert_id: str
    alert: dict[str, Any]
    message: dict[str, Any] | None  # the ``dismissed`` message, on a dismissal


@dataclass(frozen=True)
class ShelfNews:
    """``alerts/events``: a measurement shelved or unshelved, with its /ws/alerts message."""

    reservoir: str
    event: str
    by: str | None
    message: dict[str, Any]


Relayed = Status | StreamMessage | ActiveAlerts | AlertEvent | ShelfNews


@dataclass(frozen=True)
class DismissCommand:
    """``commands/dismiss``: a relay asks this gateway to dismiss an alert."""

    alert_id: str
    by: str | None


# JSON, safely ----------------------------------------------------------------------------


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _checked(topic: str, value: Any) -> Any:
    """Refuse nesting deeper than MAX_DEPTH and strings that are not valid Unicode."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadMessage(topic, f"nested deeper than {MAX_DEPTH}")
        if isinstance(item, dict):
            stack.extend((k, depth) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                raise BadMessage(topic, "a string with a lone surrogate") from None
    return value


def parse_json(topic: str, payload: bytes) -> Any:
    """UTF-8 JSON with finite numbers, at most MAX_PAYLOAD bytes and MAX_DEPTH deep."""
    if len(payload) > MAX_PAYLOAD:
        raise BadMessage(topic, f"{len(payload)} bytes, more than {MAX_PAYLOAD}")
    try:
        text = payload.decode()
    except UnicodeDecodeError as exc:
        raise BadMessage(topic, f"not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_float=_finite, parse_constant=_constant)
    except RecursionError:
        raise BadMessage(topic, f"nested deeper than {MAX_DEPTH}") from None
    except ValueError as exc:  # JSONDecodeError, a huge number, NaN
        raise BadMessage(topic, f"not JSON: {str(exc)[:80]}") from None
    return _checked(topic, value)


# the shapes ------------------------------------------------------------------------------


def _object(topic: str, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadMessage(topic, f"{what}: expected a JSON object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return "null" if value is None else names.get(type(value), "a number")


def _text(topic: str, value: Any, what: str) -> str:
    if isinstance(value, str) and 0 < len(value) <= MAX_ID:
        return value
    raise BadMessage(topic, f"{what}: expected a string of 1 to {MAX_ID} characters")


def _seq(topic: str, value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise BadMessage(topic, f"{what}: expected a whole number from 0")
    return value


def _stream(topic: str, reservoir: str, stream: Literal["sensors", "alerts"], body: Any) -> Relayed:
    message = _object(topic, body, "the message")
    expected = "sensor_update" if stream == "sensors" else "update"
    if message.get("type") != expected:
        raise BadMessage(topic, f"type: expected {expected!r}")
    data = _object(topic, message.get("data"), "data")
    if stream == "alerts":
        for key in COUNTS:
            _seq(topic, data.get(key), f"data.{key}")
    else:
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int | float | str | None):
                raise BadMessage(topic, f"data.{key}: expected a number, a string or null")
    seq = _seq(topic, message.get("seq"), "seq")
    timestamp = _text(topic, message.get("timestamp"), "timestamp")
    return StreamMessage(reservoir, stream, seq, timestamp, dict(data), message)


def _active(topic: str, reservoir: str, body: Any) -> ActiveAlerts:
    if not isinstance(body, list):
        raise BadMessage(topic, f"expected an array of alerts, got {_kind(body)}")
    alerts: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(body):
        alert = _object(topic, item, f"[{i}]")
        alerts[_text(topic, alert.get("id"), f"[{i}].id")] = alert
    return ActiveAlerts(reservoir, alerts)


def _message(topic: str, value: Any) -> dict[str, Any]:
    message = _object(topic, value, "message")
    _seq(topic, message.get("seq"), "message.seq")
    _text(topic, message.get("timestamp"), "message.timestamp")
    return message


def _shelf_news(topic: str, reservoir: str, event: dict[str, Any]) -> ShelfNews:
    by = event.get("by")
    message = _message(topic, event.get("message"))
    if message.get("type") != event["event"]:
        raise BadMessage(topic, f"message.type: expected {event['event']!r}")
    return ShelfNews(
        reservoir, str(event["event"]), None if by is None else _text(topic, by, "by"), message
    )


def _event(topic: str, reservoir: str, body: Any) -> AlertEvent | ShelfNews:
    event = _object(topic, body, "the event")
    name = event.get("event")
    if name in SHELF_EVENTS:
        return _shelf_news(topic, reservoir, event)
    if name not in EVENTS:
        raise BadMessage(topic, f"event: expected one of {', '.join(EVENTS + SHELF_EVENTS)}")
    alert = _object(topic, event.get("alert"), "alert")
    alert_id = _text(topic, alert.get("id"), "alert.id")
    message = event.get("message")
    if message is not None:
        message = _message(topic, message)
    return AlertEvent(reservoir, str(name), alert_id, alert, message)


def parse_relayed(prefix: str, topic: str, payload: bytes) -> Relayed:
    """A message a relay hears under ``<prefix>/<reservoir_id>/...``. Raises BadMessage."""
    rest = topic.removeprefix(prefix + "/")
    reservoir, _, kind = rest.partition("/")
    if rest == topic or not _RESERVOIR.fullmatch(reservoir):
        raise BadMessage(topic, f"expected {prefix}/<reservoir_id>/<kind>")
    if kind == "status":
        state = payload.decode(errors="replace")
        if state not in STATES:
            raise BadMessage(topic, f"expected online or offline, got {payload[:40]!r}")
        return Status(reservoir, "online" if state == "online" else "offline")
    if kind not in ("sensors", "alerts", "alerts/active", "alerts/events"):
        raise BadMessage(topic, "not a topic a relay reads")
    body = parse_json(topic, payload)
    if kind == "sensors":
        return _stream(topic, reservoir, "sensors", body)
    if kind == "alerts":
        return _stream(topic, reservoir, "alerts", body)
    if kind == "alerts/active":
        return _active(topic, reservoir, body)
    return _event(topic, reservoir, body)


def parse_dismiss(topic: str, payload: bytes) -> DismissCommand:
    """``{"alert_id": "...", "by": "..."}`` (``by`` optional). Raises BadMessage."""
    command = _object(topic, parse_json(topic, payload), "the command")
    alert_id = _text(topic, command.get("alert_id"), "alert_id")
    by = command.get("by")
    return DismissCommand(alert_id, None if by is None else _text(topic, by, "by"))
