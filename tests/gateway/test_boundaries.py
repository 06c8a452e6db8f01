"""Hostile and careless input over real sockets: WebSocket frames and REST requests.

Each bad input gets our own error (an ``error`` message, a 4xx), and the
connection or the server goes on answering. The REST parsers are fuzzed as the
pure functions they are (gateway.params).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.api import params
from gateway.api.server import build_app
from gateway.config import load_config
from simulators.control import RIG
from tests.gateway.conftest import Client, gateway_of, pin, write_config

DEEP = "[" * 20000 + "]" * 20000


@pytest.fixture
async def roomy(aiohttp_client: Callable[..., Any], tmp_path: Path) -> Client:
    """A simulated gateway that takes frames of up to 64 KiB (20,000-deep JSON fits)."""
    path = write_config(tmp_path)
    path.write_text(
        path.read_text().replace("max_message_bytes = 1024", "max_message_bytes = 65536")
    )
    app = build_app(load_config(path), simulate=True, sim_time_scale=0.0)
    client: Client = await aiohttp_client(app)
    pin(app[RIG])
    return client


# a raw WebSocket client: frames as bytes, so nothing hides what the server sends ----------


class RawSocket:
    """A client that sends any frame (invalid UTF-8 too) and reads every frame as sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, client: Client, path: str) -> RawSocket:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {client.host}:{client.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

    async def frame(self) -> tuple[int, bytes] | None:
        """The next frame (opcode, payload), or None at the end of the stream."""
        try:
            first, second = await self.reader.readexactly(2)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return None
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(size)

    async def message(self, kind: str) -> dict[str, Any]:
        """The next text message of ``kind``."""
        async with asyncio.timeout(3):
            while True:
                frame = await self.frame()
                assert frame is not None, "the stream ended"
                assert frame[0] != 8, f"closed: {frame}"
                if frame[0] == 1 and (message := json.loads(frame[1]))["type"] == kind:
                    found: dict[str, Any] = message
                    return found


# WebSocket ------------------------------------------------------------------------------

HOSTILE = [
    (DEEP, "invalid_json"),
    ('{"a":' * 10000 + "1" + "}" * 10000, "invalid_json"),
    ('{"action": "subscribe", "channel": ["a"]}', "unknown_channel"),
    ('{"action": "subscribe", "channel": {"a": 1}}', "unknown_channel"),
    ('{"channel": {"a": 1}}', "missing_action"),
    ('{"action": "ping", "x": NaN}', "invalid_json"),
    ('{"action": "ping", "x": 1e400}', "invalid_json"),
    ('{"action": "subscribe", "channel": "alerts", "since": ' + "9" * 5000 + "}", "invalid_json"),
    ('{"action": "\\ud800"}', "unknown_action"),
]


@pytest.mark.parametrize("path", ["/ws", "/ws/alerts", "/ws/sensors"])
async def test_hostile_frames_get_errors_and_ping_still_pongs(roomy: Client, path: str) -> None:
    async with roomy.ws_connect(path) as ws:
        for text, code in HOSTILE:
            await ws.send_str(text)
            while (reply := await ws.receive_json(timeout=3))["type"] != "error":
                pass  # the stream's own messages
            if path != "/ws" and code == "unknown_channel":
                code = "unknown_action"  # subscribe is no action of the fixed endpoints
            assert (reply["error"], text[:40]) == (code, text[:40])
            assert reply["detail"]
        await ws.send_bytes(b"\x00\xff")
        while (reply := await ws.receive_json(timeout=3))["type"] != "error":
            pass
        assert reply["error"] == "binary_not_supported"
        await ws.send_json({"action": "ping"})
        while (reply := await ws.receive_json(timeout=3))["type"] != "pong":
            pass


async def test_invalid_utf8_text_closes_1007_and_the_server_goes_on(roomy: Client) -> None:
    """RFC 6455 8.1: a text frame that is not UTF-8 fails that connection (1007); aiohttp
    does it before the session sees the frame. Other clients, and new ones, go on."""
    bystander = await roomy.ws_connect("/ws/alerts")
    await bystander.receive_json(timeout=3)
    raw = await RawSocket.open(roomy, "/ws/alerts")
    await raw.message("initial")
    raw.send(0x1, b'{"action": "\xff\xfe"}')
    async with asyncio.timeout(3):
        while (frame := await raw.frame()) is not None and frame[0] != 8:
            pass
    assert frame is not None
    assert struct.unpack("!H", frame[1][:2])[0] == 1007
    raw.writer.close()
    await bystander.send_json({"action": "ping"})
    while (await bystander.receive_json(timeout=3))["type"] != "pong":
        pass
    await bystander.close()
    async with roomy.ws_connect("/ws/alerts") as fresh:
        assert (await fresh.receive_json(timeout=3))["type"] == "initial"


async def test_no_frame_follows_the_close_frame_on_shutdown(roomy: Client) -> None:
    """RFC 6455 5.5.1: after sending Close, an endpoint sends no more data frames."""
    hub = gateway_of(roomy).hub
    raw = await RawSocket.open(roomy, "/ws/sensors")
    await raw.message("sensor_update")
    publishing = asyncio.Event()

    async def publish() -> None:
        while True:
            hub.publish("sensors", {"type": "sensor_update", "data": {}})
            publishing.set()
            await asyncio.sleep(0)

    async def read_all() -> list[tuple[int, bytes]]:
        frames = []
        while (frame := await raw.frame()) is not None:
            frames.append(frame)
            if frame[0] == 8:
                raw.send(0x8, frame[1][:2])  # answer the Close; keep reading to the end
        return frames

    publisher = asyncio.create_task(publish())
    reader = asyncio.create_task(read_all())
    await asyncio.wait_for(publishing.wait(), 3)
    try:
        await asyncio.wait_for(roomy.server.close(), 8)
        frames = await asyncio.wait_for(reader, 3)
    finally:
        publisher.cancel()
        reader.cancel()
    opcodes = [opcode for opcode, _ in frames]
    assert 8 in opcodes
    assert opcodes.count(1) > 0  # broadcasts were arriving until the close
    after = opcodes[opcodes.index(8) + 1 :]
    assert after == [], f"{len(after)} frames after the Close frame"
    assert struct.unpack("!H", frames[opcodes.index(8)][1][:2])[0] == 1001


# REST: real requests --------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "since=nan",
        "since=inf",
        "since=-inf",
        "since=1e400",
        "since=-5",
        "since=yesterday",
        "until=nan",
        "since=100&until=50",
        "limit=0",
        "limit=-1",
        "limit=1e3",
        "limit=" + "9" * 40,
        "limit=%D9%A1",  # an Arabic-Indic one: isdigit() says yes, int() too
    ],
)
@pytest.mark.parametrize("path", ["/api/alerts/history", "/api/sensors/history?measurement=ph"])
async def test_bad_history_queries_are_422(client: Client, path: str, query: str) -> None:
    joined = path + ("&" if "?" in path else "?") + query
    response = await client.get(joined)
    assert response.status == 422, await response.text()
    body = await response.json()
    assert body["error"] == "invalid_query"
    assert query.split("=")[0] in body["detail"] or "until" in body["detail"]
    assert (await client.get("/healthz")).status == 200


