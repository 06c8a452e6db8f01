"""The soak: the gateway on its simulators under a fault campaign for MINUTES, watched from outside.

``python -m bench.soak --minutes 60`` (``make soak MINUTES=60``) starts a real
Mosquitto on a free port and ``sensor-gateway run --simulate`` on a data dir in a
temporary folder, then for the given minutes, all at once:

- the pH adapter is pulled for 10 s every minute (``unplug``), and the time from
  its replug to the first good pH reading is measured;
- the Modbus level transmitter answers with broken CRCs every 45 s until 5 are
  counted; the temperature transmitter (unit 2) is dead for 15 s every 90 s;
- the broker is stopped for 20 s every 3 minutes;
- the pH goes over its warning bound for 8 s every 30 s (an alert raised, then cleared);
- 200 WebSocket clients come and go, resuming with ``?since=``; an MQTT subscriber
  listens to the sensors and the alert events;
- every 10 s the gateway's RSS, open files, threads, CPU and database are sampled.

Then it checks seq continuity (WebSocket and MQTT), that every caused alert is in
the history and on MQTT, the replug times, and the log's errors, and writes the
report (README.md, results.json, plots) to docs/bench/soak/; results.json keeps
every sample (``campaign.samples``: t, rss, fds, clients, threads, cpu, db, wal) for
later study. Three processes in all: the gateway, the broker and this one.
Everything is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import gateway_process, loopback, procstat, soak_report
from bench.fanout_procs import child_env
from bench.soak_watch import Crowd, Sample, Uplink, sampler, subscriber, visitor
from gateway.service import DB_NAME

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "bench" / "soak"
CLIENTS = 200
RESERVOIR = "EMBALSE_01"
#: The pH the excursions go to (over warning_high 8.5), and back to.
PH_HIGH, PH_NORMAL = 8.7, 7.4
SETTLE = 15.0  # s after the campaign for the last messages to arrive


@dataclass
class Campaign:
    """What was done to the gateway, and what it was seen to do about it."""

    unplugs: int = 0
    recoveries: list[float | None] = field(default_factory=list)  # s from replug to good pH
    crc_bursts: int = 0
    crc_errors: int = 0
    dead_units: int = 0
    neighbour_kept_reading: int = 0
    broker_outages: int = 0
    excursions: list[float] = field(default_factory=list)  # epoch s each one began
    samples: list[Sample] = field(default_factory=list)


class Gateway:
    """The gateway under test, reached over HTTP."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url, self.http = url, http

    async def simulate(self, target: str, body: dict[str, Any]) -> None:
        async with self.http.put(f"{self.url}/api/simulator/{target}", json=body) as response:
            response.raise_for_status()

    async def metric(self, name: str, **labels: str) -> float | None:
        async with self.http.get(f"{self.url}/metrics") as response:
            text = await response.text()
        inside = ",".join(f'{k}="{v}"' for k, v in labels.items())
        key = f"{name}{{{inside}}} " if labels else f"{name} "
        for line in text.splitlines():
            if line.startswith(key):
                return float(line[len(key) :])
        return None

    async def clients(self) -> int:
        """WebSocket connections open now, on every stream."""
        async with self.http.get(f"{self.url}/metrics") as response:
            text = await response.text()
        return int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("gateway_ws_connections{")
            )
        )

    async def history(self, since: float) -> list[dict[str, Any]]:
        async with self.http.get(
            f"{self.url}/api/alerts/history", params={"since": str(since)}
        ) as response:
            response.raise_for_status()
            events: list[dict[str, Any]] = await response.json()
            return events


# the faults ----------------------------------------------------------------------------


async def pull_ph(gateway: Gateway, campaign: Campaign) -> None:
    """10 s unplugged; then the time from the replug to the first good pH reading."""
    await gateway.simulate("ph", {"fault": "unplug"})
    campaign.unplugs += 1
    await asyncio.sleep(10)
    replugged = time.monotonic()
    await gateway.simulate("ph", {"fault": None})
    recovery: float | None = None
    while time.monotonic() - replugged < 15:
        age = await gateway.metric("gateway_sensor_last_good_age_seconds", measurement="ph")
        now = time.monotonic()
        if age is not None and age < now - replugged:
            recovery = now - age - replugged
            break
        await asyncio.sleep(0.05)
    campaign.recoveries.append(recovery)


