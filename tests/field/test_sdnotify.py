"""sd_notify messages as systemd receives them: on a real AF_UNIX datagram socket."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.field.sdnotify import (
    Notifier,
    ProgressCheck,
    poll_max_age,
    supervise_watchdog,
    watchdog_interval,
)


class Listener:
    """The systemd side: a bound datagram socket, read without blocking."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)

    def drain(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return out

    async def next(self, timeout: float = 3.0) -> str:
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), timeout)
        return data.decode()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[Listener, str]]:
    path = str(tmp_path / "notify.sock")
    listener = Listener(path)
    yield listener, path
    listener.sock.close()


def test_each_message_arrives_as_one_datagram(listener: tuple[Listener, str]) -> None:
    sock, path = listener
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.ready("polling 4 buses")
    assert notifier.status("2 buses down:\nph-probe, rs485-1")
    assert notifier.watchdog()
    assert notifier.reloading()
    assert notifier.stopping()
    notifier.close()
    messages = sock.drain()
    assert messages[:3] == [
        "READY=1\nSTATUS=polling 4 buses",
        "STATUS=2 buses down: ph-probe, rs485-1",  # STATUS is one line
        "WATCHDOG=1",
    ]
    reloading = messages[3].split("\n")
    assert reloading[0] == "RELOADING=1"
    usec = int(reloading[1].removeprefix("MONOTONIC_USEC="))
    assert before <= usec <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert messages[4] == "STOPPING=1"


def test_abstract_namespace_socket() -> None:
    name = f"sensor-gateway-test-{uuid.uuid4().hex}"
    listener = Listener(b"\0" + name.encode())
    try:
        assert Notifier(f"@{name}").ready()
        assert listener.drain() == ["READY=1"]
    finally:
        listener.sock.close()


def test_without_notify_socket_nothing_is_sent(tmp_path: Path) -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()


def test_a_vanished_socket_is_logged_once_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "gone.sock"))
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert len([r for r in caplog.records if "sd_notify" in r.message]) == 1


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "20000000"}) == 10.0
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": pid}) == 1.5
    assert watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "nonsense"}) is None
    assert watchdog_interval({}) is None


def test_progress_check_names_the_stalled_parts() -> None:
    now = [100.0]
    last = {"ph-probe": 99.0, "rs485-1": 80.0}
    check = ProgressCheck(
        lambda: last, {"rs485-1": 30.0}, default_max_age=5.0, clock=lambda: now[0]
    )
    assert check()
    assert check.stalled() == []
    now[0] = 106.0  # ph-probe last progressed 7 s ago, beyond its default 5 s
    assert check.stalled() == ["ph-probe"]
    now[0] = 111.0
    assert check.stalled() == ["ph-probe", "rs485-1"]
    last.update({"ph-probe": 110.0, "rs485-1": 110.0})
    assert check()


async def test_watchdog_stops_while_a_poller_is_wedged_and_resumes(
    listener: tuple[Listener, str],
) -> None:
    sock, path = listener
    now = [0.0]
    last = {"ph-probe": 0.0, "rs485-1": 0.0}
    consulted = asyncio.Event()

    class Watched(ProgressCheck):
        def __call__(self) -> bool:
            consulted.set()
            return super().__call__()

    alive = Watched(lambda: last, 10.0, clock=lambda: now[0])

    async def consultations(n: int) -> None:
        for _ in range(n):
            consulted.clear()
            await asyncio.wait_for(consulted.wait(), 3.0)

    notifier = Notifier(path)
    task = asyncio.create_task(supervise_watchdog(notifier, alive, interval=0.005))
    try:
        assert await sock.next() == "WATCHDOG=1"
        await consultations(3)
        # rs485-1 is wedged in a poll that never returns; the other keeps polling.
        sock.drain()
        now[0] = 20.0
        last["ph-probe"] = 20.0
        await consultations(5)
        after = sock.drain()
        assert "WATCHDOG=1" not in after
        assert after == ["STATUS=stalled: no progress from rs485-1"]
        last["rs485-1"] = 20.0  # unwedged
        assert await sock.next() == "WATCHDOG=1"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        notifier.close()


async def test_watchdog_returns_at_once_without_a_watchdog(
    listener: tuple[Listener, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    await asyncio.wait_for(supervise_watchdog(Notifier(path), lambda: True), 1.0)
    await asyncio.wait_for(supervise_watchdog(Notifier(None), lambda: True, interval=0.01), 1.0)
    assert sock.drain() == []


def test_poll_max_age_covers_a_poll_where_every_request_times_out() -> None:
    # 2 requests x 3 attempts x (1 s timeout + 1 s processing) = 12 s worst poll
    assert poll_max_age(poll_interval=2.0, timeout=1.0, retries=2, requests=2) == 38.0
