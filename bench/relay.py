"""A relay fed by N gateways over MQTT, serving M WebSocket clients, against the floor.

One process publishes, every INTERVAL s, the ``sensor_update`` of each of N
simulated gateways to a real Mosquitto (the very payload a gateway's Uplink
publishes, on ``reservoirs/<id>/sensors``). A ``sensor-gateway relay`` process
passes them on to M clients on ``/ws/sensors?reservoir=<id>``, spread evenly
over the sites. Beside it, the floor (:mod:`bench.baselines.floor`: one frame
written to every transport) broadcasts at the same rate to M clients of its
own. Over the same window, each server's CPU (from ``/proc``) is divided by
the frames its clients received: the relay's CPU per delivery, all of its MQTT
work included, as a multiple of the floor's. The relay's memory per client is
its RSS with the M clients connected less its RSS before, over M.

The clients are aiohttp WebSockets in this process; their cost is not the
servers'. The table also goes into docs/scaling.md between the
``<!-- bench:relay begin -->`` and ``<!-- bench:relay end -->`` markers: by a
full run, or by a quick run where no full run's figures are there yet.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt

from bench import Report, markdown_table, procstat
from bench.baselines.common import SENSOR_DATA
from bench.fanout_procs import child_env
from bench.gateway_process import stop
from bench.loopback import Broker, mosquitto_installed
from gateway.alerts.store import Store
from gateway.api.frames import stamp
from gateway.config import MqttConfig
from gateway.mqtt.uplink import Uplink

ROOT = Path(__file__).resolve().parent.parent
SCALING = ROOT / "docs" / "scaling.md"
BEGIN, END = "<!-- bench:relay begin -->", "<!-- bench:relay end -->"
INTERVAL = 0.5  # s between one gateway's sensor_updates, and between the floor's broadcasts


@dataclass(slots=True)
class Child:
    """A process this benchmark started, and where it listens."""

    proc: asyncio.subprocess.Process
    port: int = 0
    url: str = ""
    drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass(frozen=True, slots=True)
class Plan:
    gateways: int
    clients: int
    window: float  # s


QUICK = Plan(gateways=4, clients=100, window=6.0)
FULL = Plan(gateways=32, clients=2000, window=30.0)


async def run(
    *, iterations: int | None = None, quick: bool = False, out: Path | None = None
) -> Report:
    plan = QUICK if quick else FULL
    if not mosquitto_installed():
        return Report("### Relay\n\nSkipped: mosquitto is not installed.")
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            broker = Broker(Path(tmp) / "broker")
            await broker.start()
            stack.push_async_callback(broker.stop)
            relay = await stack.enter_async_context(_process(_relay(Path(tmp), broker.port)))
            floor = await stack.enter_async_context(_process(_floor()))
            row = await _measure(plan, broker.port, relay, floor)
    report = _report(plan, row, quick)
    _write_block(report.text, quick)
    return report


async def _measure(plan: Plan, broker_port: int, relay: Child, floor: Child) -> dict[str, Any]:
    sites = [f"SITE_{i:03d}" for i in range(plan.gateways)]
    received: Counter[str] = Counter()
    async with (
        aiomqtt.Client("127.0.0.1", port=broker_port) as publisher,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        feed = asyncio.create_task(_publish(publisher, sites), name="bench.relay.feed")
        try:
            await _until_serving(http, relay.url, sites)
            rss_before = procstat.rss_bytes(relay.pid)
            relay_paths = [
                f"/ws/sensors?reservoir={sites[i % len(sites)]}" for i in range(plan.clients)
            ]
            readers = [
                *[_reader(relay.url, path, "relay", received) for path in relay_paths],
                *[_reader(floor.url, "/ws/sensors", "floor", received)
                  for _ in range(plan.clients)],
            ]  # fmt: skip
            await _until(
                lambda: received["relay"] >= plan.clients and received["floor"] >= plan.clients
            )
            rss_after = procstat.rss_bytes(relay.pid)
            start = (
                dict(received),
                procstat.cpu_seconds(relay.pid),
                procstat.cpu_seconds(floor.pid),
            )
            await asyncio.sleep(plan.window)  # the measured window
            end = (dict(received), procstat.cpu_seconds(relay.pid), procstat.cpu_seconds(floor.pid))
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        finally:
            feed.cancel()
            await asyncio.gather(feed, return_exceptions=True)
    deliveries = {k: end[0][k] - start[0][k] for k in ("relay", "floor")}
    return {
        "gateways": plan.gateways,
        "clients": plan.clients,
        "window_s": plan.window,
        "deliveries": deliveries,
        "relay_us_per_delivery": (end[1] - start[1]) / max(1, deliveries["relay"]) * 1e6,
        "floor_us_per_delivery": (end[2] - start[2]) / max(1, deliveries["floor"]) * 1e6,
        "relay_rss_per_client_kib": (rss_after - rss_before) / plan.clients / 1024,
        "relay_rss_mib": rss_after / 2**20,
    }


async def _publish(publisher: aiomqtt.Client, sites: list[str]) -> None:
    """Every INTERVAL: one sensor_update per site, as each gateway's Uplink sends it."""
    uplinks = [
        Uplink(MqttConfig(url="mqtt://127.0.0.1"), site, Store(Path("unused")), on_dismiss=_no)
        for site in sites
    ]
    seq = 0
    while True:
        seq += 1
        for site, uplink in zip(sites, uplinks, strict=True):
            message = stamp(
                {"type": "sensor_update", "data": {**SENSOR_DATA, "reservoir_id": site}}, seq
            )
            out = uplink.sensor_update(message)
            await publisher.publish(out.topic, out.payload, qos=out.qos, retain=out.retain)
        await asyncio.sleep(INTERVAL)