async def break_crcs(gateway: Gateway, campaign: Campaign) -> None:
    """Broken CRCs from the level transmitter until 5 are counted (at most 10 s)."""
    kind = {"bus": "rs485-1", "kind": "crc"}
    before = await gateway.metric("gateway_serial_errors_total", **kind) or 0.0
    await gateway.simulate("modbus-1", {"fault": "crc"})
    campaign.crc_bursts += 1
    counted = before
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            while counted - before < 5:
                await asyncio.sleep(0.1)
                counted = await gateway.metric("gateway_serial_errors_total", **kind) or 0.0
    await gateway.simulate("modbus-1", {"fault": None})
    campaign.crc_errors += int(counted - before)


async def kill_unit(gateway: Gateway, campaign: Campaign) -> None:
    """Unit 2 dead for 15 s; its neighbour on the line must keep reading meanwhile."""
    await gateway.simulate("modbus-2", {"fault": "timeout"})
    campaign.dead_units += 1
    await asyncio.sleep(15)
    age = await gateway.metric("gateway_sensor_last_good_age_seconds", measurement="water_level")
    campaign.neighbour_kept_reading += age is not None and age < 10
    await gateway.simulate("modbus-2", {"fault": None})


async def excursion(gateway: Gateway, campaign: Campaign) -> None:
    """The pH over its warning bound for 8 s: one alert raised, then cleared."""
    campaign.excursions.append(time.time())
    await gateway.simulate("ph", {"value": PH_HIGH})
    await asyncio.sleep(8)
    await gateway.simulate("ph", {"value": PH_NORMAL})


async def periodically(
    action: Callable[[], Awaitable[None]], *, period: float, offset: float, lasts: float,
    began: float, deadline: float,
) -> None:  # fmt: skip
    """``action`` at ``offset`` and every ``period`` after, while it can end before ``deadline``."""
    at = began + offset
    while at + lasts < deadline:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        await action()
        at += period


# the processes ---------------------------------------------------------------------------


class Broker(loopback.Broker):
    """The site's broker, which the campaign stops for a while now and then."""

    async def outage(self, campaign: Campaign) -> None:
        await self.stop()
        campaign.broker_outages += 1
        await asyncio.sleep(20)
        await self.start()


def gateway_config(tmp: Path, broker_port: int) -> Path:
    """The embedded default (four probes on the simulators), on a free port, with MQTT, a
    second Modbus unit (the one that dies) beside the level transmitter, and news every 2 s."""
    text = (ROOT / "gateway" / "default.toml").read_text()
    text = text.replace('data_dir = "./data"', f'data_dir = "{tmp / "data"}"')
    text = re.sub(r'(?m)^host = "localhost".*$', 'host = "127.0.0.1"', text)
    text = re.sub(r"(?m)^port = 8000.*$", "port = 0", text)
    # A sensor_update every 2 s (not 10): more seq for the clients to check. The replay
    # history then holds 10 minutes, full before the first quarter of a 60-minute run
    # ends, so the RSS growth after it is not the history filling up.
    text = re.sub(r"(?m)^sensor_interval = .*$", "sensor_interval = 2.0", text)
    text = re.sub(r"(?m)^history = .*$", "history = 300", text)
    unit2 = (
        '\n  [[buses.sensors]]\n  measurement = "line_temperature"\n  unit = 2\n'
        '  register = 0\n  register_type = "input"\n  data_type = "int16"\n  scale = 0.1\n'
    )
    text = text.replace("\n# --- Alert thresholds", unit2 + "\n# --- Alert thresholds", 1)
    text += f'\n[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\n'
    path = tmp / "gateway.toml"
    path.write_text(text)
    return path


