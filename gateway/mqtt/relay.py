"""``sensor-gateway relay``: the same API for every reservoir heard on the broker.

A relay has no serial buses. It subscribes to ``<prefix>/+/sensors``,
``/alerts``, ``/alerts/active``, ``/alerts/events`` and ``/status`` and republishes each gateway's
messages, unchanged (seq and timestamp included), on the streams
``sensors:<reservoir_id>`` and ``alerts:<reservoir_id>``. Any number of relays
may run side by side: they serve identical streams, so a client may move from
one to another and resume with ``since``. A dismissal made at a relay goes to
the owning gateway as an MQTT command and comes back as that gateway's own
``dismissed`` event, which every relay passes on.

It serves the same application as a gateway (:func:`gateway.api.rest.serving_app`):
the same endpoints, messages, polling fallback and heartbeats (its own, every
``server.heartbeat_interval``: a gateway's are not sent over MQTT), each site
chosen with ``?reservoir=`` or a ``<stream>:<reservoir_id>`` channel. It serves
only the reservoirs of ``[relay] reservoirs`` when that is set, and at most
``[relay] max_reservoirs``; others heard on the broker are ignored.

It also serves the ``sites`` channel (:mod:`gateway.sites`: each site's status,
counts and newest reading, rebuilt from the broker's retained messages as soon as
it connects) and the pages: the overview of every site at ``/``, one site's
dashboard at ``/site?reservoir=<id>``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from aiohttp import web

from drivers.model import MEASUREMENTS, UNITS
from gateway import supervise
from gateway.api.hub import Hub, Stream
from gateway.api.metrics import Metrics
from gateway.api.pages import add_pages
from gateway.api.rest import json_error, serving_app
from gateway.config import Config, ConfigError
from gateway.mqtt.messages import (
    ActiveAlerts,
    AlertEvent,
    BadMessage,
    ShelfNews,
    Status,
    StreamMessage,
    parse_relayed,
)
from gateway.mqtt.uplink import BROKER_ERRORS, broker_client, reconnect_backoff
from gateway.sites import SITES, SitesFeed

log = logging.getLogger("gateway.relay")  # the name logs were filtered by
DISMISS_WAIT = 5.0
#: Ignored reservoir ids remembered (each logged once); past this, ignored unnamed.
IGNORED_NAMED = 1024
KINDS = ("alerts", "sensors")


@dataclass
class Site:
    """One reservoir, as its gateway last told the broker."""

    reservoir_id: str
    status: str = "unknown"
    summary: dict[str, int] = field(
        default_factory=lambda: {"total": 0, "critical": 0, "warning": 0, "info": 0}
    )
    readings: dict[str, Any] = field(default_factory=dict)
    active: dict[str, dict[str, Any]] = field(default_factory=dict)  # alert id -> alert
    last_timestamp: dict[str, str] = field(default_factory=dict)  # stream -> newest seen


class Relay:
    def __init__(self, config: Config, *, dismiss_wait: float = DISMISS_WAIT) -> None:
        """``dismiss_wait``: s a dismissal waits for the owning gateway's confirmation."""
        if not config.mqtt.url:
            raise ConfigError(["mqtt.url: a relay needs the broker its gateways publish to"])
        self.config = config
        self.prefix = config.mqtt.prefix
        self.dismiss_wait = dismiss_wait
        self.metrics = Metrics()
        self.hub = Hub(
            history=config.server.history, streams=(SITES,), on_publish=self.metrics.published
        )
        self.feed = SitesFeed(self.hub)
        self.sites: dict[str, Site] = {}
        self.connected = False
        self.identifier = config.mqtt.client_id or f"sensor-gateway-relay-{uuid.uuid4().hex[:8]}"
        self._client: aiomqtt.Client | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._dismissals: dict[str, set[asyncio.Future[None]]] = {}  # alert id -> waiters
        self._ignored: set[str] = set()
        self.metrics.watch(
            buses=dict,
            readings=dict,
            alerts=lambda: {
                s: sum(site.summary.get(s, 0) for site in self.sites.values())
                for s in ("critical", "warning", "info")
            },
        )

    # the Backend protocol --------------------------------------------------------------

    def current(self, stream: str) -> dict[str, Any]:
        if stream == SITES:
            return self.feed.current()
        kind, _, reservoir = stream.partition(":")
        site = self.sites[reservoir]
        return dict(site.summary) if kind == "alerts" else dict(site.readings)

    def latest(self, stream: str) -> dict[str, Any]:
        """What the site's gateway last published: the current state is the last news."""
        return self.current(stream)

    def channel(self, name: str, reservoir: str | None = None) -> str | None:
        """``alerts:<id>``; or ``alerts`` with ``?reservoir=``, or when one site is known."""
        if name == SITES:
            return SITES
        kind, _, site = name.partition(":")
        site = site or reservoir or (next(iter(self.sites)) if len(self.sites) == 1 else "")
        stream = f"{kind}:{site}"
        return stream if kind in KINDS and stream in self.hub.streams else None

    def reservoirs(self) -> list[str]:
        return list(self.sites)

    def active_alerts(self) -> list[dict[str, Any]]:
        """Every site's active alerts, newest first, each naming its reservoir."""
        listed = [
            dict(alert, reservoir_id=site.reservoir_id)
            for site in self.sites.values()
            for alert in site.active.values()
        ]
        return sorted(listed, key=lambda a: str(a.get("raised_at")), reverse=True)

    def health(self) -> dict[str, object]:
        offline = [s.reservoir_id for s in self.sites.values() if s.status != "online"]
        return {
            "status": "ok" if self.connected and not offline else "degraded",
            "connections": self.hub.connections,
            "broker": "connected" if self.connected else "disconnected",
            "sites": {s.reservoir_id: s.status for s in self.sites.values()},
            "ignored": len(self._ignored),
            "dismissals_pending": sum(len(w) for w in self._dismissals.values()),
            "buses": {},
        }

    async def dismiss(self, alert_id: str, by: str | None) -> bool | None:
        """Ask the owning gateway; True once its ``dismissed`` came back, None if it did not
        in time (or the broker went away), False if no site has that alert active."""
        owner = next((s for s in self.sites.values() if alert_id in s.active), None)
        if owner is None:
            return False
        client = self._client
        if client is None:
            return None
        done = asyncio.get_running_loop().create_future()
        waiting = self._dismissals.setdefault(alert_id, set())
        waiting.add(done)
        command = json.dumps({"alert_id": alert_id, "by": by or "relay"})
        topic = f"{self.prefix}/{owner.reservoir_id}/commands/dismiss"
        try:
            async with asyncio.timeout(self.dismiss_wait):
                await client.publish(topic, command, qos=1)
                await done
        except (TimeoutError, aiomqtt.MqttError):
            return None
        finally:
            waiting.discard(done)  # nothing is left waiting for a gateway that never answered
            if not waiting and self._dismissals.get(alert_id) is waiting:
                del self._dismissals[alert_id]
        return True

    # the broker and the heartbeats -------------------------------------------------------

    def start(self) -> None:
        listen = supervise.start(
            "relay.mqtt",
            self._listen,
            backoff=reconnect_backoff(),
            expected=BROKER_ERRORS,
            logger=log,
        )
        self._tasks = [listen, supervise.start("relay.heartbeat", self._heartbeats, logger=log)]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await supervise.cancel(tasks)

    async def _heartbeats(self) -> None:
        """Every heartbeat_interval, on every stream: the relay's own, as a gateway's."""
        while True:
            await asyncio.sleep(self.config.server.heartbeat_interval)
            self.publish_heartbeat()

    def publish_heartbeat(self) -> None:
        for stream in self.hub.streams:
            self.hub.publish(stream, {"type": "heartbeat"}, news=False, conflate="heartbeat")

    async def _listen(self) -> None:
        """One connection to the broker, until it ends (the supervisor reconnects)."""
        try:
            async with broker_client(self.config.mqtt, self.identifier) as client:
                self._client, self.connected = client, True
                for topic in ("sensors", "alerts", "alerts/active", "alerts/events", "status"):
                    await client.subscribe(f"{self.prefix}/+/{topic}", qos=1)
                log.info("relay: listening on %s under %s/", self.config.mqtt.url, self.prefix)
                async for message in client.messages:
                    payload = message.payload
                    raw = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
                    self.receive(str(message.topic), raw, retained=message.retain)
                raise aiomqtt.MqttError("the message iteration ended")  # reconnect
        finally:
            self._client, self.connected = None, False

    def receive(self, topic: str, payload: bytes, *, retained: bool = False) -> None:
        """One message from the broker, passed on to the clients of its reservoir.

        A malformed one is logged (one line) and dropped: the next may be fine. One
        of a reservoir this relay does not serve is dropped too. ``retained``: the
        broker's stored copy (a status heard so tells no time)."""
        try:
            parsed = parse_relayed(self.prefix, topic, payload)
        except BadMessage as exc:
            log.warning("relay: ignored %s", exc)
            return
        site = self._site(parsed.reservoir)
        if site is None:
            return
        match parsed:
            case Status(state=state):
                site.status = state
                self.feed.status(
                    site.reservoir_id, state, since=None if retained else self.feed.now()
                )
            case StreamMessage(stream="sensors"):
                site.readings = parsed.data
                self._relay(site, "sensors", parsed.seq, parsed.timestamp, parsed.message)
                self.feed.reading(site.reservoir_id, parsed.timestamp)
            case StreamMessage(stream="alerts"):
                site.summary = parsed.data
                self._relay(site, "alerts", parsed.seq, parsed.timestamp, parsed.message)
                self.feed.summary(site.reservoir_id, parsed.data)
            case ActiveAlerts(alerts=active):
                site.active = active
            case AlertEvent():
                self._event(site, parsed)
            case ShelfNews(message=message):  # shelving is done at the gateway; told here
                self._relay(site, "alerts", message["seq"], message["timestamp"], message)

    def _event(self, site: Site, event: AlertEvent) -> None:
        if event.event in ("raised", "escalated", "deescalated"):
            site.active[event.alert_id] = event.alert
        else:
            site.active.pop(event.alert_id, None)
        if event.event == "dismissed":
            if event.message is not None:
                message = event.message
                self._relay(site, "alerts", message["seq"], message["timestamp"], message)
            for waiter in self._dismissals.pop(event.alert_id, set()):
                if not waiter.done():
                    waiter.set_result(None)

    def _site(self, reservoir: str) -> Site | None:
        """The site of ``reservoir``, added the first time it is heard; None if not served."""
        site = self.sites.get(reservoir)
        if site is not None:
            return site
        limits = self.config.relay
        if limits.reservoirs and reservoir not in limits.reservoirs:
            self._ignore(reservoir, logging.INFO, "it is not in relay.reservoirs")
            return None
        if len(self.sites) >= limits.max_reservoirs:
            reason = f"relay.max_reservoirs ({limits.max_reservoirs}) are served already"
            self._ignore(reservoir, logging.WARNING, reason)
            return None
        site = self.sites[reservoir] = Site(reservoir)
        for kind in KINDS:
            self.hub.streams[f"{kind}:{reservoir}"] = Stream(
                f"{kind}:{reservoir}", deque(maxlen=self.config.server.history)
            )
        log.info("relay: now serving %s", reservoir)
        self.feed.add(reservoir)
        return site

    def _ignore(self, reservoir: str, level: int, reason: str) -> None:
        """One log line the first time a reservoir is ignored (for the first IGNORED_NAMED)."""
        if reservoir not in self._ignored and len(self._ignored) < IGNORED_NAMED:
            self._ignored.add(reservoir)
            log.log(level, "relay: ignoring reservoir %s: %s", reservoir, reason)

    def _relay(self, site: Site, kind: str, seq: int, stamp: str, message: dict[str, Any]) -> None:
        """Pass a gateway's message on as it is; drop the repeats QoS 1 may bring."""
        name = f"{kind}:{site.reservoir_id}"
        stream = self.hub.streams[name]
        # A repeat has the seq and time of one already passed on; a restarted
        # gateway counts from 1 again, with a newer time.
        if seq <= stream.seq and stamp <= site.last_timestamp.get(kind, ""):
            return
        site.last_timestamp[kind] = max(stamp, site.last_timestamp.get(kind, ""))
        stream.seq = seq
        conflate = "sensor_update" if kind == "sensors" else None
        self.hub.deliver(name, message, conflate=conflate)


