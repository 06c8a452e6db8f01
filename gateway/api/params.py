"""Outside input to typed values: client JSON, REST bodies and query strings.

Pure functions with no I/O. Each returns a typed value or raises
:class:`BadInput` naming the key at fault; nothing else may come out, whatever
the bytes (deep nesting, NaN, numbers past float range, lone surrogates,
invalid UTF-8). The WebSocket session and the REST handlers map BadInput to an
``error`` message or a 4xx.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from drivers.errors import GatewayError
from drivers.model import MEASUREMENT_NAME

#: Deeper JSON than this is refused before it is parsed: no message of ours nests past 3.
MAX_DEPTH = 32
#: Epoch seconds a time may take: 0 (1970) up to the year 9999.
LATEST_TIME = 253402300799.0
TIME_FORMAT = "ISO 8601 (2026-11-27T10:00:00Z) or epoch seconds"


class BadInput(GatewayError, ValueError):
    """Input that does not make a value; ``code`` is short, ``detail`` says what and where."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def shown(value: object, width: int = 40) -> str:
    """``value`` as it may go into an error detail: short, ASCII, never a lone surrogate."""
    text = ascii(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _too_deep(text: str) -> bool:
    """True if brackets nest past MAX_DEPTH (outside strings). Cheap for shallow text."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _refuse_constant(name: str) -> Any:
    raise BadInput("invalid_json", f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadInput("invalid_json", f"number {shown(text)} is out of range")
    return value


def load_json(data: str | bytes) -> Any:
    """Parse JSON text (or UTF-8 bytes); BadInput ``invalid_json`` if it is not plain JSON."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput("invalid_json", f"not UTF-8 at byte {exc.start}") from None
    if _too_deep(data):
        raise BadInput("invalid_json", f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except BadInput:
        raise
    except RecursionError:
        raise BadInput("invalid_json", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, and ints past sys.get_int_max_str_digits
        raise BadInput("invalid_json", f"not JSON: {shown(str(exc), 120)}") from None


def seq(raw: object, key: str = "since") -> int | None:
    """A stream seq (a non-negative integer, or its digits), or None if absent."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 20:
        return int(raw)
    raise BadInput("invalid_since", f"{key}: expected a non-negative integer seq, got {shown(raw)}")


def epoch(raw: str, key: str) -> float:
    """``raw`` as a finite time in epoch seconds (ISO 8601 or a number), 1970 to 9999."""
    try:
        value = float(raw)
    except ValueError:
        value = _iso_time(raw, key)
    if not 0.0 <= value <= LATEST_TIME:  # NaN fails this too
        raise BadInput("invalid_query", f"{key}: expected {TIME_FORMAT}, got {shown(raw)}")
    return value


def _iso_time(raw: str, key: str) -> float:
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise BadInput(
            "invalid_query", f"{key}: expected {TIME_FORMAT}, got {shown(raw)}"
        ) from None


def bounded_int(raw: str, key: str, low: int, high: int) -> int:
    """Decimal digits naming an integer in ``low..high``."""
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(high)) and low <= int(raw) <= high:
        return int(raw)
    raise BadInput("invalid_query", f"{key}: expected an integer {low}..{high}, got {shown(raw)}")


def seconds(raw: str, key: str) -> float:
    """A finite, non-negative number of seconds."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value < math.inf:
        raise BadInput(
            "invalid_query", f"{key}: expected seconds (a number >= 0), got {shown(raw)}"
        )
    return value


def time_range(
    query: Mapping[str, str], now: float, default_age: float, limit_max: int
) -> tuple[float, float, int]:
    """``since``, ``until`` and ``limit`` of a history query (defaults: the last
    ``default_age`` seconds up to now, 1000 rows)."""
    since_raw, until_raw = query.get("since"), query.get("until")
    since = now - default_age if since_raw is None else epoch(since_raw, "since")
    until = LATEST_TIME if until_raw is None else epoch(until_raw, "until")
    if until < since:
        raise BadInput("invalid_query", "until: must not be before since")
    limit = bounded_int(query.get("limit", "1000"), "limit", 1, limit_max)
    return since, until, limit


#: The widest history bucket: one year.
BUCKET_MAX = 366 * 86400
FORMATS = ("json", "csv")


def bucket(raw: str | None) -> int | None:
    """``?bucket=`` of a readings history: whole seconds, 1 s to a year; None if absent."""
    return None if raw is None else bounded_int(raw, "bucket", 1, BUCKET_MAX)


def output_format(query: Mapping[str, str], accept: str) -> str:
    """``json`` or ``csv``: ``?format=`` if given, else ``csv`` when ``Accept`` asks for
    ``text/csv``, else ``json``."""
    raw = query.get("format")
    if raw is None:
        return "csv" if "text/csv" in accept.lower() else "json"
    if raw not in FORMATS:
        raise BadInput("invalid_query", f"format: expected json or csv, got {shown(raw)}")
    return raw


def measurement_name(raw: str | None, key: str = "measurement") -> str | None:
    """A measurement's (or an event's) name, ``[a-z][a-z0-9_]{0,31}``, or None if absent."""
    if raw is None:
        return None
    if not raw.isascii() or not MEASUREMENT_NAME.fullmatch(raw):
        raise BadInput(
            "invalid_query",
            f"{key}: expected a name ([a-z][a-z0-9_]{{0,31}}), got {shown(raw)}",
        )
    return raw


SEVERITIES = ("info", "warning", "critical")


def event_filters(query: Mapping[str, str]) -> dict[str, str]:
    """``?measurement=&severity=&event=`` of an alert history: those given, checked."""
    filters: dict[str, str] = {}
    if (measurement := measurement_name(query.get("measurement"))) is not None:
        filters["measurement"] = measurement
    severity = query.get("severity")
    if severity is not None:
        if severity not in SEVERITIES:
            raise BadInput(
                "invalid_query",
                f"severity: expected info, warning or critical, got {shown(severity)}",
            )
        filters["severity"] = severity
    if (event := measurement_name(query.get("event"), "event")) is not None:
        filters["event"] = event  # a word: raised, dismissed, shelved... (new ones may come)
    return filters


def long_poll(query: Mapping[str, str], current: int, wait_max: float) -> tuple[float, int] | None:
    """``?wait=&since=`` of a long poll: (seconds to wait, at most ``wait_max``; the seq
    already seen, by default ``current``), or None when it is no long poll."""
    wait_raw = query.get("wait")
    if wait_raw is None:
        return None
    wait = min(wait_max, seconds(wait_raw, "wait"))
    since = seq(query.get("since"))
    return wait, current if since is None else since


def dismissal(body: bytes) -> str:
    """The alert id of a ``POST /alerts/dismiss`` body."""
    try:
        message = load_json(body)
    except BadInput as exc:
        raise BadInput("invalid_body", exc.detail) from None
    if not isinstance(message, dict):
        raise BadInput("invalid_body", 'expected {"alert_id": "..."}')
    alert_id = message.get("alert_id")
    if not isinstance(alert_id, str) or not alert_id or len(alert_id) > 200:
        raise BadInput(
            "invalid_body", 'alert_id: expected a non-empty string, as in {"alert_id": "..."}'
        )
    if not _encodable(alert_id):
        raise BadInput("invalid_body", "alert_id: not valid Unicode (a lone surrogate)")
    if unknown := sorted(set(message) - {"alert_id"}):
        raise BadInput(
            "invalid_body", f"unknown key {shown(unknown[0])}: only alert_id is expected"
        )
    return alert_id


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
