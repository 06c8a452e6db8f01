"""The MQTT uplink: what the gateway tells a broker, kept on disk until acknowledged.

Topics under ``<prefix>/<reservoir_id>/`` (docs/scaling.md):

- ``sensors``: each sensor_update, exactly as on /ws/sensors (retained: the latest);
- ``alerts``: each alert-count ``update``, as on /ws/alerts (retained: the summary);
- ``alerts/events``: ``raised``, ``escalated``, ``deescalated``, ``dismissed``,
  ``cleared``, each with the alert, and with the /ws/alerts message it caused;
  ``shelved`` and ``unshelved``, each with the shelf and its /ws/alerts message;
  every event carries ``by``: who acted (null for what the readings caused);
- ``alerts/active``: the alerts active now (retained);
- ``status``: ``online``, and ``offline`` as the last will (retained);
- ``commands/dismiss``: where relays ask this gateway to dismiss an alert.

With ``[mqtt] discovery = true`` it also publishes, retained, at each connect, the
Home Assistant discovery configs of gateway/mqtt/discovery.py.

Every message goes through the SQLite outbox first and leaves it only once the
broker acknowledged it (QoS 1), in the order it was queued. While the broker
is away they wait on disk (readings bounded, alert events never dropped), and
a restart in the middle loses none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

from gateway import supervise
from gateway.alerts.model import Change, alert_json
from gateway.alerts.shelves import ShelfEvent
from gateway.alerts.store import Store
from gateway.alerts.tables import Outgoing
from gateway.backoff import Backoff
from gateway.config import MqttConfig
from gateway.mqtt.messages import BadMessage, parse_dismiss
from gateway.timestamps import utc_timestamp

log = logging.getLogger("gateway.mqtt")  # the name logs were filtered by
WINDOW = 10  # messages in flight at once while draining the outbox (aiomqtt warns above 10)
PUBLISH_TIMEOUT = 30.0
RECONNECT_MIN, RECONNECT_MAX = 0.5, 5.0  # seconds between tries to reach the broker
#: A broker that is away or slow: one WARNING line and a reconnect, never a traceback.
BROKER_ERRORS: tuple[type[Exception], ...] = (aiomqtt.MqttError, TimeoutError)


def reconnect_backoff() -> Backoff:
    """The delays between tries to reach the broker (the uplink's and the relay's)."""
    return Backoff(RECONNECT_MIN, RECONNECT_MAX)


def broker_client(
    config: MqttConfig, identifier: str, will: aiomqtt.Will | None = None
) -> aiomqtt.Client:
    """An aiomqtt client for the configured broker (``mqtt://`` or ``mqtts://``)."""
    assert config.url is not None
    url = urlsplit(config.url)
    tls = url.scheme == "mqtts"
    return aiomqtt.Client(
        url.hostname or "localhost",
        port=url.port or (8883 if tls else 1883),
        username=config.username or url.username or None,
        password=config.password or url.password or None,
        identifier=identifier,
        will=will,
        clean_session=False,  # commands sent while we were away still arrive
        tls_params=aiomqtt.TLSParameters(ca_certs=config.tls_ca or None) if tls else None,
        timeout=10.0,
    )


class Uplink:
    def __init__(
        self,
        config: MqttConfig,
        reservoir_id: str,
        store: Store,
        *,
        on_dismiss: Callable[[str, str | None], Awaitable[bool]],
        discovery: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        self.config = config
        self.discovery = list(discovery)  # Home Assistant configs, published at each connect
        self.base = f"{config.prefix}/{reservoir_id}"
        self.identifier = config.client_id or f"sensor-gateway-{reservoir_id}"
        self.store = store
        self.on_dismiss = on_dismiss
        self.connected = False
        self.sent = 0
        self.wake = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    # what is sent --------------------------------------------------------------------

    def _out(self, topic: str, message: object, *, retain: bool, droppable: bool) -> Outgoing:
        payload = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        return Outgoing(f"{self.base}/{topic}", payload, self.config.qos, retain, droppable)

    def sensor_update(self, message: Mapping[str, Any]) -> Outgoing:
        return self._out("sensors", message, retain=True, droppable=True)

    def active(self, alerts: Sequence[Mapping[str, Any]]) -> Outgoing:
        """The alerts active now, retained: a relay that starts later still knows them."""
        return self._out("alerts/active", list(alerts), retain=True, droppable=True)

    def for_alerts(
        self,
        changes: Iterable[Change],
        messages: Sequence[Mapping[str, Any]],
        active: Sequence[Mapping[str, Any]],
        shelf_events: Sequence[ShelfEvent] = (),
    ) -> list[Outgoing]:
        """The events of these shelves and changes, the count update among ``messages``,
        and the alerts active after them."""
        dismissed = {m["alert_id"]: m for m in messages if m["type"] == "dismissed"}
        shelf_news = [m for m in messages if m["type"] in ("shelved", "unshelved")]
        out = [
            self._out(
                "alerts/events",
                {
                    "event": event.event,
                    "at": utc_timestamp(event.at),
                    "by": event.by,
                    "shelf": {
                        "measurement": event.shelf.measurement,
                        "until": utc_timestamp(event.shelf.until),
                        "by": event.shelf.by,
                        "reason": event.shelf.reason,
                    },
                    "message": message,
                },
                retain=False,
                droppable=False,
            )
            for event, message in zip(shelf_events, shelf_news, strict=True)
        ]
        out += [
            self._out(
                "alerts/events",
                {
                    "event": change.event,
                    "at": utc_timestamp(change.at),
                    "by": change.alert.dismissed_by if change.event == "dismissed" else None,
                    "alert": alert_json(change.alert),
                    "message": dismissed.get(change.alert.id)
                    if change.event == "dismissed"
                    else None,
                },
                retain=False,
                droppable=False,
            )
            for change in changes
            if not change.unlatched  # a latch released: no news for anyone
        ]
        out += [
            self._out("alerts", m, retain=True, droppable=True)
            for m in messages
            if m["type"] == "update"
        ]
        return [*out, self.active(active)]

    async def enqueue(self, outgoing: Sequence[Outgoing]) -> None:
        await self.store.enqueue(outgoing, keep=self.config.outbox_readings)
        self.wake.set()

    # the connection ------------------------------------------------------------------

    def start(self) -> None:
        self._task = supervise.start(
            "gateway.mqtt-uplink",
            self._session,
            backoff=reconnect_backoff(),
            expected=BROKER_ERRORS,
            logger=log,
        )

    async def stop(self) -> None:
        """Say ``offline`` (a clean goodbye, not the will), then disconnect."""
        if self._client is not None and self.connected:
            with contextlib.suppress(*BROKER_ERRORS):
                await self._client.publish(
                    f"{self.base}/status", b"offline", qos=1, retain=True, timeout=2.0
                )
        await supervise.cancel([self._task])
        self._task = None

    async def _session(self) -> None:
        """One connection: send the outbox and take commands until it ends (the
        supervisor reconnects, and restarts it after any other failure too)."""
        will = aiomqtt.Will(f"{self.base}/status", b"offline", qos=1, retain=True)
        try:
            async with broker_client(self.config, self.identifier, will) as client:
                self._client, self.connected = client, True
                log.info("MQTT: connected to %s as %s", self.config.url, self.identifier)
                await client.publish(f"{self.base}/status", b"online", qos=1, retain=True)
                for topic, payload in self.discovery:
                    await client.publish(topic, payload, qos=1, retain=True)
                await client.subscribe(f"{self.base}/commands/#", qos=1)
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._drain(client), name="gateway.mqtt-drain")
                    tasks.create_task(self._commands(client), name="gateway.mqtt-commands")
        finally:
            self._client, self.connected = None, False

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Send the outbox in order, a window at a time; forget what the broker acknowledged."""
        while True:
            self.wake.clear()
            batch = await self.store.outbox(WINDOW)
            if not batch:
                await self.wake.wait()
                continue
            await asyncio.gather(
                *(
                    client.publish(
                        o.topic, o.payload, qos=o.qos, retain=o.retain, timeout=PUBLISH_TIMEOUT
                    )
                    for o in batch
                )
            )
            await self.store.acknowledged([o.id for o in batch])
            self.sent += len(batch)

    async def _commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic, payload = str(message.topic), message.payload
            try:
                if topic != f"{self.base}/commands/dismiss":
                    raise BadMessage(topic, "not a command this gateway knows")
                raw = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
                command = parse_dismiss(topic, raw)
            except BadMessage as exc:
                log.warning("MQTT: ignored %s", exc)
                continue
            try:
                dismissed = await self.on_dismiss(command.alert_id, command.by)
            except Exception:  # the store or a bug: this command failed, the next may not
                log.exception("MQTT: dismiss %s failed", command.alert_id)
                continue
            log.info(
                "MQTT: dismiss %s from %s: %s",
                command.alert_id,
                command.by or "a relay",
                "done" if dismissed else "no such active alert",
            )
        raise aiomqtt.MqttError("the message iteration ended")  # reconnect
