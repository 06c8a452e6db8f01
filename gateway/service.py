"""The running gateway: buses, latest readings, the alert engine, the store, the hub.

It owns every background task (pollers, the sensor ticker, heartbeats, the
alert writer, the stale check, the readings writer). While it runs, the seed's
broadcast API (:mod:`gateway.broadcast`) acts on it.

The alert path (engine -> store -> clients and uplink), and what it does when
the disk refuses a write, is gateway/alerts/pipeline.py's. Durations (staleness) run
on the monotonic clock; the wall clock only stamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from drivers.errors import PortDisconnected
from drivers.model import Reading
from gateway import broadcast, reconfigure, supervise
from gateway.alerts.model import Rule
from gateway.alerts.pipeline import AlertPipeline
from gateway.alerts.rules import rules_of
from gateway.alerts.store import Store, StoreWriteError
from gateway.api.hub import STREAMS, Hub
from gateway.api.metrics import Metrics
from gateway.config import BusConfig, Config, ConfigError
from gateway.mqtt import discovery
from gateway.notify.messages import notify_site
from gateway.notify.sender import Notifier
from gateway.notify.targets import from_config
from gateway.poller import BusPoller, temperature_wait_for
from gateway.projections import Projections
from gateway.readings import LatestReadings
from gateway.sites import SITES, SitesFeed

if TYPE_CHECKING:
    from gateway.mqtt.uplink import Uplink

log = logging.getLogger(__name__)
DB_NAME = "gateway.sqlite3"


class Gateway(Projections):
    def __init__(
        self,
        config: Config,
        *,
        ports: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``ports`` maps a bus name to the port to open instead of its configured one.
        ``clock`` stamps (wall clock); ``monotonic`` measures every duration."""
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.hub = Hub(
            history=config.server.history, streams=(*STREAMS, SITES), on_publish=self._published
        )
        self.feed = SitesFeed(self.hub, monotonic=monotonic, wall=clock)
        self.feed.add(config.reservoir_id, "online")
        self.rules: dict[str, Rule] = rules_of(config)
        # Changed in place by a reload: LatestReadings keeps reading this very dict.
        self._stale_after = {m: r.stale_after for m, r in self.rules.items()}
        self.readings = LatestReadings(config.reservoir_id, self._stale_after, clock=monotonic)
        # Ids name their reservoir: unique across a fleet, as relays need them to be.
        self.store = Store(config.data_dir / DB_NAME, id_prefix=f"{config.reservoir_id}-")
        self.uplink = self._uplink(config) if config.mqtt.url else None
        self.notifier = Notifier(
            from_config(config.notify),
            self.store,
            notify_site(config),
            active=lambda: self.alerts.engine.active(),
            metrics=self.metrics,
            wall=clock,
            monotonic=monotonic,
        )
        self.alerts = AlertPipeline(
            self.rules,
            self.store,
            self.hub,
            self.uplink,
            retry_interval=config.storage.retry_interval,
            wall=clock,
            monotonic=monotonic,
            notices=self.notifier,
        )
        self._to_store: dict[str, Reading] = {}
        # A configured port (sim://ezo-ph) -> the one to open instead.
        self._ports = {b.port: ports[b.name] for b in config.buses if ports and b.name in ports}
        self.pollers = [self._poller(bus) for bus in config.buses]
        self._tasks: list[asyncio.Task[None]] = []
        self._reloading = asyncio.Lock()
        self._last_sensor_data: dict[str, float | str | None] = {}
        self.metrics.watch(
            buses=lambda: {p.name: p.line.counters for p in self.pollers},
            readings=lambda: {m: self.readings.value(m) for m in self.rules},
            alerts=lambda: {k: v for k, v in self.alerts.engine.summary().items() if k != "total"},
            ages=lambda: {m: self.readings.age(m) for m in self.rules},
        )
        self.metrics.watch_storage(
            config.data_dir,
            self.store.path,
            failures=lambda: self.store.health.failures,
            outbox=lambda: self.store.outbox_rows,
        )

    def _poller(self, bus: BusConfig) -> BusPoller:
        # pH and EC circuits wait (briefly) for the first temperature where a bus reads one,
        # so that their first reading is already compensated.
        return BusPoller(
            bus,
            [self.on_reading],
            port=self._ports.get(bus.port),
            temperature=self.temperature,
            conductivity=partial(self.readings.value, "conductivity"),
            temperature_wait=temperature_wait_for(self.config.buses),
        )

    # life cycle ------------------------------------------------------------------

    def _uplink(self, config: Config) -> Uplink:
        """The MQTT uplink (aiomqtt loads here: only where a broker is set)."""
        from gateway.mqtt.uplink import Uplink

        return Uplink(
            config.mqtt,
            config.reservoir_id,
            self.store,
            on_dismiss=self.dismiss,
            discovery=discovery.configs(config),
        )

    async def restore(self) -> None:
        """Open the store and put back the active alerts and latches (before any client)."""
        restored = await self.store.open()
        self.alerts.restore(restored)
        self.feed.summary(self.config.reservoir_id, self.alerts.summary)
        if restored.alerts or restored.latches:
            log.info(
                "restored %d active alerts and %d dismissals",
                len(restored.alerts),
                len(restored.latches),
            )

    async def open_ports(self, *, require: bool = False) -> None:
        """Open every bus's port. One that cannot be opened: with ``require``, raises
        PortDisconnected naming it; else one ERROR naming it, and its bus runs ``down``,
        its line trying again with backoff, while the other buses poll."""
        for poller in self.pollers:
            await _open(poller, require=require)

    async def start(self) -> None:
        """Start the pollers and every background task, each under the supervisor."""
        for poller in self.pollers:
            poller.start()
        server, storage = self.config.server, self.config.storage
        stale_step = min([1.0, *(r.stale_after / 4 for r in self.rules.values())])
        jobs: dict[str, tuple[float, Callable[[], Any]]] = {
            "sensor-ticker": (server.sensor_interval, self.sensor_tick),
            "heartbeat": (server.heartbeat_interval, self.publish_heartbeat),
            "stale-check": (stale_step, self.check_stale),
            "readings-writer": (storage.readings_every, self.store_readings),
            "pruner": (3600.0, self.prune),
        }
        self._tasks = [
            supervise.start(f"gateway.{name}", partial(self._every, interval, job), logger=log)
            for name, (interval, job) in jobs.items()
        ]
        self._tasks.append(supervise.start("gateway.alert-writer", self._write_alerts, logger=log))
        self._tasks.append(supervise.start("gateway.loop-lag", self._watch_loop, logger=log))
        await self.notifier.start()
        if self.uplink is not None:
            # As restored; a disk that refuses it is counted and logged by store.health,
            # and the next alert change sends the list again.
            with contextlib.suppress(StoreWriteError):
                await self.uplink.enqueue([self.uplink.active(self.active_alerts())])
            self.uplink.start()
        broadcast.attach(self)

    async def stop(self) -> None:
        """Stop the tasks, the uplink, the buses, then flush and close the store: every
        step runs whatever the ones before it raised (that is logged, not raised)."""
        broadcast.detach(self)
        async with contextlib.AsyncExitStack() as steps:  # run last to first
            steps.push_async_callback(_step, "the store", self._close_store)
            for poller in self.pollers:
                steps.push_async_callback(_step, f"bus {poller.name}", poller.stop)
            if self.uplink is not None:
                steps.push_async_callback(_step, "the MQTT uplink", self.uplink.stop)
            steps.push_async_callback(_step, "the notification senders", self.notifier.stop)
            steps.push_async_callback(_step, "the background tasks", self._cancel_tasks)

    async def _cancel_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        await supervise.cancel(tasks)

    async def _close_store(self) -> None:
        if self.store.is_open:
            try:
                await self.store_readings()
            finally:
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
        """Run ``job`` every ``interval`` s; a failure goes to the supervisor, which logs
        it and starts this again after a back-off."""
        while True:
            await asyncio.sleep(interval)
            result = job()
            if asyncio.iscoroutine(result):
                await result

    # reload ------------------------------------------------------------------------------

    async def reload(self, new: Config) -> list[str]:
        """Apply a re-read configuration (SIGHUP) without dropping a client: thresholds,
        buses (only the changed ones restart), notify targets, allowed_origins... Keys
        that need a restart keep their running values, named in one WARNING. Returns the
        keys applied. Raises ConfigError, changing nothing, for one this gateway cannot
        take."""
        async with self._reloading:
            changed = reconfigure.differences(self.config, new)
            config = reconfigure.running_with(self.config, new)
            self._check_ports(config)
            restart = [key for key in changed if reconfigure.needs_restart(key)]
            applied = [key for key in changed if key not in restart]
            origins = self.config.server.allowed_origins  # the list the CORS check holds
            origins[:] = config.server.allowed_origins
            config.server.allowed_origins = origins
            old, self.config = self.config, config
            self._set_rules(rules_of(config))
            await self._restart_buses(config.buses)
            if old.notify != config.notify or notify_site(old) != notify_site(config):
                await self.notifier.retarget(from_config(config.notify), notify_site(config))
            self.alerts.retry_interval = config.storage.retry_interval
        log.info("reload: %s", f"applied {', '.join(applied)}" if applied else "nothing to apply")
        if restart:
            log.warning("reload: %s changed; restart the gateway to apply (running with the "
                        "old values meanwhile)", ", ".join(restart))  # fmt: skip
        return applied

    def _check_ports(self, config: Config) -> None:
        """A simulated port is only one of those the gateway started with."""
        problems = [
            f"buses[{i}].port: {bus.port} was not simulated at start: restart to use it"
            for i, bus in enumerate(config.buses)
            if bus.port.startswith("sim://") and bus.port not in self._ports
        ]
        if problems:
            raise ConfigError(problems)

    def _set_rules(self, rules: dict[str, Rule]) -> None:
        self.rules.clear()
        self.rules.update(rules)
        self._stale_after.clear()
        self._stale_after.update({m: r.stale_after for m, r in rules.items()})
        self.alerts.set_rules(self.rules, {m: self.readings.value(m) for m in rules})

    async def _restart_buses(self, buses: list[BusConfig]) -> None:
        """Stop the buses removed or changed, then open and start their new pollers."""
        running = {p.name: p for p in self.pollers}
        keep = {b.name for b in buses if b.name in running and running[b.name].config == b}
        for name, poller in running.items():
            if name not in keep:
                await poller.stop()
        pollers = []
        for bus in buses:
            poller = running[bus.name] if bus.name in keep else self._poller(bus)
            if bus.name not in keep:
                await _open(poller, require=False)
                poller.start()
            pollers.append(poller)
        self.pollers = pollers

    # readings and alerts ---------------------------------------------------------------

    def on_reading(self, reading: Reading) -> None:
        self.readings.record(reading)
        self._to_store[reading.measurement] = reading
        self.alerts.evaluate(reading.measurement, reading.value if reading.good else None)

    async def apply_reading(self, reading: Reading) -> dict[str, int]:
        """A reading from code that embeds the gateway (gateway.broadcast): the path of a
        polled one, awaited until its alert changes are committed and sent; the counts the
        clients were told."""
        self.readings.record(reading)
        self._to_store[reading.measurement] = reading
        changes = self.alerts.engine.evaluate(
            reading.measurement, reading.value if reading.good else None, self.alerts.now()
        )
        if changes:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.alerts.submit(changes, done)
            await done
        return self.summary

    def check_stale(self) -> None:
        self.alerts.check_stale()

    def temperature(self) -> float | None:
        """A fresh water temperature for EZO compensation, if there is one."""
        return self.readings.value("temperature")

    async def _write_alerts(self) -> None:
        """The alert writer task (see gateway/alerts/pipeline.py)."""
        await self.alerts.run()

    async def dismiss(self, alert_id: str, by: str | None = None) -> bool:
        """Dismiss an active alert: ``dismissed`` and ``update`` sent, the change stored."""
        return await self.alerts.dismiss(alert_id, by)

    def active_alerts(self) -> list[dict[str, Any]]:
        return self.alerts.active()

    async def store_readings(self) -> None:
        """Write the latest reading of each measurement; what the disk refuses waits for
        the next try, unless a newer reading of that measurement came meanwhile."""
        batch, self._to_store = self._to_store, {}
        try:
            await self.store.add_readings(batch.values())
        except StoreWriteError:  # counted and logged (rate-limited) by store.health
            self._to_store = batch | self._to_store

    async def prune(self) -> None:
        """Hourly: readings past retention_days, closed alerts past alert_retention_days."""
        storage, now = self.config.storage, self.clock()
        with contextlib.suppress(StoreWriteError):  # counted and logged by store.health
            await self.store.prune_readings(now - storage.retention_days * 86400)
            pruned = await self.store.prune_alerts(now - storage.alert_retention_days * 86400)
            if pruned:
                log.info("storage: pruned %d closed alerts older than %g days", pruned,
                         storage.alert_retention_days)  # fmt: skip

    # the broadcast API -----------------------------------------------------------------

    def publish_sensor_update(self) -> dict[str, Any]:
        self._last_sensor_data = self.readings.snapshot()
        message = self.hub.publish(
            "sensors",
            {"type": "sensor_update", "data": self._last_sensor_data},
            conflate="sensor_update",
        )
        self.feed.reading(self.config.reservoir_id, message["timestamp"])
        return message

    def _published(self, stream: str, sent: int, seconds: float) -> None:
        """After each broadcast: counted, and new alert counts told on ``sites`` too."""
        self.metrics.published(stream, sent, seconds)
        if stream == "alerts":
            self.feed.summary(self.config.reservoir_id, self.alerts.summary)

    async def sensor_tick(self) -> None:
        """Every sensor_interval: a sensor_update to the clients, and to the broker."""
        message = self.publish_sensor_update()
        if self.uplink is not None:
            # What the disk refuses is lost for the broker (counted and logged by store.health).
            with contextlib.suppress(StoreWriteError):
                await self.uplink.enqueue([self.uplink.sensor_update(message)])

    def publish_heartbeat(self) -> None:
        for stream in self.hub.streams:
            self.hub.publish(stream, {"type": "heartbeat"}, news=False, conflate="heartbeat")


async def _open(poller: BusPoller, *, require: bool) -> None:
    try:
        await poller.open()
    except PortDisconnected as exc:
        if require:
            raise
        log.error(
            "bus %s: cannot open serial port %s: %s; running without it, retrying",
            poller.name, exc.port, exc.reason,
        )  # fmt: skip


async def _step(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """One step of a shutdown: a failure is logged, and the next step runs anyway."""
    try:
        await step()
    except Exception:
        log.exception("stopping %s failed", what)
