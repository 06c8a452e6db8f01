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
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from aiohttp import web

from gateway.auth import CLAIMS, claims_subject
from gateway.config import Config, ConfigError
from gateway.hub import Hub, Stream
from gateway.metrics import Metrics
from gateway.mqtt import RECONNECT_MAX, RECONNECT_MIN, broker_client
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
        self._task = asyncio.create_task(self._run(), name="relay.mqtt")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        identifier = self.config.mqtt.client_id or f"sensor-gateway-relay-{uuid.uuid4().hex[:8]}"
        backoff = RECONNECT_MIN
        while True:
            try:
                async with broker_client(self.config.mqtt, identifier) as client:
                    self._client, self.connected, backoff = client, True, RECONNECT_MIN
                    for topic in ("sensors", "alerts", "alerts/active", "alerts/events", "status"):
                        await client.subscribe(f"{self.prefix}/+/{topic}", qos=1)
                    log.info("relay: listening on %s under %s/", self.config.mqtt.url, self.prefix)
                    async for message in client.messages:
                        payload = message.payload
                        if isinstance(payload, bytes | bytearray):
                            self.receive(str(message.topic), bytes(payload))
            except (aiomqtt.MqttError, TimeoutError) as exc:
                log.warning("relay: %s; retrying in %.1f s", exc, backoff)
            finally:
                self._client, self.connected = None, False
            await asyncio.sleep(backoff)
            backoff = min(RECONNECT_MAX, backoff * 2)

    def receive(self, topic: str, payload: bytes) -> None:
        """One message from the broker, passed on to the clients of its reservoir."""
        rest = topic.removeprefix(self.prefix + "/")
        reservoir, _, kind = rest.partition("/")
        site = self._site(reservoir)
        if kind == "status":
            site.status = payload.decode(errors="replace")
            return
        try:
            body = json.loads(payload)
        except ValueError:
            log.warning("relay: %s: not JSON: %.60r", topic, payload)
            return
        if kind == "sensors":
            site.readings = dict(body.get("data") or {})
            self._relay(site, "sensors", body)
        elif kind == "alerts":
            site.summary = dict(body.get("data") or site.summary)
            self._relay(site, "alerts", body)
        elif kind == "alerts/active" and isinstance(body, list):
            site.active = {str(a.get("id")): a for a in body if isinstance(a, dict)}
        elif kind == "alerts/events":
            self._event(site, body)

    def _event(self, site: Site, event: dict[str, Any]) -> None:
        alert = event.get("alert") or {}
        alert_id = str(alert.get("id"))
        if event.get("event") in ("raised", "escalated", "deescalated"):
            site.active[alert_id] = alert
        else:
            site.active.pop(alert_id, None)
        if event.get("event") == "dismissed":
            if isinstance(event.get("message"), dict):
                self._relay(site, "alerts", event["message"])
            waiter = self._dismissals.pop(alert_id, None)
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

    def _relay(self, site: Site, kind: str, message: dict[str, Any]) -> None:
        """Pass a gateway's message on as it is; drop the repeats QoS 1 may bring."""
        name = f"{kind}:{site.reservoir_id}"
        stream, seq = self.hub.streams[name], message.get("seq")
        stamp = str(message.get("timestamp", ""))
        if not isinstance(seq, int):
            return
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
