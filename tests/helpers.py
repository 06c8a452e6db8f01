"""Small test helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from simulators.modbus_tcp import ModbusTcpDevice, default_tcp_units
from simulators.world import World


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


async def next_of(ws: Any, kind: str, timeout: float = 3.0) -> dict[str, Any]:
    """The next WebSocket message of type ``kind``, skipping others (heartbeats...)."""
    async with asyncio.timeout(timeout):
        while True:
            message: dict[str, Any] = await ws.receive_json()
            if message["type"] == kind:
                return message


async def next_news(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The next WebSocket message that is not a heartbeat: heartbeats come on their own
    clock (every 0.25 s in the fast test config), so any two messages may have one between."""
    async with asyncio.timeout(timeout):
        while True:
            message: dict[str, Any] = await ws.receive_json()
            if message["type"] != "heartbeat":
                return message


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


D = TypeVar("D", bound=Startable)


@asynccontextmanager
async def running(device: D) -> AsyncIterator[D]:
    """A simulated device, started, and stopped on the way out whatever happened."""
    await device.start()
    try:
        yield device
    finally:
        await device.stop()


@asynccontextmanager
async def modbus_tcp_device(
    name: str, *, seed: int, **signals: float
) -> AsyncIterator[ModbusTcpDevice]:
    """The simulated Modbus TCP device (default_tcp_units, answering at once) on 127.0.0.1,
    its world's ``signals`` set before it starts; stopped on the way out."""
    device = ModbusTcpDevice(name, World(seed=seed), default_tcp_units(), time_scale=0.0)
    for signal, value in signals.items():
        device.world.signals[signal].set(value)
    async with running(device):
        yield device
