"""``sensor-gateway relay``: the same API for every reservoir heard on the broker.

A relay has no serial buses. It subscribes to ``<prefix>/+/sensors``,
``/alerts``, ``/alerts/active``, ``/alerts/events`` and ``/status`` and republishes each gateway's
messages, unchanged (seq and timestamp included), on the streams
``sensors:<reservoir_id>`` and ``alerts:<reservoir_id>``. Any number of relays
may run side by side: they serve identical streams, so a client may move from
one to another and resume with ``since``. A dismissal made at a relay goes to
the owning gateway as an MQTT command and comes back as that gateway's own
``dismissed`` event, which every relay passes on.
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

from gateway import supervise
from gateway.auth import CLAIMS, claims_subject
from gateway.config import Config, ConfigError
from gateway.hub import Hub, Stream
from gateway.metrics import Metrics
from gateway.mqtt import BROKER_ERRORS, broker_client, reconnect_backoff
from gateway.mqtt_messages import (
    ActiveAlerts,
    AlertEvent,
    BadMessage,
    Status,
    StreamMessage,
    parse_relayed,
)
from gateway.rest import dismissal, dismissed, json_error, not_active
from gateway.websocket import streaming_app

log = logging.getLogger(__name__)
DISMISS_WAIT = 5.0
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
    def __init__(self, config: Config) -> None:
        if not config.mqtt.url:
            raise ConfigError(["mqtt.url: a relay needs the broker its gateways publish to"])
        self.config = config
        self.prefix = config.mqtt.prefix
        self.metrics = Metrics()
        self.hub = Hub(history=config.server.history, streams=(), on_publish=self.metrics.published)
        self.sites: dict[str, Site] = {}
        self.connected = False
        self.identifier = config.mqtt.client_id or f"sensor-gateway-relay-{uuid.uuid4().hex[:8]}"
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._dismissals: dict[str, asyncio.Future[None]] = {}
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
        kind, _, reservoir = stream.partition(":")
        site = self.sites[reservoir]
        return dict(site.summary) if kind == "alerts" else dict(site.readings)

    def channel(self, name: str, reservoir: str | None = None) -> str | None:
        """``alerts:<id>``; or ``alerts`` with ``?reservoir=``, or when one site is known."""
        kind, _, site = name.partition(":")
        site = site or reservoir or (next(iter(self.sites)) if len(self.sites) == 1 else "")
        stream = f"{kind}:{site}"
        return stream if kind in KINDS and stream in self.hub.streams else None

    # the broker --------------------------------------------------------------------------

    def start(self) -> None:
        self._task = supervise.start(
            "relay.mqtt",
            self._listen,
            backoff=reconnect_backoff(),
            expected=BROKER_ERRORS,
            logger=log,
        )

    async def stop(self) -> None:
        await supervise.cancel([self._task])

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
                    self.receive(str(message.topic), raw)
                raise aiomqtt.MqttError("the message iteration ended")  # reconnect
        finally:
            self._client, self.connected = None, False

    def receive(self, topic: str, payload: bytes) -> None:
        """One message from the broker, passed on to the clients of its reservoir.

        A malformed one is logged (one line) and dropped: the next may be fine."""
        try:
            parsed = parse_relayed(self.prefix, topic, payload)
        except BadMessage as exc:
            log.warning("relay: ignored %s", exc)
            return
        site = self._site(parsed.reservoir)
        match parsed:
            case Status(state=state):
                site.status = state
            case StreamMessage(stream="sensors"):
                site.readings = parsed.data
                self._relay(site, "sensors", parsed.seq, parsed.timestamp, parsed.message)
            case StreamMessage(stream="alerts"):
                site.summary = parsed.data
                self._relay(site, "alerts", parsed.seq, parsed.timestamp, parsed.message)
            case ActiveAlerts(alerts=active):
                site.active = active
            case AlertEvent():
                self._event(site, parsed)

    def _event(self, site: Site, event: AlertEvent) -> None:
        if event.event in ("raised", "escalated", "deescalated"):
            site.active[event.alert_id] = event.alert
        else:
            site.active.pop(event.alert_id, None)
        if event.event == "dismissed":
            if event.message is not None:
                message = event.message
                self._relay(site, "alerts", message["seq"], message["timestamp"], message)
            waiter = self._dismissals.pop(event.alert_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _site(self, reservoir: str) -> Site:
        if reservoir not in self.sites:
            self.sites[reservoir] = Site(reservoir)
            for kind in KINDS:
                self.hub.streams[f"{kind}:{reservoir}"] = Stream(
                    f"{kind}:{reservoir}", deque(maxlen=self.config.server.history)
                )
            log.info("relay: now serving %s", reservoir)
        return self.sites[reservoir]

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

    async def dismiss(self, alert_id: str, by: str | None) -> bool | None:
        """Ask the owning gateway; True once its ``dismissed`` came back, None if it did not
        in time, False if no site has that alert active."""
        owner = next((s for s in self.sites.values() if alert_id in s.active), None)
        if owner is None:
            return False
        if self._client is None:
            return None
        done = self._dismissals.setdefault(alert_id, asyncio.get_running_loop().create_future())
        command = json.dumps({"alert_id": alert_id, "by": by or "relay"})
        topic = f"{self.prefix}/{owner.reservoir_id}/commands/dismiss"
        await self._client.publish(topic, command, qos=1)
        try:
            async with asyncio.timeout(DISMISS_WAIT):
                await asyncio.shield(done)
        except TimeoutError:
            return None
        return True


RELAY = web.AppKey("relay", Relay)


def build_relay_app(config: Config) -> web.Application:
    relay = Relay(config)
    app = streaming_app(relay, config)
    app[RELAY] = relay

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        relay.start()
        yield
        await relay.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/api/sites", sites)
    app.router.add_get("/api/alerts", alerts)
    app.router.add_get("/api/alerts/summary", summary)
    app.router.add_get("/api/sensors/latest", latest)
    app.router.add_post("/alerts/dismiss", dismiss)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


def _site_of(request: web.Request) -> Site:
    relay = request.app[RELAY]
    wanted = request.query.get("reservoir") or (
        next(iter(relay.sites)) if len(relay.sites) == 1 else ""
    )
    if wanted not in relay.sites:
        known = ", ".join(relay.sites) or "none yet"
        raise web.HTTPNotFound(text=f"reservoir: expected one of {known}")
    return relay.sites[wanted]


async def sites(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    return web.json_response(
        {s.reservoir_id: {"status": s.status, "summary": s.summary} for s in relay.sites.values()}
    )


async def alerts(request: web.Request) -> web.Response:
    """Active alerts of one site (``?reservoir=``), or of all, newest first."""
    relay = request.app[RELAY]
    chosen = [_site_of(request)] if "reservoir" in request.query else list(relay.sites.values())
    listed = [dict(a, reservoir_id=s.reservoir_id) for s in chosen for a in s.active.values()]
    return web.json_response(sorted(listed, key=lambda a: str(a.get("raised_at")), reverse=True))


async def summary(request: web.Request) -> web.Response:
    return web.json_response(_site_of(request).summary)


async def latest(request: web.Request) -> web.Response:
    return web.json_response(_site_of(request).readings)


async def dismiss(request: web.Request) -> web.Response:
    """Ask the owning gateway, and answer once its ``dismissed`` came back."""
    alert_id = await dismissal(request)
    outcome = await request.app[RELAY].dismiss(alert_id, claims_subject(request.get(CLAIMS)))
    if outcome is False:
        raise not_active(alert_id)
    if outcome is None:
        raise json_error(504, "gateway_timeout", "the owning gateway did not confirm in time")
    return dismissed(alert_id)


async def healthz(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    offline = [s.reservoir_id for s in relay.sites.values() if s.status != "online"]
    return web.json_response(
        {
            "status": "ok" if relay.connected and not offline else "degraded",
            "connections": relay.hub.connections,
            "broker": "connected" if relay.connected else "disconnected",
            "sites": {s.reservoir_id: s.status for s in relay.sites.values()},
            "buses": {},
        }
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[RELAY].metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")