RELAY = web.AppKey("relay", Relay)


def build_relay_app(config: Config) -> web.Application:
    """The gateway's application (:func:`serving_app`) over a :class:`Relay`, plus
    ``/api/sites`` and the pages (the overview at ``/``)."""
    relay = Relay(config)
    app = serving_app(relay, config)
    app[RELAY] = relay

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        relay.start()
        yield
        await relay.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/api/sites", sites)
    app.router.add_get("/api/info", info)
    add_pages(app, home="overview")
    return app


async def sites(request: web.Request) -> web.Response:
    """Every site: what the ``sites`` channel's last message says of it."""
    return web.json_response(request.app[RELAY].feed.current())


async def info(request: web.Request) -> web.Response:
    """What the single-site dashboard lays itself out with, for ``?reservoir=``: the
    measurements its gateway reports (a relay knows no thresholds nor history)."""
    relay = request.app[RELAY]
    reservoir = request.query.get("reservoir") or ""
    stream = relay.channel("sensors", reservoir)
    if stream is None:
        known = ", ".join(relay.reservoirs()) or "none yet"
        raise json_error(404, "not_found", f"reservoir: expected one of {known}")
    site = relay.sites[stream.partition(":")[2]]
    reported = [m for m in MEASUREMENTS if site.readings.get(m) is not None]
    return web.json_response(
        {
            "reservoir_id": site.reservoir_id,
            "measurements": reported or list(MEASUREMENTS),
            "units": dict(UNITS),
            "thresholds": {},
            "sensor_interval": None,
            "simulated": False,
            "relay": True,
        }
    )
