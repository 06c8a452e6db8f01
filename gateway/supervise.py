"""Background tasks that outlive their own bugs, and the delays between tries.

:func:`supervise` runs a named coroutine for ever: when it raises, the
failure is logged (with its traceback the first time, one line while the same
failure repeats), it waits a :class:`Backoff` delay and runs it again; a run
that lasted at least the longest delay starts the delays over. Failures
listed as ``expected`` (a broker that went away) are one WARNING line, never a
traceback. Cancelling the task stops it at once; returning normally ends it.

The MQTT uplink and the relay run each connection to the broker this way, with
the broker's errors as ``expected``: a broker that stays away is tried less and
less often, and one that drops a long-lived connection is retried at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from gateway.backoff import Backoff

log = logging.getLogger(__name__)


def _describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        return _describe(error.exceptions[0])
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _only(error: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether ``error`` (or every error in a group) is one of ``kinds``."""
    if isinstance(error, BaseExceptionGroup):
        return all(_only(e, kinds) for e in error.exceptions)
    return isinstance(error, kinds)


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    backoff: Backoff | None = None,
    expected: tuple[type[BaseException], ...] = (),
    logger: logging.Logger = log,
) -> None:
    """Await ``run()`` until it returns; after a failure log it, wait, and run it again."""
    backoff = backoff or Backoff()
    loop = asyncio.get_running_loop()
    last = ""
    while True:
        began = loop.time()
        try:
            await run()
            return
        except Exception as error:
            if loop.time() - began >= backoff.cap:
                backoff.reset()  # it ran well for a while: this is a new failure
            delay = backoff.next()
            what = _describe(error)
            if _only(error, expected):
                logger.warning("%s: %s; retrying in %.1f s", name, what, delay)
            elif what != last:
                logger.error("%s failed; restarting in %.1f s", name, delay, exc_info=error)
            else:
                logger.error("%s failed again (%s); restarting in %.1f s", name, what, delay)
            last = what
        await asyncio.sleep(delay)


def start(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    backoff: Backoff | None = None,
    expected: tuple[type[BaseException], ...] = (),
    logger: logging.Logger = log,
) -> asyncio.Task[None]:
    """:func:`supervise` ``run`` in a task named ``name``."""
    supervised = supervise(name, run, backoff=backoff, expected=expected, logger=logger)
    return asyncio.create_task(supervised, name=name)


async def cancel(tasks: Iterable[asyncio.Task[None] | None]) -> None:
    """Cancel these tasks and wait until each has stopped; what they raised is logged."""
    running = [t for t in tasks if t is not None]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running)
    for task in running:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended with an error", task.get_name(), exc_info=task.exception())
