"""The one timestamp format of every message: ISO 8601, UTC, milliseconds, ``Z``.

Plain functions, no I/O: the alert engine, the clients and the uplink share it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc_timestamp(now: float | None = None) -> str:
    """ISO 8601, UTC, milliseconds, ``Z``: ``2025-11-11T10:30:00.123Z``."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
