"""A replugged port is reopened on the first look after it is back; a failing one backs off.

Real ptys behind a by-id style link (the simulator's VirtualPort), a fake clock for the
backoff: the assertions count open attempts and polls, never time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from drivers.errors import PortDisconnected
from drivers.model import Reading
from drivers.serial_line import SerialLine
from gateway.config import BusConfig
from gateway.poller import BusPoller
from simulators.pty import VirtualPort
from simulators.rig import Rig
from tests.helpers import until

T = TypeVar("T")


class CountingLine(SerialLine):
    """A SerialLine that counts its tries to open the port."""

    attempts = 0

    async def _connect(self, receiver: asyncio.Protocol) -> asyncio.Transport:
        self.attempts += 1
        return await super()._connect(receiver)


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[VirtualPort]:
    virtual = VirtualPort(lambda _: None, tmp_path / "by-id" / "usb-Test_Adapter-if00-port0")
    virtual.plug()
    yield virtual
    virtual.unplug()


async def unplugged(port: VirtualPort) -> tuple[CountingLine, list[float]]:
    """A line that was open on ``port``, which has just been pulled; and its clock."""
    now = [0.0]
    line = CountingLine(port.address, watch_interval=0.01, clock=lambda: now[0])
    await line.open()
    port.unplug()
    await until(lambda: not line.connected)
    return line, now


async def test_an_unplugged_port_is_reopened_at_the_first_look_after_it_is_back(
    port: VirtualPort,
) -> None:
    line, now = await unplugged(port)
    with pytest.raises(PortDisconnected):
        await line.ensure_open()
    assert line.absent
    # A long absence: every try fails and the backoff grows to its cap.
    for _ in range(8):
        now[0] += 60.0
        with pytest.raises(PortDisconnected):
            await line.ensure_open()
    assert line._next_open - now[0] == line.reconnect_max
    tries = line.attempts
    assert not await line.idle(0.05)  # still away: the whole pause is slept
    assert line.attempts == tries  # looking for the path is not a try to open it

    port.plug()  # replugged: a new pty behind the same link; the clock does not move
    async with asyncio.timeout(5):
        assert await line.idle(3600.0)  # cut short by the watch
    await line.ensure_open()  # no backoff to sit out
    try:
        assert line.attempts == tries + 1
        assert line.connected
        assert not line.absent
        assert line.generation == 2
        assert line.counters["reconnects"] == 1
        assert line.counters["disconnected"] == 1  # one loss, however many refusals
    finally:
        await line.close()


async def test_a_present_port_that_fails_keeps_the_growing_backoff(tmp_path: Path) -> None:
    not_a_tty = tmp_path / "ttyUSB0"
    not_a_tty.write_bytes(b"")  # there, but opening it as a serial port fails
    now = [0.0]
    line = CountingLine(str(not_a_tty), watch_interval=0.01, clock=lambda: now[0])
    with pytest.raises(PortDisconnected):
        await line.open()
    assert not line.absent
    assert not await line.idle(0.05)  # nothing to watch for: it is there
    tried_at: list[float] = []
    for _ in range(40):  # 20 s of polls every 0.5 s
        now[0] += 0.5
        before = line.attempts
        with pytest.raises(PortDisconnected):
            await line.ensure_open()
        if line.attempts > before:
            tried_at.append(now[0])
    assert tried_at == [0.5, 1.5, 3.5, 7.5, 15.5]  # 0.5 s, doubling
    assert line.counters["disconnected"] == 0  # never open, never lost


def _ph_bus(port: str, poll_interval: float) -> BusConfig:
    return BusConfig.model_validate(
        {
            "name": "ph-probe",
            "port": port,
            "protocol": "ezo",
            "timeout": 0.3,
            "poll_interval": poll_interval,
            "sensors": [{"measurement": "ph"}],
        }
    )


async def test_the_poller_reads_a_replugged_probe_on_the_poll_after_the_link_is_back(
    rig: Rig,
) -> None:
    readings: list[Reading] = []
    arrived = asyncio.Event()

    def sink(reading: Reading) -> None:
        readings.append(reading)
        arrived.set()

    async def next_reading() -> Reading:
        async with asyncio.timeout(5):  # far below the 60 s poll interval
            await arrived.wait()
        arrived.clear()
        return readings[-1]

    device = rig.ezo("ezo-ph")
    poller = BusPoller(_ph_bus(device.port.address, poll_interval=60.0), [sink])
    await poller.open()
    poller.start()
    try:
        assert (await next_reading()).good
        rig.set_fault("ph", "unplug")
        assert (await next_reading()).quality == "disconnected"  # the loss woke the poller
        assert poller.line.absent
        polls = poller.polls
        rig.set_fault("ph", None)
        reading = await next_reading()
        assert reading.good
        assert poller.polls == polls + 1  # the first poll after the link came back
        assert poller.line.counters["reconnects"] == 1
        assert poller.line.counters["disconnected"] == 1
    finally:
        await poller.stop()


class ReplugWhileOpening(ThreadPoolExecutor):
    """The loop's executor, where the port is opened: plugs ``port`` in once an open has
    failed in the worker thread, before the loop hears of it (an adapter reseated during
    the try, the soak's 11.8 s replug)."""

    def __init__(self, port: VirtualPort) -> None:
        super().__init__(max_workers=1)
        self.port = port

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future = super().submit(fn, *args, **kwargs)
        if future.exception() is not None and not self.port.plugged:
            self.port.plug()
        return future


async def test_a_port_replugged_while_an_open_fails_is_reopened_at_the_first_look(
    port: VirtualPort,
) -> None:
    line, now = await unplugged(port)
    for _ in range(4):  # away for a while: the backoff has grown to 8 s
        with pytest.raises(PortDisconnected):
            await line.ensure_open()
        now[0] = line._next_open
    loop = asyncio.get_running_loop()
    executor = ReplugWhileOpening(port)
    loop.set_default_executor(executor)
    try:
        with pytest.raises(PortDisconnected, match="No such file"):
            await line.ensure_open()  # this try fails, and the port is back meanwhile
        assert port.plugged
        assert line.absent  # it was away when tried: watched for, not backed off
        async with asyncio.timeout(5):
            assert await line.idle(3600.0)  # cut short by the watch
        await line.ensure_open()  # the clock has not moved: no backoff to sit out
        assert line.connected
        assert line.counters["reconnects"] == 1
    finally:
        await line.close()
        executor.shutdown()
