"""The running gateway: buses, latest readings, alerts, and the hub that tells clients.

It owns every background task (pollers, the sensor ticker, heartbeats) and the
seed's broadcast API the rest of the code calls: :meth:`broadcast_alert_update`
and :meth:`broadcast_alert_dismissed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from drivers.sensors import Reading
from gateway.alerts import AlertSource, NoAlerts
from gateway.config import Config
from gateway.hub import Hub
from gateway.metrics import Metrics
from gateway.poller import BusPoller
from gateway.readings import LatestReadings

log = logging.getLogger(__name__)


class Gateway:
    def __init__(
        self,
        config: Config,
        *,
        ports: Mapping[str, str] | None = None,
        alerts: AlertSource | None = None,
    ) -> None:
        """``ports`` maps a bus name to the port to open instead of its configured one."""
        self.config = config
        self.metrics = Metrics()
        self.hub = Hub(history=config.server.history, on_publish=self.metrics.published)
        stale = {str(m): t.stale_after for m, t in config.thresholds.items()}
        self.readings = LatestReadings(config.reservoir_id, stale)
        self.alerts: AlertSource = alerts or NoAlerts()
        self._summary = self.alerts.summary()
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
            readings=lambda: {
                m: self.readings.value(m) for m in self.readings.snapshot() if m != "reservoir_id"
            },
            alerts=lambda: {k: v for k, v in self.alerts.summary().items() if k != "total"},
        )

    # life cycle ------------------------------------------------------------------

    async def open_ports(self) -> None:
        """Open every bus's port; raises PortDisconnected naming the first that fails."""
        for poller in self.pollers:
            await poller.open()

    async def start(self) -> None:
        for poller in self.pollers:
            poller.start()
        server = self.config.server
        self._tasks = [
            asyncio.create_task(
                self._every(server.sensor_interval, self.publish_sensor_update),
                name="gateway.sensor-ticker",
            ),
            asyncio.create_task(
                self._every(server.heartbeat_interval, self.publish_heartbeat),
                name="gateway.heartbeat",
            ),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for poller in self.pollers:
            await poller.stop()

    @staticmethod
    async def _every(interval: float, action: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval)
            action()

    # readings ----------------------------------------------------------------------

    def on_reading(self, reading: Reading) -> None:
        self.readings.record(reading)

    def temperature(self) -> float | None:
        """A fresh water temperature for EZO compensation, if there is one."""
        return self.readings.value("temperature")

    # the broadcast API -----------------------------------------------------------------

    def publish_sensor_update(self) -> None:
        self._last_sensor_data = self.readings.snapshot()
        self.hub.publish(
            "sensors",
            {"type": "sensor_update", "data": self._last_sensor_data},
            conflate="sensor_update",
        )

    def latest_sensor_data(self) -> dict[str, float | str | None]:
        """The ``data`` of the last sensor_update (the current readings before the first)."""
        return self._last_sensor_data if self._last_sensor_data else self.readings.snapshot()

    def publish_heartbeat(self) -> None:
        for stream in self.hub.streams:
            self.hub.publish(stream, {"type": "heartbeat"}, news=False, conflate="heartbeat")

    def broadcast_alert_update(self, summary: dict[str, int]) -> None:
        """Tell the alert clients the new counts, if they changed."""
        if summary == self._summary:
            return
        self._summary = dict(summary)
        self.hub.publish("alerts", {"type": "update", "data": self._summary})

    def broadcast_alert_dismissed(self, alert_id: str) -> None:
        self.hub.publish("alerts", {"type": "dismissed", "alert_id": alert_id})

    async def dismiss(self, alert_id: str, by: str | None = None) -> bool:
        """Dismiss an active alert: ``dismissed``, then ``update`` with the new counts."""
        if not await self.alerts.dismiss(alert_id, by):
            return False
        self.broadcast_alert_dismissed(alert_id)
        self.broadcast_alert_update(self.alerts.summary())
        return True

    @property
    def summary(self) -> dict[str, int]:
        return dict(self._summary)

    # health -------------------------------------------------------------------------------

    def health(self) -> dict[str, object]:
        buses = {p.name: p.health() for p in self.pollers}
        offline = self.readings.offline()
        down = [name for name, bus in buses.items() if bus["state"] != "connected"]
        return {
            "status": "degraded" if offline or down else "ok",
            "connections": self.hub.connections,
            "buses": buses,
            "offline": offline,
            "sensors": self.readings.status(),
        }
