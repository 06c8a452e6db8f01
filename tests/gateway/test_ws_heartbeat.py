"""The heartbeat: one sweep pings every client; a peer that does not answer is dropped.

The sweep pings every ``max(heartbeat_interval, MIN_PING_INTERVAL)`` seconds and
drops, half an interval later, a peer that has sent nothing since (a dead peer
behind a NAT or a pulled cable); a peer that answers stays.
"""

from __future__ import annotations

import asyncio

import aiohttp

from gateway.api.websocket import MIN_PING_INTERVAL
from tests.gateway.conftest import Client


async def test_a_peer_that_does_not_answer_pings_is_dropped_and_one_that_does_stays(
    client: Client,
) -> None:
    async with (
        client.ws_connect("/ws/sensors", autoping=False) as silent,
        client.ws_connect("/ws/sensors") as alive,
    ):
        replies: asyncio.Queue[dict[str, object]] = asyncio.Queue()

        async def listen() -> None:  # aiohttp's client answers a Ping while it reads
            async for message in alive:
                replies.put_nowait(message.json())

        listening = asyncio.create_task(listen())
        pinged = False
        while True:  # the silent peer hears a Ping, says nothing, and is dropped
            message = await silent.receive(timeout=MIN_PING_INTERVAL * 2)
            if message.type is aiohttp.WSMsgType.PING:
                pinged = True
            elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
        assert pinged
        await alive.send_json({"action": "ping"})  # answered its Ping (autoping): still here
        while (reply := await asyncio.wait_for(replies.get(), 5))["type"] != "pong":
            pass
        assert reply["type"] == "pong"
        assert not alive.closed
        listening.cancel()
