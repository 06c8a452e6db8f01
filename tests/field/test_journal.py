"""journald-friendly logging: priorities on every line, no timestamp, only under journald."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.field.journal import JournalFormatter, configure_logging, under_journal


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_lines_carry_syslog_priorities_and_no_timestamp() -> None:
    out = io.StringIO()
    configure_logging(logging.DEBUG, stream=out, environ={"JOURNAL_STREAM": "8:12345"})
    log = logging.getLogger("gateway.poller")
    log.debug("polling")
    log.info("[WebSocket] Connected. Total connections: 5")
    log.warning("rs485-1: port reopened")
    log.error("cannot open /dev/ttyUSB0")
    log.critical("giving up")
    assert out.getvalue().splitlines() == [
        "<7>gateway.poller: polling",
        "<6>gateway.poller: [WebSocket] Connected. Total connections: 5",
        "<4>gateway.poller: rs485-1: port reopened",
        "<3>gateway.poller: cannot open /dev/ttyUSB0",
        "<2>gateway.poller: giving up",
    ]


def test_every_line_of_a_traceback_keeps_the_error_priority() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JournalFormatter())
    log = logging.getLogger("test.journal.traceback")
    log.addHandler(handler)
    log.propagate = False
    try:
        raise ValueError("bad frame")
    except ValueError:
        log.exception("poll failed")
    finally:
        log.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0] == "<3>test.journal.traceback: poll failed"
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>ValueError: bad frame"


def test_without_journal_stream_lines_have_a_timestamp_and_no_priority() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out, environ={})
    logging.getLogger("gateway").info("stopping")
    line = out.getvalue().strip()
    assert not line.startswith("<")
    assert line.endswith("INFO gateway: stopping")
    assert line[:4].isdigit()  # the asctime


def test_journal_stream_must_name_the_stream_when_it_has_a_descriptor(tmp_path: Path) -> None:
    with (tmp_path / "stderr").open("w") as stream:
        stat = os.fstat(stream.fileno())
        assert under_journal(stream, {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"})
        # inherited by a child whose stderr goes elsewhere: not the journal
        assert not under_journal(stream, {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino + 1}"})
        assert not under_journal(stream, {})
