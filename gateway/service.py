"""The running gateway: buses, latest readings, the alert engine, the store, the hub.

It owns every background task (pollers, the sensor ticker, heartbeats, the
alert writer, the stale check, the readings writer). While it runs, the seed's
broadcast API (:mod:`gateway.broadcast`) acts on it.

An alert change goes engine -> SQLite (committed) -> clients, always in that
order, through one queue: what a client was told is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from drivers.sensors import Reading
from gateway import broadcast
from gateway.alerts import AlertEngine, Change, Rule, alert_json, rule_from_bounds
from gateway.config import Config, ThresholdConfig
from gateway.hub import Hub
from gateway.metrics import Metrics
from gateway.mqtt import Uplink
from gateway.poller import BusPoller
from gateway.readings import LatestReadings
from gateway.store import Store

log = logging.getLogger(__name__)
DB_NAME = "gateway.sqlite3"
_BOUNDS = ("critical_low", "warning_low", "info_low", "info_high", "warning_high", "critical_high")


class Gateway:
    def __init__(
        self,
        config: Config,
        *,
        ports: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``ports`` maps a bus name to the port to open instead of its configured one."""
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.hub = Hub(history=config.server.history, on_publish=self.metrics.published)
        thresholds = {str(m): t for m, t in config.thresholds.items()}
        watched = [s.measurement for bus in config.buses for s in bus.sensors]
        self.rules: dict[str, Rule] = {
            str(m): _rule(thresholds.get(m) or ThresholdConfig()) for m in watched
        }
        self.readings = LatestReadings(
            config.reservoir_id, {m: r.stale_after for m, r in self.rules.items()}
        )
        # Ids name their reservoir: unique across a fleet, as relays need them to be.
        self.store = Store(config.data_dir / DB_NAME, id_prefix=f"{config.reservoir_id}-")
        self.uplink = (
            Uplink(config.mqtt, config.reservoir_id, self.store, on_dismiss=self.dismiss)
            if config.mqtt.url
            else None
        )
        self.engine = AlertEngine(self.rules, new_id=self.store.new_id, now=clock())
        self._summary = self.engine.summary()
        #: Changes with the counts and the active alerts just after them, in order.
        self._changes: asyncio.Queue[
            tuple[list[Change], dict[str, int], list[dict[str, Any]], asyncio.Future[None] | None]
        ]
        self._changes = asyncio.Queue()
        self._to_store: dict[str, Reading] = {}
        ports = ports or {}
        self.pollers = [
            BusPoller(
                bus, [self.on_reading], port=ports.get(bus.name), temperature=self.temperature
            )
            for bus in config.buses
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._last_sensor_data: dict[str, float | str | None] = {}
        self.metrics.watch(
            buses=lambda: {p.name: p.line.counters for p in self.pollers},
            readings=lambda: {m: self.readings.value(m) for m in self.rules},
            alerts=lambda: {k: v for k, v in self.engine.summary().items() if k != "total"},
        )

    # life cycle ------------------------------------------------------------------

    async def restore(self) -> None:
        """Open the store and put back the active alerts and latches (before any client)."""
        restored = await self.store.open()
        self.engine = AlertEngine(self.rules, new_id=self.store.new_id, now=self.clock())
        self.engine.restore(restored.alerts, restored.latches)
        self._summary = self.engine.summary()
        if restored.alerts or restored.latches:
            log.info(
                "restored %d active alerts and %d dismissals",
                len(restored.alerts),
                len(restored.latches),
            )

    async def open_ports(self) -> None:
        """Open every bus's port; raises PortDisconnected naming the first that fails."""
        for poller in self.pollers:
            await poller.open()

    async def start(self) -> None:
        for poller in self.pollers:
            poller.start()
        server, storage = self.config.server, self.config.storage
        stale_step = min([1.0, *(r.stale_after / 4 for r in self.rules.values())])
        jobs: dict[str, tuple[float, Callable[[], Any]]] = {
            "sensor-ticker": (server.sensor_interval, self.sensor_tick),
            "heartbeat": (server.heartbeat_interval, self.publish_heartbeat),
            "stale-check": (stale_step, self.check_stale),
            "readings-writer": (storage.readings_every, self.store_readings),
            "readings-pruner": (3600.0, self.prune_readings),
        }
        self._tasks = [
            asyncio.create_task(self._every(interval, job), name=f"gateway.{name}")
            for name, (interval, job) in jobs.items()
        ]
        self._tasks.append(asyncio.create_task(self._write_alerts(), name="gateway.alert-writer"))
        self._tasks.append(asyncio.create_task(self._watch_loop(), name="gateway.loop-lag"))
        if self.uplink is not None:
            await self.uplink.enqueue([self.uplink.active(self.active_alerts())])  # as restored
            self.uplink.start()
        broadcast.attach(self)

    async def stop(self) -> None:
        broadcast.detach(self)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.uplink is not None:
            await self.uplink.stop()
        for poller in self.pollers:
            await poller.stop()
        if self.store.is_open:
            await self.store_readings()
            await self.store.close()

    async def _watch_loop(self, interval: float = 0.5) -> None:
        """Measure how late the event loop wakes a sleeper: the whole server's latency floor."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(interval)
            self.metrics.loop_lag_seconds.observe(max(0.0, loop.time() - asked - interval))

    @staticmethod
    async def _every(interval: float, job: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                result = job()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("periodic job %s failed", job)

    # readings and alerts ---------------------------------------------------------------

    def on_reading(self, reading: Reading) -> None:
        self.readings.record(reading)
        self._to_store[reading.measurement] = reading
        value = reading.value if reading.good else None
        self._queue(self.engine.evaluate(reading.measurement, value, self.clock()))

    async def apply_reading(self, reading: Reading) -> dict[str, int]:
        """A reading from code that embeds the gateway (gateway.broadcast): the path of a
        polled one, awaited until its alert changes are committed and sent; the counts the
        clients were told."""
        self.readings.record(reading)
        self._to_store[reading.measurement] = reading
        changes = self.engine.evaluate(reading.measurement, reading.value, self.clock())
        if changes:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._queue(changes, done)
            await done
        return self.summary

    def check_stale(self) -> None:
        self._queue(self.engine.check_stale(self.clock()))

    def temperature(self) -> float | None:
        """A fresh water temperature for EZO compensation, if there is one."""
        return self.readings.value("temperature")

    def _queue(self, changes: list[Change], done: asyncio.Future[None] | None = None) -> None:
        if changes:
            active = [alert_json(a) for a in self.engine.active()]
            self._changes.put_nowait((changes, self.engine.summary(), active, done))

    async def _write_alerts(self) -> None:
        """Commit each batch of changes, then tell the clients: never the other way round.

        The /ws/alerts messages are stamped (given their seq) first, so that the
        MQTT outbox can carry them in the same transaction as the changes.
        """
        while True:
            changes, summary, active, done = await self._changes.get()
            dismissed = [c.alert.id for c in changes if c.event == "dismissed"]
            messages = self._alert_news(dismissed, summary)
            outgoing = self.uplink.for_alerts(changes, messages, active) if self.uplink else []
            try:
                await self.store.save(changes, outgoing)
            except Exception as exc:
                log.exception("could not save alert changes")
                if done is not None and not done.done():
                    done.set_exception(exc)
                continue
            for change in changes:
                log.info("alert %s %s: %s %s", change.alert.id, change.event,
                         change.alert.measurement, change.alert.severity)  # fmt: skip
            for message in messages:
                self.hub.deliver("alerts", message)
            if outgoing and self.uplink is not None:
                self.uplink.wake.set()
            if done is not None and not done.done():
                done.set_result(None)

    async def dismiss(self, alert_id: str, by: str | None = None) -> bool:
        """Dismiss an active alert: committed, then ``dismissed`` and ``update`` sent."""
        change = self.engine.dismiss(alert_id, self.clock(), by)
        if change is None:
            return False
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue([change], done)
        await done
        return True

    def active_alerts(self) -> list[dict[str, Any]]:
        return [alert_json(a) for a in self.engine.active()]

    async def store_readings(self) -> None:
        batch, self._to_store = list(self._to_store.values()), {}
        await self.store.add_readings(batch)

    async def prune_readings(self) -> None:
        cutoff = self.clock() - self.config.storage.retention_days * 86400
        await self.store.prune_readings(cutoff)

    # the broadcast API -----------------------------------------------------------------

    def publish_sensor_update(self) -> dict[str, Any]:
        self._last_sensor_data = self.readings.snapshot()
        return self.hub.publish(
            "sensors",
            {"type": "sensor_update", "data": self._last_sensor_data},
            conflate="sensor_update",
        )

    async def sensor_tick(self) -> None:
        """Every sensor_interval: a sensor_update to the clients, and to the broker."""
        message = self.publish_sensor_update()
        if self.uplink is not None:
            await self.uplink.enqueue([self.uplink.sensor_update(message)])

    def latest_sensor_data(self) -> dict[str, float | str | None]:
        """The ``data`` of the last sensor_update (the current readings before the first)."""
        return self._last_sensor_data if self._last_sensor_data else self.readings.snapshot()

    def publish_heartbeat(self) -> None:
        for stream in self.hub.streams:
            self.hub.publish(stream, {"type": "heartbeat"}, news=False, conflate="heartbeat")

    def _alert_news(
        self, dismissed: Sequence[str], summary: dict[str, int]
    ) -> list[dict[str, Any]]:
        """Stamp the /ws/alerts news: a ``dismissed`` per id, then an ``update`` if, and
        only if, the counts changed. Delivered by the caller (after saving, if it saves)."""
        messages = [
            self.hub.prepare("alerts", {"type": "dismissed", "alert_id": alert_id})
            for alert_id in dismissed
        ]
        if summary != self._summary:
            self._summary = dict(summary)
            messages.append(self.hub.prepare("alerts", {"type": "update", "data": self._summary}))
        return messages

    def current(self, stream: str) -> dict[str, Any]:
        """The ``data`` of a stream now (what ``initial`` and ``refresh`` carry)."""
        if stream == "alerts":
            return dict(self._summary)
        return dict(self.readings.snapshot())

    def channel(self, name: str, reservoir: str | None = None) -> str | None:
        """A client's channel name -> the hub stream (``?reservoir=`` must be this site)."""
        if reservoir not in (None, "", self.config.reservoir_id):
            return None
        return name if name in self.hub.streams else None

    @property
    def summary(self) -> dict[str, int]:
        """The counts the clients were last told."""
        return dict(self._summary)

    # health -------------------------------------------------------------------------------

    def health(self) -> dict[str, object]:
        buses = {p.name: p.health() for p in self.pollers}
        offline = self.readings.offline()
        down = [name for name, bus in buses.items() if bus["state"] != "connected"]
        health: dict[str, object] = {
            "status": "degraded" if offline or down else "ok",
            "connections": self.hub.connections,
            "buses": buses,
            "offline": offline,
            "sensors": self.readings.status(),
        }
        if self.uplink is not None:
            health["mqtt"] = {"connected": self.uplink.connected, "sent": self.uplink.sent}
        return health


def _rule(config: ThresholdConfig) -> Rule:
    bounds = {name: getattr(config, name) for name in _BOUNDS}
    return rule_from_bounds(
        bounds, hysteresis=config.hysteresis, delay=config.delay, stale_after=config.stale_after
    )
