"""Logging for journald: ``<N>`` syslog priorities, no timestamp, when systemd runs us.

journald stamps each line itself and reads a leading ``<N>`` as the line's
priority (sd-daemon.h), so ``journalctl -p warning`` filters the gateway's
logs. Call :func:`configure_logging` once at start instead of basicConfig.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

#: Console format when not under journald (the one the CLI always used).
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"


def syslog_priority(levelno: int) -> int:
    """sd-daemon.h: <2> crit, <3> err, <4> warning, <6> info, <7> debug."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class JournalFormatter(logging.Formatter):
    """Every line of a record (a traceback too) carries the record's priority.

    journald splits a stream at newlines, so each line gets the prefix: a
    traceback stays an error instead of becoming info-level lines.
    """

    def __init__(self, fmt: str = JOURNAL_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def under_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is the journal systemd connected us to.

    systemd sets ``$JOURNAL_STREAM`` to ``<device>:<inode>`` of that stream; a
    child whose stderr was redirected inherits the variable, so a stream with a
    descriptor must match it. A stream without one (a StringIO) is taken at the
    variable's word.
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM")
    if not value:
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return True
    device, _, inode = value.partition(":")
    return f"{stat.st_dev}:{stat.st_ino}" == f"{device}:{inode}"


def configure_logging(
    level: int | str,
    *,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr), journald-style if it is the journal.

    Replaces any handler already on the root logger; returns the new one.
    """
    target = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(target)
    if under_journal(target, environ):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return handler