async def start_gateway(config: Path, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "run", "--simulate", "-c", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=stderr, cwd=config.parent,
            env=child_env(), preexec_fn=procstat.die_with_parent,
        )  # fmt: skip
    assert proc.stdout is not None
    banner = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    if " on http://" not in banner:
        await gateway_process.stop(proc)
        raise RuntimeError(f"the gateway did not start: {banner!r}; see {log}")
    return proc, banner.split(" on ", 1)[1].split()[0]


async def _until_reading(gateway: Gateway) -> None:
    async with asyncio.timeout(60):
        while await gateway.metric("gateway_sensor_value", measurement="ph") is None:  # noqa: ASYNC110
            await asyncio.sleep(0.2)


# the run -------------------------------------------------------------------------------


async def run(minutes: float, out: Path, every: float = 10.0) -> dict[str, Any]:
    from bench.__main__ import _commit

    commit = _commit()  # what the gateway runs: taken now, as the tree may move on meanwhile
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        tmp = Path(folder)
        broker = Broker(tmp)
        await broker.start()
        log = tmp / "gateway.log"
        proc, url = await start_gateway(gateway_config(tmp, broker.port), log)
        try:
            observed = await _campaign(minutes, every, tmp, broker, proc.pid, url)
        finally:
            await gateway_process.stop(proc)
            await broker.stop()
        observed["log"] = soak_report.log_findings(log.read_text(errors="replace"))
    return soak_report.write(observed, minutes, out, commit)


async def _campaign(
    minutes: float, every: float, tmp: Path, broker: Broker, pid: int, url: str
) -> dict[str, Any]:
    campaign, crowd, uplink = Campaign(), Crowd(), Uplink()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        gateway = Gateway(url, http)
        await _until_reading(gateway)
        listening = asyncio.create_task(
            subscriber(broker.port, f"reservoirs/{RESERVOIR}", uplink),
            name="soak.mqtt",
        )
        began_wall, began = time.time(), time.monotonic()
        deadline = began + minutes * 60

        def every_so_often(action: Callable[[], Awaitable[None]], period: float, offset: float,
                           lasts: float) -> Awaitable[None]:  # fmt: skip
            return periodically(
                action, period=period, offset=offset, lasts=lasts, began=began, deadline=deadline
            )

        work = [
            sampler(pid, tmp / "data" / DB_NAME, gateway.clients, began, deadline, every,
                    campaign.samples.append),
            every_so_often(lambda: pull_ph(gateway, campaign), 60, 5, 12),
            every_so_often(lambda: excursion(gateway, campaign), 30, 20, 10),
            every_so_often(lambda: break_crcs(gateway, campaign), 45, 10, 10),
            every_so_often(lambda: kill_unit(gateway, campaign), 90, 30, 16),
            every_so_often(lambda: broker.outage(campaign), 180, 100, 21),
            *(visitor(i, url.replace("http", "ws", 1), http, crowd, deadline)
              for i in range(CLIENTS)),
        ]  # fmt: skip
        await asyncio.gather(*work)
        await asyncio.sleep(SETTLE)  # the outbox drains; the last alerts clear
        history = await gateway.history(began_wall - 1)
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
    return {
        "began": began_wall,
        "campaign": asdict(campaign),
        "websocket": crowd.totals(),
        "mqtt": {**asdict(uplink.sensors), "sessions": uplink.sessions},
        "alerts": soak_report.alert_findings(campaign.excursions, history, uplink.events),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0, help="campaign length (60)")
    parser.add_argument("--out", type=Path, default=OUT, help="report folder (docs/bench/soak)")
    parser.add_argument("--every", type=float, default=10.0, help="s between samples (10)")
    args = parser.parse_args(argv)
    if args.minutes < 2:
        parser.error("--minutes: at least 2 (the faults need a minute or two to come round)")
    if not loopback.mosquitto_installed():
        parser.error(f"mosquitto is not installed ({loopback.MOSQUITTO}): make system-deps")
    results = asyncio.run(run(args.minutes, args.out, args.every))
    print(soak_report.summary(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
