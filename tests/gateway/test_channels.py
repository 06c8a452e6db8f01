"""/ws with channels, compression, and the per-connection rate limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import WSMsgType

from tests.gateway.alerting import CRITICAL, WARNING, ZERO, read_ph
from tests.gateway.conftest import Client, gateway_of
from tests.helpers import next_news, next_of


async def test_subscribe_gets_subscribed_then_the_opening(client: Client) -> None:
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"action": "subscribe", "channel": "alerts"})
        subscribed = await ws.receive_json(timeout=2)
        initial = await ws.receive_json(timeout=2)
        await ws.send_json({"action": "subscribe", "channel": "sensors"})
        assert (await next_of(ws, "subscribed"))["channel"] == "sensors"
        update = await next_of(ws, "sensor_update")
    assert subscribed == {**subscribed, "type": "subscribed", "channel": "alerts"}
    assert initial["type"] == "initial"
    assert initial["channel"] == "alerts"
    assert initial["data"] == ZERO
    assert update["channel"] == "sensors"


async def test_every_message_on_ws_names_its_channel(client: Client) -> None:
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"action": "subscribe", "channel": "alerts"})
        await next_of(ws, "initial")
        await read_ph(client, 9.5)
        update = await next_of(ws, "update")
        await ws.send_json({"action": "ping"})
        pong = await next_of(ws, "pong")
        await ws.send_json({"action": "refresh", "channel": "alerts"})
        refresh = await next_of(ws, "refresh")
    assert update["channel"] == "alerts"
    assert update["data"]["critical"] == 1
    assert pong["channel"] is None  # not about any channel, but it says so
    assert refresh["channel"] == "alerts"


async def test_unsubscribe_stops_the_stream(client: Client) -> None:
    gateway = gateway_of(client)
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"action": "subscribe", "channel": "alerts"})
        await next_of(ws, "initial")
        await ws.send_json({"action": "unsubscribe", "channel": "alerts"})
        assert (await next_of(ws, "unsubscribed"))["channel"] == "alerts"
        await read_ph(client, 9.5)
        assert gateway.hub.streams["alerts"].seq == 1  # an update went out to subscribers
        await ws.send_json({"action": "ping"})
        after = await ws.receive_json(timeout=2)
    assert after["type"] == "pong"  # the update was not sent to this one


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"action": "subscribe", "channel": "weather"}, "unknown_channel"),
        ({"action": "subscribe"}, "unknown_channel"),
        ({"action": "subscribe", "channel": "alerts", "since": "yesterday"}, "invalid_since"),
        ({"action": "dance"}, "unknown_action"),
    ],
)
async def test_channel_mistakes_get_an_error_and_the_connection_stays(
    client: Client, message: dict[str, Any], code: str
) -> None:
    async with client.ws_connect("/ws") as ws:
        await ws.send_json(message)
        error = await next_of(ws, "error")
        await ws.send_json({"action": "ping"})
        assert (await next_of(ws, "pong"))["type"] == "pong"
    assert error["error"] == code


async def test_subscribe_with_since_replays(client: Client) -> None:
    gateway = gateway_of(client)
    seq = gateway.hub.streams["alerts"].seq
    await read_ph(client, 4.0)
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"action": "subscribe", "channel": "alerts", "since": seq})
        await next_of(ws, "subscribed")
        replayed = await ws.receive_json(timeout=2)
    assert replayed["type"] == "update"
    assert replayed["seq"] == seq + 1
    assert replayed["channel"] == "alerts"


async def test_subscribe_is_not_an_action_of_the_fixed_endpoints(client: Client) -> None:
    async with client.ws_connect("/ws/alerts") as ws:
        await ws.receive_json(timeout=2)
        await ws.send_json({"action": "subscribe", "channel": "sensors"})
        error = await next_of(ws, "error")
    assert error["error"] == "unknown_action"


# compression ----------------------------------------------------------------------


async def test_deflate_is_not_negotiated_when_off(client: Client) -> None:
    async with client.ws_connect("/ws/sensors", compress=15) as ws:
        assert ws.compress == 0
        assert (await ws.receive_json(timeout=2))["type"] == "sensor_update"


async def test_deflate_when_on_carries_every_kind_of_message(
    make_client: Callable[..., Any],
) -> None:
    client: Client = await make_client(server_extra="compression = true")
    gateway = gateway_of(client)
    async with client.ws_connect("/ws/alerts", compress=15) as ws:
        assert ws.compress == 15
        assert (await ws.receive_json(timeout=2))["type"] == "initial"
        for ph in (8.7, 9.5, 7.25):  # broadcasts: one compressed frame shared by all
            await read_ph(client, ph)
        await ws.send_json({"action": "ping"})  # a reply for this client alone
        got = [await ws.receive_json(timeout=2)]
        while got[-1]["type"] != "pong":
            got.append(await ws.receive_json(timeout=2))
    got = [m for m in got if m["type"] != "heartbeat"]
    assert [m["type"] for m in got] == ["update", "update", "update", "pong"]
    assert [m["data"] for m in got[:3]] == [WARNING, CRITICAL, ZERO]
    assert gateway.hub.streams["alerts"].seq == 3
    async with client.ws_connect("/ws/alerts") as plain:  # a client that does not offer it
        assert plain.compress == 0
        assert (await plain.receive_json(timeout=2))["seq"] == 3


# rate limit -----------------------------------------------------------------------


async def test_a_flood_is_limited_without_harming_others(make_client: Callable[..., Any]) -> None:
    client: Client = await make_client(server_extra="action_rate = 20.0\naction_burst = 40")
    async with client.ws_connect("/ws/sensors") as calm, client.ws_connect("/ws/alerts") as flood:
        await calm.receive_json(timeout=2)
        await flood.receive_json(timeout=2)
        for _ in range(45):  # a burst of 40 passes, then the limit bites
            await flood.send_json({"action": "ping"})
        replies = [await next_news(flood) for _ in range(41)]
        assert [r["type"] for r in replies].count("pong") == 40
        assert replies[-1]["error"] == "rate_limited"
        for _ in range(100):  # it goes on: 1008
            await flood.send_json({"action": "ping"})
        async with asyncio.timeout(3):
            while (message := await flood.receive()).type is not WSMsgType.CLOSE:
                pass
        assert message.data == 1008
        # The calm client kept getting its readings all along.
        seqs = [(await next_of(calm, "sensor_update"))["seq"] for _ in range(3)]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
