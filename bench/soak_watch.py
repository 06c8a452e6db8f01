"""What the soak watches from outside: WebSocket clients that come and go, an MQTT subscriber,
and the gateway process itself (from ``/proc``), each checking what it is told.

A seq that jumps by more than one is a gap: a message its listener never heard. A seq
equal to the last one is no gap (a fresh ``sensor_update`` after a resume that missed
nothing; a retained message on a resubscribe).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt

from bench import procstat


@dataclass
class SeqCheck:
    """One listener's view of one stream's seq."""

    last: int | None = None
    messages: int = 0
    gaps: int = 0
    missed: int = 0
    backwards: int = 0

    def heard(self, seq: int) -> None:
        self.messages += 1
        if self.last is not None and seq > self.last + 1:
            self.gaps += 1
            self.missed += seq - self.last - 1
        elif self.last is not None and seq < self.last:
            self.backwards += 1
        if self.last is None or seq > self.last:
            self.last = seq


@dataclass
class Crowd:
    """The WebSocket clients' tally."""

    connections: int = 0
    resumes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    streams: dict[str, SeqCheck] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        checks = self.streams.values()
        return {
            "connections": self.connections,
            "resumes": self.resumes,
            "messages": sum(c.messages for c in checks),
            "gaps": sum(c.gaps for c in checks),
            "missed": sum(c.missed for c in checks),
            "backwards": sum(c.backwards for c in checks),
            "failed_connects": sum(self.failures.values()),
        }


async def visitor(
    index: int, url: str, http: aiohttp.ClientSession, crowd: Crowd, deadline: float
) -> None:
    """One of the coming-and-going clients: stays 3-20 s, leaves, comes back with ?since=."""
    rng = random.Random(index)
    path = "/ws/alerts" if index % 4 == 0 else "/ws/sensors"
    check = crowd.streams.setdefault(f"{index}", SeqCheck())
    await asyncio.sleep(rng.uniform(0, 5))  # not all at once
    while time.monotonic() < deadline:
        query = "" if check.last is None else f"?since={check.last}"
        crowd.resumes += bool(query)
        try:
            async with http.ws_connect(url + path + query, heartbeat=None) as ws:
                crowd.connections += 1
                leave = min(deadline, time.monotonic() + rng.uniform(3, 20))
                while (left := leave - time.monotonic()) > 0:
                    try:
                        message = await ws.receive(timeout=left)
                    except TimeoutError:
                        break
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        break
                    seq = json.loads(message.data).get("seq")
                    if isinstance(seq, int):
                        check.heard(seq)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            crowd.failures[type(exc).__name__] += 1
        await asyncio.sleep(rng.uniform(0.1, 1.5))


@dataclass
class Uplink:
    """What the MQTT subscriber heard: the sensors seq, and the alert events."""

    sensors: SeqCheck = field(default_factory=SeqCheck)
    events: list[dict[str, Any]] = field(default_factory=list)
    sessions: int = 0


async def subscriber(port: int, prefix: str, uplink: Uplink) -> None:
    """A persistent QoS 1 session (the broker keeps it across its restarts), reconnecting
    until cancelled."""
    while True:
        try:
            async with aiomqtt.Client(
                "127.0.0.1", port=port, identifier="soak-watch", clean_session=False
            ) as client:
                uplink.sessions += 1
                await client.subscribe(f"{prefix}/sensors", qos=1)
                await client.subscribe(f"{prefix}/alerts/events", qos=1)
                async for message in client.messages:
                    body = json.loads(bytes(message.payload))  # type: ignore[arg-type, unused-ignore]
                    if str(message.topic).endswith("/sensors"):
                        uplink.sensors.heard(int(body["seq"]))
                    else:
                        uplink.events.append(body)
        except aiomqtt.MqttError:
            await asyncio.sleep(0.5)


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # s since the campaign began
    rss: int
    fds: int
    clients: int  # WebSocket connections open at the same moment (each holds one fd)
    threads: int
    cpu: float  # s of CPU used so far
    db: int
    wal: int


def sample(pid: int, db: Path, t: float, clients: int) -> Sample:
    """The gateway process and its database now."""
    threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
    wal = db.with_name(db.name + "-wal")
    return Sample(
        t=t,
        rss=procstat.rss_bytes(pid),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        clients=clients,
        threads=threads,
        cpu=procstat.cpu_seconds(pid),
        db=db.stat().st_size if db.exists() else 0,
        wal=wal.stat().st_size if wal.exists() else 0,
    )


async def sampler(
    pid: int,
    db: Path,
    clients: Callable[[], Awaitable[int]],
    began: float,
    deadline: float,
    every: float,
    out: Callable[[Sample], None],
) -> None:
    """A sample every ``every`` s until ``deadline``, the last one at it."""
    while True:
        connected = await clients()
        now = time.monotonic()
        out(sample(pid, db, now - began, connected))
        if now >= deadline:
            return
        await asyncio.sleep(min(every, deadline - now))
