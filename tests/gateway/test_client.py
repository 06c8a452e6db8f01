"""The Python client and `watch`, against a real gateway process, restarts included."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from gateway.backoff import Backoff, seed_schedule
from gateway.client import GatewayClient, Status
from gateway.messages import Initial, SensorUpdate, Subscribed
from tests.configs import WATER_LEVEL, bus, gateway_toml, table
from tests.helpers import until
from tests.processes import GatewayProcess, free_port


class Gateway(GatewayProcess):
    """A gateway on a fixed port, so it can be stopped and started again at the same URL."""

    def __init__(self, tmp_path: Path, **server: Any) -> None:
        """``server`` adds keys to the [server] table."""
        config = tmp_path / "gateway.toml"
        config.write_text(
            gateway_toml(
                tmp_path / "data",
                table(
                    "server",
                    port=free_port(),
                    sensor_interval=0.2,
                    heartbeat_interval=30.0,
                    **server,
                ),
                bus("rs485-1", "sim://modbus", "modbus-rtu", WATER_LEVEL, poll_interval=0.1),
            )
        )
        super().__init__(config)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    running = Gateway(tmp_path)
    await running.start()
    yield running
    await running.stop()


async def take(
    client: GatewayClient, count: int, kind: type[Any], timeout: float = 5.0
) -> list[Any]:
    got: list[Any] = []
    async with asyncio.timeout(timeout):
        async for item in client:
            if isinstance(item, kind):
                got.append(item)
                if len(got) == count:
                    return got
    return got


def test_backoff_follows_the_seed_with_jitter() -> None:
    schedules = [seed_schedule(3.0) for _ in range(50)]
    for base in (3.0, 6.0, 9.0, 12.0, 15.0, 15.0, 15.0):
        waits = [schedule.next() for schedule in schedules]
        assert all(0.8 * base <= w <= 1.2 * base for w in waits)
        assert len(set(waits)) > 1  # jittered: clients do not come back in lockstep
    schedules[0].reset()
    assert 2.4 <= schedules[0].next() <= 3.6  # a connection that held starts over


def test_the_brokers_backoff_doubles_to_its_cap() -> None:
    backoff = Backoff(0.5, 5.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


async def test_typed_messages_from_both_channels(gateway: Gateway) -> None:
    await typed_messages_from_both_channels(gateway.url)


# The checks below run against a gateway here and against a relay in tests/mqtt.


async def typed_messages_from_both_channels(url: str, site: str = "EMBALSE_01") -> None:
    async with GatewayClient(url) as client:
        items = [item async for item in _first(client, 5)]
    assert isinstance(items[0], Status)
    assert items[0].state == "connected"
    assert any(isinstance(i, Subscribed) and i.channel.partition(":")[0] == "alerts" for i in items)
    assert any(isinstance(i, Initial) for i in items)
    updates = [i for i in items if isinstance(i, SensorUpdate)]
    assert updates
    assert updates[0].data.reservoir_id == site
    assert set(client.seq) <= {"alerts", "sensors"}  # kept under the names asked for


async def _first(client: GatewayClient, count: int) -> AsyncIterator[Any]:
    async with asyncio.timeout(5):
        n = 0
        async for item in client:
            yield item
            n += 1
            if n == count:
                return


async def test_a_restart_in_the_middle(gateway: Gateway) -> None:
    async with GatewayClient(
        gateway.url + "/ws/sensors", reconnect_interval=0.1, max_reconnect_attempts=100
    ) as client:
        before = await take(client, 2, SensorUpdate)
        await gateway.stop()
        statuses: list[Status] = []
        async with asyncio.timeout(5):
            async for item in client:
                if isinstance(item, Status) and item.state == "reconnecting":
                    statuses.append(item)
                    if len(statuses) == 2:
                        break
        assert [s.attempt for s in statuses] == [1, 2]
        await gateway.start()
        after = await take(client, 2, SensorUpdate, timeout=8)
    assert before[1].seq == before[0].seq + 1
    assert after[1].seq == after[0].seq + 1  # the new process's count, followed without a gap
    assert client.reconnect_attempts == 0


async def test_falls_back_to_polling_when_websockets_are_refused(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path, max_connections=1)
    await gateway.start()
    try:
        await falls_back_to_polling(gateway.url)
    finally:
        await gateway.stop()


async def falls_back_to_polling(url: str, query: str = "", site: str = "EMBALSE_01") -> None:
    """Against a server whose one connection (``max_connections = 1``) this takes."""
    async with ClientSession() as session:
        holder = await session.ws_connect(url.replace("http", "ws") + "/ws/alerts" + query)
        async with GatewayClient(
            url + "/ws/sensors" + query, reconnect_interval=0.05, max_reconnect_attempts=2
        ) as client:
            items: list[Any] = []
            async with asyncio.timeout(6):
                async for item in client:
                    items.append(item)
                    if sum(isinstance(i, SensorUpdate) for i in items) == 2:
                        break
        await holder.close()
    polling = [i for i in items if isinstance(i, Status) and i.state == "polling"]
    assert polling
    updates = [i for i in items if isinstance(i, SensorUpdate)]
    assert updates[1].seq > updates[0].seq
    assert updates[1].data.reservoir_id == site


async def test_watch_prints_lines_and_exits_0_on_ctrl_c(gateway: Gateway) -> None:
    await watch_prints_lines_and_exits_0_on_ctrl_c(gateway.url)


async def watch_prints_lines_and_exits_0_on_ctrl_c(url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "watch", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    async with asyncio.timeout(6):
        while not any("sensor_update" in line for line in lines):
            lines.append((await process.stdout.readline()).decode())
    process.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(process.communicate(), 5)
    assert process.returncode == 0
    assert lines[0].strip() == "-- connected"
    assert any(re.search(r"initial: \d+ active", line) for line in lines)
    # the simulated level drifts: any number, but a number and its unit
    assert any(re.search(r"water_level \d+(\.\d+)? m\b", line) for line in lines), lines
    assert b"Traceback" not in err


async def test_watch_refuses_a_url_without_scheme() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "watch", "localhost:8000",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 5)
    assert process.returncode == 1
    assert b"must start with" in err


async def test_a_send_to_a_dropped_socket_reconnects_instead_of_hanging(
    aiohttp_server: Any,
) -> None:
    """The server drops each of the first two connections at once; the client is held (its
    queue is full) until its socket is closing, so its subscribe fails mid-stream."""
    accepted: list[web.WebSocketResponse] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        accepted.append(ws)
        if len(accepted) <= 2:
            assert request.transport is not None
            request.transport.close()  # the peer is gone: no Close frame, just the socket
        else:
            await ws.receive()  # the third connection stays up
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = await aiohttp_server(app)
    url = f"http://127.0.0.1:{server.port}"
    async with GatewayClient(url, reconnect_interval=0.01, queue=1) as client:
        items: list[Any] = []
        async with asyncio.timeout(5):
            items.append(await anext(aiter(client)))  # connected (1)
            await until(lambda: len(accepted) == 2)  # reconnecting (1) fills the queue ...
            await until(lambda: _closing(client))  # ... while connection 2 is dropped
            async for item in client:
                items.append(item)
                if len(accepted) == 3 and item == Status("connected"):
                    break
    states = [i.state for i in items if isinstance(i, Status)]
    assert states[:3] == ["connected", "reconnecting", "connected"]
    assert states[-2:] == ["reconnecting", "connected"]  # the failed send: a reconnect


def _closing(client: GatewayClient) -> bool:
    """Whether the client's socket has seen the peer go (aiohttp keeps this private)."""
    ws = client._ws
    return ws is not None and ws._writer.transport.is_closing()
