"""The hub's ready lists over a real socket: a client whose socket fills leaves, then rejoins."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from gateway.api.hub import Client, Hub
from tests.helpers import until


class Plain(asyncio.Protocol):
    """Stands for the connection (the Client's receiver): notes what the Client passes on."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


Pair = tuple[asyncio.Transport, Plain, socket.socket]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport, protocol = await asyncio.get_running_loop().connect_accepted_socket(Plain, ours)
    transport.set_write_buffer_limits(high=4096)
    yield transport, protocol, theirs
    transport.abort()
    theirs.close()


def update(n: int) -> dict[str, object]:
    return {"type": "sensor_update", "data": {"n": n, "pad": "x" * 200}}


async def test_a_full_socket_moves_its_client_behind_and_back(pair: Pair) -> None:
    transport, protocol, peer = pair
    hub = Hub(streams=["sensors"])
    client = Client(transport, receiver=protocol, cut_off=lambda c, r: None)
    hub.attach("sensors", client, [])
    group = hub.streams["sensors"].groups[(False, 0)]
    assert client in group.ready
    n = 0
    while client in group.ready:  # nobody reads: the socket, then the transport's buffer fill
        hub.publish("sensors", update(n), conflate="data")
        n += 1
        assert n < 100_000
    assert client in group.behind
    assert not client.ready  # the transport said its buffer is over the high-water mark
    hub.publish("sensors", update(-1), conflate="data")
    hub.publish("sensors", update(-2), conflate="data")
    assert client.pending == 1  # queued and conflated, not written into the full buffer

    received = bytearray()
    loop = asyncio.get_running_loop()
    while b'"n":-2' not in received:
        received += await asyncio.wait_for(loop.sock_recv(peer, 65536), 5)
    await until(lambda: client in group.ready)
    assert b'"n":-1' not in received  # conflated away
    assert client not in group.behind
    hub.publish("sensors", update(-3), conflate="data")  # straight through again
    while b'"n":-3' not in received:
        received += await asyncio.wait_for(loop.sock_recv(peer, 65536), 5)
    assert f'"seq":{n + 3},'.encode() in received

    peer.send(b"ping")  # what comes in still reaches the connection's protocol
    await until(lambda: protocol.received == b"ping")


async def test_a_lost_connection_leaves_the_ready_list(pair: Pair) -> None:
    transport, protocol, peer = pair
    hub = Hub(streams=["sensors"])
    client = Client(transport, receiver=protocol, cut_off=lambda c, r: None)
    hub.attach("sensors", client, [])
    group = hub.streams["sensors"].groups[(False, 0)]
    peer.close()
    transport.abort()
    await until(lambda: client.closed)
    assert protocol.lost  # passed on to the connection
    assert client not in group.ready
    hub.publish("sensors", update(0))  # no write to the dead transport
    hub.detach("sensors", client)
    assert not group.clients
    assert not group.behind


async def test_a_client_closed_from_outside_gets_nothing_more(pair: Pair) -> None:
    transport, protocol, peer = pair
    hub = Hub(streams=["sensors"])
    client = Client(transport, receiver=protocol, cut_off=lambda c, r: None)
    hub.attach("sensors", client, [])
    group = hub.streams["sensors"].groups[(False, 0)]
    client.closed = True  # as the WebSocket endpoint does when it cuts a client off
    assert client not in group.ready
    hub.publish("sensors", update(0))  # after a close frame, no more frames
    transport.write(b"end")
    loop = asyncio.get_running_loop()
    assert await asyncio.wait_for(loop.sock_recv(peer, 65536), 5) == b"end"
