"""What the pymodbus servers in these tests leave behind, settled."""

from __future__ import annotations

import asyncio


async def settle_request_tasks(before: set[asyncio.Task[object]]) -> None:
    """After a pymodbus server's shutdown: pymodbus handles each request in a task
    (run_coroutine_threadsafe); one may still be in flight when a test ends. Settle those
    started since ``before``, and only those: anything else left running is ours, for the
    leftover-task guard to see."""
    spawned = [
        t
        for t in asyncio.all_tasks() - before
        if t.get_coro().__qualname__.startswith("ServerRequestHandler.")  # type: ignore[union-attr]
    ]
    for task in spawned:
        task.cancel()
    await asyncio.gather(*spawned, return_exceptions=True)