async def _no(alert_id: str, by: str | None) -> bool:
    return False


def _reader(url: str, path: str, server: str, received: Counter[str]) -> asyncio.Task[None]:
    return asyncio.create_task(_read(url, path, server, received), name=f"bench.relay.{server}")


async def _read(url: str, path: str, server: str, received: Counter[str]) -> None:
    """A bare WebSocket client: the upgrade, then count the server's text frames. Bare, so
    it costs this process little and asks nothing of a server beyond RFC 6455 framing."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"{url}{path}: {head[:60]!r}")
        while True:
            first, length = await reader.readexactly(2)
            size = length & 0x7F
            if size == 126:
                size = int.from_bytes(await reader.readexactly(2))
            elif size == 127:
                size = int.from_bytes(await reader.readexactly(8))
            await reader.readexactly(size)
            if first & 0x0F == 1:  # a text frame
                received[server] += 1
    finally:
        writer.close()


async def _until_serving(http: aiohttp.ClientSession, url: str, sites: list[str]) -> None:
    async with asyncio.timeout(30):
        while True:
            async with http.get(url + "/api/sites") as response:
                if len(await response.json()) >= len(sites):
                    return
            await asyncio.sleep(0.1)


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - counts that no event announces
            await asyncio.sleep(0.05)


# the processes ---------------------------------------------------------------------------


async def _relay(tmp: Path, broker_port: int) -> Child:
    config = tmp / "relay.toml"
    config.write_text(
        "[server]\nport = 0\nheartbeat_interval = 3600.0\n"
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\n[relay]\nmax_reservoirs = 100000\n'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "relay", "-c", str(config), "--log-level", "WARNING",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        cwd=tmp, env=child_env(), preexec_fn=procstat.die_with_parent,
    )  # fmt: skip
    assert proc.stdout is not None
    banner = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    if " on http://" not in banner:
        raise RuntimeError(f"the relay did not start: {banner!r}")
    return Child(proc, url=banner.split(" on ", 1)[1].split()[0])


async def _floor() -> Child:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.baselines.floor", "--interval", str(INTERVAL),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT, env=child_env(), preexec_fn=procstat.die_with_parent,
    )  # fmt: skip
    assert proc.stdout is not None
    ready = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
    drain = asyncio.create_task(_drain(proc.stdout), name="bench.relay.floor-stdout")
    return Child(proc, url=f"http://127.0.0.1:{ready[1]}", drain=drain)


async def _drain(stream: asyncio.StreamReader) -> None:
    """The floor's line per broadcast: read, so its pipe never fills."""
    while await stream.readline():
        pass


@contextlib.asynccontextmanager
async def _process(starting: Awaitable[Child]) -> AsyncIterator[Child]:
    child = await starting
    proc = child.proc
    try:
        yield child
    finally:
        await stop(proc)
        if child.drain is not None:
            await asyncio.gather(child.drain, return_exceptions=True)


# the report ------------------------------------------------------------------------------


def _report(plan: Plan, row: dict[str, Any], quick: bool) -> Report:
    ratio = row["relay_us_per_delivery"] / max(row["floor_us_per_delivery"], 1e-9)
    table = markdown_table(
        ["gateways", "clients", "relay µs/delivery", "floor µs/delivery", "relay/floor",
         "RSS/client"],
        [[
            str(plan.gateways),
            str(plan.clients),
            f"{row['relay_us_per_delivery']:.1f}",
            f"{row['floor_us_per_delivery']:.1f}",
            f"{ratio:.1f}x",
            f"{row['relay_rss_per_client_kib']:.1f} KiB",
        ]],
    )  # fmt: skip
    mode = "quick" if quick else "full"
    text = (
        f"### Relay: {plan.gateways} gateways over MQTT, {plan.clients} clients ({mode} run)\n\n"
        f"One sensor_update per gateway every {INTERVAL} s; CPU over a {plan.window:.0f} s "
        f"window per frame delivered (the relay's MQTT work included), beside the floor.\n\n"
        + table
    )
    return Report(text, {**row, "ratio": ratio, "mode": mode})


def _write_block(text: str, quick: bool) -> None:
    """Put the table between the markers of docs/scaling.md (a quick run never replaces a
    full run's)."""
    if not SCALING.exists():
        return
    doc = SCALING.read_text()
    if BEGIN not in doc or END not in doc:
        return
    head, rest = doc.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    if quick and "(full run)" in current:
        return
    stamp_line = f"<!-- generated by python -m bench relay, {time.strftime('%Y-%m-%d')} -->"
    SCALING.write_text(f"{head}{BEGIN}\n{stamp_line}\n{text}\n{END}{tail}")