async def test_good_history_queries_still_answer(client: Client) -> None:
    for query in ("since=0", "since=2026-01-01T00:00:00Z&until=2100-01-01T00:00:00Z&limit=5"):
        response = await client.get("/api/alerts/history?" + query)
        assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    "query", ["wait=nan", "wait=inf", "wait=-1", "wait=soon", "wait=1&since=-1", "wait=1&since=x"]
)
async def test_bad_long_poll_is_refused_at_once(client: Client, query: str) -> None:
    async with asyncio.timeout(3):
        response = await client.get("/api/alerts/summary?" + query)
    assert response.status == 400
    assert (await response.json())["detail"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (DEEP.encode(), "nested"),
        (b'{"alert_id": ' * 5000 + b'"x"' + b"}" * 5000, "nested"),
        (b'{"alert_id": ["a"]}', "alert_id"),
        (b'{"alert_id": {"a": 1}}', "alert_id"),
        (b'{"alert_id": NaN}', "NaN"),
        (b'{"alert_id": 1e400}', "range"),
        (b'{"alert_id": "\\ud800"}', "surrogate"),
        (b'{"alert_id": "\xff"}', "UTF-8"),
        (b'{"alert_id": "x", "": 1}', "unknown key"),
    ],
)
async def test_odd_dismiss_bodies_are_422(client: Client, body: bytes, fragment: str) -> None:
    response = await client.post("/alerts/dismiss", data=body)
    assert response.status == 422, await response.text()
    assert fragment in (await response.json())["detail"]
    assert (await client.get("/healthz")).status == 200


# REST: the pure parsers, fuzzed ---------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children)
    ),
    max_leaves=10,
)
QUERY_VALUE = st.one_of(
    st.text(max_size=30),
    st.lists(st.integers(0xD800, 0xDFFF).map(chr) | st.characters(), max_size=10).map("".join),
    st.floats().map(repr),
    st.integers().map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "2026-11-27T10:00:00Z", "0", "1000"]),
)


@settings(max_examples=200, deadline=None)
@given(body=st.one_of(st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode())))
def test_dismiss_body_gives_an_id_or_bad_input(body: bytes) -> None:
    try:
        alert_id = params.dismissal(body)
    except params.BadInput as exc:
        problem: params.BadInput | None = exc
    else:
        problem = None
        assert alert_id
        alert_id.encode()
    if problem is not None:
        assert problem.code == "invalid_body"
        problem.detail.encode()  # fit for a JSON reply


@settings(max_examples=200, deadline=None)
@given(
    dismiss=st.fixed_dictionaries({}, optional={"alert_id": JSON}),
    extra=st.dictionaries(st.text(max_size=5), JSON, max_size=2),
)
def test_dismiss_object_gives_an_id_or_bad_input(
    dismiss: dict[str, Any], extra: dict[str, Any]
) -> None:
    body = json.dumps({**dismiss, **extra}).encode()
    alert_id = dismiss.get("alert_id")
    if set(extra) <= {"alert_id"} and isinstance(extra.get("alert_id", alert_id), str):
        wanted = extra.get("alert_id", alert_id)
        if wanted and len(wanted) <= 200 and not any(0xD800 <= ord(c) <= 0xDFFF for c in wanted):
            assert params.dismissal(body) == wanted
            return
    with pytest.raises(params.BadInput):
        params.dismissal(body)


@settings(max_examples=200, deadline=None)
@given(
    query=st.dictionaries(
        st.sampled_from(["since", "until", "limit", "wait"]), QUERY_VALUE, max_size=4
    )
)
def test_query_gives_typed_values_or_bad_input(query: dict[str, str]) -> None:
    problems = []
    try:
        since, until, limit = params.time_range(query, 1.8e9, 3600.0, 10000)
    except params.BadInput as exc:
        problems.append(exc.detail.split(":")[0])
    else:
        assert 0 <= since <= until <= params.LATEST_TIME
        assert 1 <= limit <= 10000
    try:
        poll = params.long_poll(query, 7, 60.0)
    except params.BadInput as exc:
        problems.append(exc.detail.split(":")[0])
    else:
        assert poll is None or (0.0 <= poll[0] <= 60.0 and poll[1] >= 0)
    assert set(problems) <= {"since", "until", "limit", "wait"}  # each names its key
