"""Small test helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(condition: Callable[[], object], timeout: float = 3.0, step: float = 0.01) -> None:
    """Wait for a state that no event announces (a count, a file); fail after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - polls state that has no event of its own
            await asyncio.sleep(step)


async def until_true(
    probe: Callable[[], Awaitable[object]], timeout: float = 8.0, step: float = 0.1
) -> None:
    """Like :func:`until`, for state read over the network (an HTTP endpoint)."""
    async with asyncio.timeout(timeout):
        while not await probe():  # noqa: ASYNC110 - polls state that has no event of its own
            await asyncio.sleep(step)
