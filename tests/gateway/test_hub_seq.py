"""A stream's seq is what clients can have seen: news being stored (prepared, not yet
delivered) is neither replayed nor announced, and a client that resumes meanwhile gets
it live, once, with no gap."""

from __future__ import annotations

import asyncio

from gateway.api.hub import Hub


def test_prepared_news_is_not_the_streams_seq_until_delivered() -> None:
    hub = Hub(history=10)
    stream = hub.streams["alerts"]
    hub.publish("alerts", {"type": "update", "data": {"total": 1}})
    seen = stream.seq
    pending = hub.prepare("alerts", {"type": "update", "data": {"total": 2}})
    assert pending["seq"] == seen + 1
    assert stream.seq == seen  # what a new client's initial and X-Seq say
    assert stream.since(seen) == []  # nothing to replay yet: it will come live
    hub.deliver("alerts", pending)
    assert stream.seq == seen + 1
    assert len(stream.since(seen) or []) == 1  # now it is replayed


def test_numbering_goes_on_from_what_was_prepared() -> None:
    hub = Hub(history=10)
    first = hub.prepare("alerts", {"type": "update"})
    second = hub.prepare("alerts", {"type": "dismissed"})
    assert (first["seq"], second["seq"]) == (1, 2)
    hub.deliver("alerts", first)
    hub.deliver("alerts", second)
    assert hub.streams["alerts"].seq == 2


async def test_a_long_poll_waits_for_delivery_not_for_numbering() -> None:
    hub = Hub(history=10)
    stream = hub.streams["alerts"]
    pending = hub.prepare("alerts", {"type": "update"})
    waiter = asyncio.create_task(stream.news_after(0))
    await asyncio.sleep(0)
    assert not waiter.done()  # numbered, not yet delivered
    hub.deliver("alerts", pending)
    await asyncio.wait_for(waiter, 1)
