"""What the API, ``/healthz`` and the service manager read of a running gateway.

:class:`Projections` is the read side of :class:`gateway.service.Gateway`: the
:class:`~gateway.api.websocket.Backend` methods (a stream's current data, channels, the
latest news, the sites served), health, and the progress the systemd watchdog checks.
It reads the parts the gateway builds and changes none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.alerts.pipeline import AlertPipeline
from gateway.api.hub import Hub
from gateway.config import BusConfig, Config
from gateway.field.sdnotify import poll_max_age
from gateway.notify.sender import Notifier
from gateway.poller import BusPoller
from gateway.readings import LatestReadings
from gateway.sites import SITES, SitesFeed

if TYPE_CHECKING:
    from gateway.mqtt.uplink import Uplink  # aiomqtt loads only where a broker is set


class Projections:
    """The read side of a running gateway (mixed into :class:`gateway.service.Gateway`)."""

    config: Config
    hub: Hub
    feed: SitesFeed
    readings: LatestReadings
    alerts: AlertPipeline
    notifier: Notifier
    uplink: Uplink | None
    pollers: list[BusPoller]
    _last_sensor_data: dict[str, float | str | None]

    # supervision --------------------------------------------------------------------------

    def progress(self) -> dict[str, float]:
        """When each bus last finished a poll (monotonic), for the systemd watchdog."""
        return {f"bus {p.name}": p.last_progress for p in self.pollers}

    def progress_limits(self) -> dict[str, float]:
        """How long each bus may go between two finished polls before the watchdog stops."""
        return {f"bus {p.name}": _max_age(p.config) for p in self.pollers}

    def status_line(self) -> str:
        """One line for ``systemctl status``."""
        down = [p.name for p in self.pollers if not p.line.connected]
        buses = f"{len(self.pollers)} buses" + (f" ({', '.join(down)} down)" if down else "")
        active = self.alerts.engine.summary()["total"]
        return f"{self.config.reservoir_id}: {buses}, {active} active alerts, " + (
            f"{self.hub.connections} clients"
        )

    def latest_sensor_data(self) -> dict[str, float | str | None]:
        """The ``data`` of the last sensor_update (the current readings before the first)."""
        return self._last_sensor_data if self._last_sensor_data else self.readings.snapshot()

    def current(self, stream: str) -> dict[str, Any]:
        """The ``data`` of a stream now (what ``initial`` and ``refresh`` carry)."""
        if stream == "alerts":
            return self.alerts.summary
        if stream == SITES:
            return self.feed.current()
        return dict(self.readings.snapshot())

    def channel(self, name: str, reservoir: str | None = None) -> str | None:
        """A client's channel name -> the hub stream (``?reservoir=`` must be this site;
        ``alerts:<reservoir_id>`` names this site's as on a relay)."""
        kind, _, site = name.partition(":")
        if reservoir not in (None, "", self.config.reservoir_id) or site not in (
            "",
            self.config.reservoir_id,
        ):
            return None
        return kind if kind in self.hub.streams and (kind != SITES or not site) else None

    def latest(self, stream: str) -> dict[str, Any]:
        """The ``data`` of the stream's last news (what the polling fallback answers)."""
        return self.summary if stream == "alerts" else self.latest_sensor_data()

    def reservoirs(self) -> list[str]:
        return [self.config.reservoir_id]

    @property
    def summary(self) -> dict[str, int]:
        """The counts the clients were last told."""
        return self.alerts.summary

    # health -------------------------------------------------------------------------------

    def health(self) -> dict[str, object]:
        buses = {p.name: p.health() for p in self.pollers}
        offline = self.readings.offline()
        down = [name for name, bus in buses.items() if bus["state"] != "connected"]
        storage = self.alerts.storage()
        failing = storage["state"] != "ok"
        notify = self.notifier.health()
        failing = failing or any(t["state"] != "ok" for t in notify.values())
        health: dict[str, object] = {
            "status": "degraded" if offline or down or failing else "ok",
            "connections": self.hub.connections,
            "buses": buses,
            "offline": offline,
            "sensors": self.readings.status(),
            "storage": storage,
        }
        if notify:
            health["notify"] = notify
        if self.uplink is not None:
            health["mqtt"] = {"connected": self.uplink.connected, "sent": self.uplink.sent}
        return health


def _max_age(bus: BusConfig) -> float:
    return poll_max_age(
        poll_interval=bus.poll_interval,
        timeout=bus.timeout,
        retries=bus.retries,
        requests=len(bus.sensors) + 1,  # an EZO circuit's compensation, say
    )
