"""The supervisor: log once, back off, restart; cancel stops it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway import supervise
from gateway.backoff import Backoff


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 5.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 0.5
    with pytest.raises(ValueError, match="0 < first <= cap"):
        Backoff(0, 1)


async def test_a_failing_job_is_logged_once_with_its_traceback_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)
        if len(runs) < 4:
            raise RuntimeError("the disk is on fire")

    with caplog.at_level(logging.ERROR, "gateway.supervise"):
        await asyncio.wait_for(
            supervise.supervise("test.job", job, backoff=Backoff(0.001, 0.004)), 5
        )
    assert len(runs) == 4  # ran until it returned
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert "test.job failed; restarting in 0.0 s" in tracebacks[0].getMessage()
    repeats = [r.getMessage() for r in caplog.records if not r.exc_info]
    assert (
        repeats
        == ["test.job failed again (RuntimeError: the disk is on fire); restarting in 0.0 s"] * 2
    )


async def test_expected_failures_are_one_warning_line(caplog: pytest.LogCaptureFixture) -> None:
    tries: list[int] = []

    async def connect() -> None:
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionRefusedError("broker away")
        if len(tries) == 2:
            raise ExceptionGroup("session", [TimeoutError()])

    with caplog.at_level(logging.WARNING, "gateway.supervise"):
        await supervise.supervise(
            "test.mqtt", connect, backoff=Backoff(0.001, 0.01), expected=(OSError, TimeoutError)
        )
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "test.mqtt: ConnectionRefusedError: broker away; retrying in 0.0 s"),
        ("WARNING", "test.mqtt: TimeoutError; retrying in 0.0 s"),
    ]
    assert not any(r.exc_info for r in caplog.records)


async def test_cancel_stops_a_supervised_task_while_it_runs_or_waits() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    async def failing() -> None:
        raise RuntimeError("bug")

    running = supervise.start("test.forever", forever)
    backing_off = supervise.start("test.failing", failing, backoff=Backoff(60, 60))
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.sleep(0)  # the failing one is in its 60 s back-off now
    await asyncio.wait_for(supervise.cancel([running, backing_off, None]), 5)
    assert running.cancelled()
    assert backing_off.cancelled()
