"""A client that stops reading must cost the others nothing, and hold bounded memory."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse

from gateway.api.hub import Client as HubClient
from gateway.api.hub import Stream
from gateway.broadcast import broadcast_alert_update
from tests.gateway.alerting import unplug_ph
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import until

NORMAL_CLIENTS = 50
MESSAGES = 300
ALERT_MESSAGES = 100  # each one a committed alert change: fewer, still 12x the client_queue
ALERT_MESSAGES = 100  # each one a committed alert change: fewer, still 12x the client_queue


async def stalled_client(client: Client, path: str) -> socket.socket:
    """A raw socket that completes the handshake and then never reads again."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setblocking(False)
    assert client.server.port is not None
    await loop.sock_connect(sock, ("127.0.0.1", client.server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1)  # byte by byte: read nothing past the headers
    assert response.startswith(b"HTTP/1.1 101")
    return sock


def squeeze(hub_client: HubClient) -> None:
    """Give the server side of this connection tiny buffers, so it backs up at once."""
    hub_client.transport.set_write_buffer_limits(high=1024)
    sock = hub_client.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> Client:
    """Heartbeats far apart: a client that never answers pings is closed for that alone."""
    client: Client = await make_client(heartbeat_interval=30.0)
    return client


@pytest.fixture
async def crowd(client: Client) -> AsyncIterator[list[ClientWebSocketResponse]]:
    sockets: list[ClientWebSocketResponse] = []
    yield sockets
    for ws in sockets:
        await ws.close()


async def connect_crowd(client: Client, stream: str, crowd: list[ClientWebSocketResponse]) -> None:
    for _ in range(NORMAL_CLIENTS):
        ws = await client.ws_connect(f"/ws/{stream}")
        await ws.receive_json(timeout=2)  # initial / first sensor_update
        crowd.append(ws)


async def stall_one_then_crowd(
    client: Client, name: str, crowd: list[ClientWebSocketResponse]
) -> tuple[Stream, HubClient, socket.socket]:
    """One stalled client with squeezed buffers, then the crowd of normal ones."""
    stream = gateway_of(client).hub.streams[name]
    stalled = await stalled_client(client, f"/ws/{name}")
    await until(lambda: len(stream.clients) == 1)
    [slow] = stream.clients
    squeeze(slow)
    await connect_crowd(client, name, crowd)
    return stream, slow, stalled


async def collect(ws: ClientWebSocketResponse, kind: str, until_seq: int) -> list[dict[str, Any]]:
    """Messages of ``kind`` up to and including seq ``until_seq``."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(8):
        while not got or got[-1]["seq"] < until_seq:
            message = await ws.receive_json()
            if message["type"] == kind:
                got.append(message)
    return got


async def cut_off_in_a_stream_of_alerts(
    client: Client, crowd: list[ClientWebSocketResponse]
) -> tuple[Stream, HubClient, socket.socket]:
    """A stalled client among a crowd, through ALERT_MESSAGES committed alert changes."""
    await unplug_ph(client)  # the readings below are the only ones the engine gets
    stream, slow, stalled = await stall_one_then_crowd(client, "alerts", crowd)
    first_seq = stream.seq + 1
    most_pending = 0
    last = first_seq + ALERT_MESSAGES - 1
    receivers = [asyncio.create_task(collect(ws, "update", last)) for ws in crowd]
    for n in range(ALERT_MESSAGES):  # warning, critical, warning...: a new count each time
        await broadcast_alert_update({"measurement": "ph", "value": (8.7, 9.5)[n % 2]})
        most_pending = max(most_pending, slow.pending)
    results = await asyncio.gather(*receivers)
    for updates in results:
        assert [u["seq"] for u in updates] == list(range(first_seq, last + 1))
    assert slow.closed
    assert most_pending <= 8  # client_queue: memory held for it stayed bounded
    assert slow.pending == 0
    return stream, slow, stalled


async def test_stalled_alerts_client_is_cut_off_and_the_others_get_everything(
    client: Client, crowd: list[ClientWebSocketResponse]
) -> None:
    stream, slow, stalled = await cut_off_in_a_stream_of_alerts(client, crowd)
    metrics = (await (await client.get("/metrics")).text()).splitlines()
    assert 'gateway_ws_clients_dropped_total{stream="alerts"} 1.0' in metrics
    stalled.close()
    await until(lambda: slow not in stream.clients)


async def test_stalled_sensors_client_only_keeps_the_newest(
    client: Client, crowd: list[ClientWebSocketResponse]
) -> None:
    gateway = gateway_of(client)
    stream, slow, stalled = await stall_one_then_crowd(client, "sensors", crowd)
    start = stream.seq
    most_pending = 0
    last = start + MESSAGES
    receivers = [asyncio.create_task(collect(ws, "sensor_update", last)) for ws in crowd]
    for n in range(MESSAGES):
        gateway.publish_sensor_update()
        most_pending = max(most_pending, slow.pending)
        if n % 10 == 0:
            await asyncio.sleep(0)
    results = await asyncio.gather(*receivers)
    for updates in results:
        seqs = [u["seq"] for u in updates if u["seq"] > start]
        assert seqs == list(range(start + 1, seqs[-1] + 1))  # every one, in order: none held back
    assert not slow.closed  # conflated, not cut off
    assert most_pending <= 2  # the newest reading, perhaps a heartbeat
    stalled.close()
