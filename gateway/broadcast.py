"""The seed's broadcast API, for code that embeds the gateway in its own process.

::

    from gateway.broadcast import broadcast_alert_update, broadcast_alert_dismissed

    counts = await broadcast_alert_update({"measurement": "ph", "value": 4.0})
    await broadcast_alert_dismissed(alert_id, by="scada")

Nothing here pushes counts past the alert engine: a reading goes through the engine,
the store, then the clients and MQTT, exactly like one a poller read, and a dismissal
is :meth:`Gateway.dismiss`. So the counts the clients hear, ``/api/alerts``,
``/api/alerts/summary``, MQTT and the store always agree.

The functions act on the running gateway: a :class:`~gateway.service.Gateway`
registers itself here when it starts and leaves when it stops. With none running,
or more than one in this process, they raise :class:`NoGateway` unless given
``gateway=``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from drivers.errors import GatewayError
from drivers.model import Quality, Reading

if TYPE_CHECKING:
    from gateway.service import Gateway

COUNTS = frozenset({"total", "critical", "warning", "info"})
SOURCE = "broadcast"
_running: list[Gateway] = []


class BroadcastError(GatewayError):
    """What the broadcast API refuses."""


class NoGateway(BroadcastError, RuntimeError):
    """No gateway, or more than one, is running in this process."""


class UnknownAlert(BroadcastError, LookupError):
    """The id names no active alert."""

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"alert {alert_id!r} is not active")
        self.alert_id = alert_id


def attach(gateway: Gateway) -> None:
    """Called by a gateway as it starts."""
    if gateway not in _running:
        _running.append(gateway)


def detach(gateway: Gateway) -> None:
    """Called by a gateway as it stops."""
    if gateway in _running:
        _running.remove(gateway)


def running() -> Gateway:
    """The gateway the module-level functions act on."""
    if len(_running) != 1:
        state = "none is running" if not _running else f"{len(_running)} are running"
        raise NoGateway(f"no single gateway to broadcast through: {state}; pass gateway=")
    return _running[0]


async def broadcast_alert_update(
    update: Mapping[str, Any] | None = None, *, gateway: Gateway | None = None
) -> dict[str, int]:
    """Feed the alert engine, and return the counts after it (what the clients hear).

    ``update`` is one of:

    - ``{"measurement": "ph", "value": 4.0}``: a reading of a watched measurement,
      from a probe the embedding code reads itself. It takes the path of a polled
      reading (thresholds, ``delay``, hysteresis); this returns once its alert changes
      are committed and sent.
    - None: the counts the clients were last told (the engine's, as committed); nothing
      is sent (clients hear every change as it happens, and ``update`` is sent only
      when the counts change).
    - the seed's counts ``{"total", "critical", "warning", "info"}``: checked against
      those; ValueError if they differ, since counts come from the alerts.
    """
    gateway = gateway or running()
    if update is None:
        return gateway.summary
    if set(update) == COUNTS:
        counts = gateway.summary
        if dict(update) != counts:
            raise ValueError(
                f"counts come from the alert engine, which has {counts}, not {dict(update)}: "
                'pass a reading {"measurement": ..., "value": ...} instead'
            )
        return counts
    return await gateway.apply_reading(_reading(gateway, update))


async def broadcast_alert_dismissed(
    alert_id: str, *, by: str | None = None, gateway: Gateway | None = None
) -> None:
    """Dismiss an active alert as an operator would; returns once committed and sent.

    Raises UnknownAlert when ``alert_id`` is not active (unknown, or already gone).
    """
    gateway = gateway or running()
    if not await gateway.dismiss(alert_id, by):
        raise UnknownAlert(alert_id)


def _reading(gateway: Gateway, update: Mapping[str, Any]) -> Reading:
    if set(update) != {"measurement", "value"}:
        raise ValueError(
            f"update: expected {{'measurement', 'value'}} or the four counts, got {sorted(update)}"
        )
    measurement, value = update["measurement"], update["value"]
    if measurement not in gateway.rules:
        raise ValueError(
            f"measurement: {measurement!r} is not watched here (one of {sorted(gateway.rules)})"
        )
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"value: expected a finite number, got {value!r}")
    return Reading(measurement, float(value), Quality.GOOD, gateway.clock(), SOURCE)
