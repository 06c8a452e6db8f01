"""SerialLine on real ptys and sockets, against small hand-made peers."""

from __future__ import annotations

import asyncio
import itertools
import os
import tty
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from drivers.errors import CRCError, DeviceTimeout, PortDisconnected, ProtocolError
from drivers.modbus_rtu import (
    ReadRequest,
    ReadResponse,
    RequestDecoder,
    ResponseDecoder,
    frame,
)
from drivers.serial_line import SerialLine

REQUEST = ReadRequest(1, 3, 0, 2)
REPLY = frame(ReadResponse(1, 3, (0x42F6, 0xE979)))


@dataclass
class Peer:
    """The device end of a pty, answering each request with what ``answer`` returns."""

    answer: Callable[[bytes], bytes]
    master: int = -1
    path: str = ""
    requests: list[tuple[float, bytes]] = field(default_factory=list)
    decoder: RequestDecoder = field(default_factory=RequestDecoder)

    def start(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(slave)
        os.set_blocking(self.master, False)
        self._slave = slave
        self.path = os.ttyname(slave)
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def stop(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self._slave)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def _readable(self) -> None:
        data = os.read(self.master, 1024)
        for request in self.decoder.feed(data):
            assert isinstance(request, ReadRequest)
            wire = frame(request)
            self.requests.append((asyncio.get_running_loop().time(), wire))
            if reply := self.answer(wire):
                self.send(reply)


@pytest.fixture
async def peer_factory() -> AsyncIterator[Callable[[Callable[[bytes], bytes]], Peer]]:
    peers: list[Peer] = []

    def make(answer: Callable[[bytes], bytes]) -> Peer:
        peer = Peer(answer)
        peer.start()
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.stop()


async def read(line: SerialLine, **options: object) -> ReadResponse:
    return await line.request(frame(REQUEST), lambda: ResponseDecoder(REQUEST), **options)  # type: ignore[arg-type]


async def test_request_and_reply(peer_factory: Callable[..., Peer]) -> None:
    peer = peer_factory(lambda _: REPLY)
    line = SerialLine(peer.path, timeout=0.5)
    try:
        reply = await read(line)
    finally:
        await line.close()
    assert reply.registers == (0x42F6, 0xE979)
    assert line.counters["requests"] == 1
    assert [f.direction for f in line.frames] == ["tx", "rx"]
    assert line.frames[0].as_dict()["hex"] == frame(REQUEST).hex(" ")


async def test_a_reply_in_single_bytes_is_assembled(peer_factory: Callable[..., Peer]) -> None:
    asked = asyncio.Event()
    peer = peer_factory(lambda _: asked.set() or b"")
    line = SerialLine(peer.path, timeout=2.0)

    async def trickle() -> None:
        await asked.wait()
        for byte in REPLY:
            peer.send(bytes([byte]))
            await asyncio.sleep(0.002)

    feeder = asyncio.create_task(trickle(), name="test.trickle")
    try:
        reply = await read(line)
    finally:
        await feeder
        await line.close()
    assert reply.registers == (0x42F6, 0xE979)


async def test_timeout_is_retried_then_raised(peer_factory: Callable[..., Peer]) -> None:
    peer = peer_factory(lambda _: b"")
    line = SerialLine(peer.path, timeout=0.05, retries=2)
    try:
        with pytest.raises(DeviceTimeout, match=r"no complete reply within 0\.05 s"):
            await read(line)
    finally:
        await line.close()
    assert len(peer.requests) == 3
    assert line.counters["timeout"] == 3


async def test_a_bad_crc_is_retried_and_the_good_reply_taken(
    peer_factory: Callable[..., Peer],
) -> None:
    replies = [REPLY[:-1] + bytes([REPLY[-1] ^ 0xFF]), REPLY]
    peer = peer_factory(lambda _: replies.pop(0))
    line = SerialLine(peer.path, timeout=0.5, retries=1)
    try:
        reply = await read(line)
    finally:
        await line.close()
    assert reply.registers == (0x42F6, 0xE979)
    assert line.counters["crc"] == 1
    assert line.counters["requests"] == 2


async def test_crc_error_when_retries_run_out(peer_factory: Callable[..., Peer]) -> None:
    peer = peer_factory(lambda _: REPLY[:-1] + bytes([REPLY[-1] ^ 0xFF]))
    line = SerialLine(peer.path, timeout=0.5, retries=0)
    try:
        with pytest.raises(CRCError):
            await read(line)
    finally:
        await line.close()


async def test_stale_input_is_flushed_before_a_request(peer_factory: Callable[..., Peer]) -> None:
    peer = peer_factory(lambda _: REPLY)
    line = SerialLine(peer.path, timeout=0.5)
    seen: list[bytes] = []
    line.on_stale = seen.append
    try:
        await line.open()
        peer.send(b"\x01\x03\x04junk")  # a late reply to something long gone
        reply = await read(line)
    finally:
        await line.close()
    assert reply.registers == (0x42F6, 0xE979)
    assert seen == [b"\x01\x03\x04junk"]
    assert line.frames[0].direction == "drop"


async def test_echo_of_the_request_is_skipped(peer_factory: Callable[..., Peer]) -> None:
    peer = peer_factory(lambda request: request + REPLY)  # a 2-wire adapter hears itself
    line = SerialLine(peer.path, timeout=0.5, echo=True)
    try:
        reply = await read(line)
    finally:
        await line.close()
    assert reply.registers == (0x42F6, 0xE979)


async def test_echo_expected_but_missing_is_a_protocol_error(
    peer_factory: Callable[..., Peer],
) -> None:
    peer = peer_factory(lambda _: REPLY)
    line = SerialLine(peer.path, timeout=0.5, echo=True, retries=0)
    try:
        with pytest.raises(ProtocolError, match="echo"):
            await read(line)
    finally:
        await line.close()


async def test_request_gap_keeps_the_line_quiet(peer_factory: Callable[..., Peer]) -> None:
    peer = peer_factory(lambda _: REPLY)
    line = SerialLine(peer.path, timeout=0.5, request_gap=0.08)
    try:
        for _ in range(3):
            await read(line)
    finally:
        await line.close()
    starts = [t for t, _ in peer.requests]
    assert all(b - a >= 0.08 for a, b in itertools.pairwise(starts))


async def test_one_request_at_a_time(peer_factory: Callable[..., Peer]) -> None:
    in_flight = 0
    most = 0

    def answer(_: bytes) -> bytes:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        asyncio.get_running_loop().call_later(0.01, lambda: (peer.send(REPLY), done()))
        return b""

    def done() -> None:
        nonlocal in_flight
        in_flight -= 1

    peer = peer_factory(answer)
    line = SerialLine(peer.path, timeout=0.5)
    try:
        replies = await asyncio.gather(*(read(line) for _ in range(5)))
    finally:
        await line.close()
    assert len(replies) == 5
    assert most == 1


async def test_a_missing_port_is_named() -> None:
    line = SerialLine("/dev/serial/by-id/usb-nothing-here", reconnect_min=10.0)
    with pytest.raises(PortDisconnected, match="usb-nothing-here"):
        await line.open()
    # While backing off, requests fail at once, saying when it tries again.
    with pytest.raises(PortDisconnected, match="next try in"):
        await read(line)
    with pytest.raises(PortDisconnected, match="next try in"):
        await read(line)
    assert line.absent
    # Refused requests are not losses: "disconnected" counts open ports lost.
    assert line.counters["disconnected"] == 0
    assert line.counters["requests"] == 0
    assert line._next_open > line._clock() + 9  # one backoff, not three


async def test_a_port_has_one_owner(peer_factory: Callable[..., Peer]) -> None:
    peer = peer_factory(lambda _: REPLY)
    first, second = SerialLine(peer.path), SerialLine(peer.path)
    await first.open()
    try:
        with pytest.raises(PortDisconnected, match=peer.path):
            await second.open()
    finally:
        await first.close()


async def test_socket_url_ports_work() -> None:
    """``socket://host:port`` (a serial-to-Ethernet converter) is a port like any other."""
    decoder = RequestDecoder()

    async def device(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(256):
            for _ in decoder.feed(data):
                writer.write(REPLY)
        writer.close()

    server = await asyncio.start_server(device, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    line = SerialLine(f"socket://127.0.0.1:{port}", timeout=0.5)
    try:
        reply = await read(line)
    finally:
        await line.close()
        server.close()
        await server.wait_closed()
    assert reply.registers == (0x42F6, 0xE979)
