"""Prometheus metrics (``GET /metrics``), one registry per gateway.

Counters that already live elsewhere (a bus's request and error counts, the
latest readings, the active alerts) are read at scrape time by a collector,
never counted twice.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from drivers.serial_line import ERROR_KINDS

#: From 50 us to 2.5 s: a broadcast to a few clients up to thousands.
BROADCAST_BUCKETS = (
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
    2.5,
)


class _LiveCollector(Collector):
    def __init__(
        self,
        buses: Callable[[], Mapping[str, Mapping[str, int]]],
        readings: Callable[[], Mapping[str, float | None]],
        alerts: Callable[[], Mapping[str, int]],
        ages: Callable[[], Mapping[str, float | None]],
    ) -> None:
        self._buses, self._readings, self._alerts = buses, readings, alerts
        self._ages = ages

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "gateway_serial_requests", "Requests sent on a serial bus", labels=["bus"]
        )
        errors = CounterMetricFamily(
            "gateway_serial_errors", "Failed serial requests by kind", labels=["bus", "kind"]
        )
        reconnects = CounterMetricFamily(
            "gateway_serial_reconnects", "Serial ports reopened after a loss", labels=["bus"]
        )
        for bus, counters in self._buses().items():
            requests.add_metric([bus], counters.get("requests", 0))
            reconnects.add_metric([bus], counters.get("reconnects", 0))
            for kind in ERROR_KINDS:
                errors.add_metric([bus, kind], counters.get(kind, 0))
        value = GaugeMetricFamily(
            "gateway_sensor_value",
            "Latest good value (absent when offline)",
            labels=["measurement"],
        )
        for measurement, reading in self._readings().items():
            if reading is not None:
                value.add_metric([measurement], reading)
        alerts = GaugeMetricFamily(
            "gateway_alerts_active", "Active alerts by severity", labels=["severity"]
        )
        for severity, count in self._alerts().items():
            alerts.add_metric([severity], count)
        ages = GaugeMetricFamily(
            "gateway_sensor_last_good_age_seconds",
            "Seconds since the last good reading (monotonic; absent before the first)",
            labels=["measurement"],
        )
        for measurement, age in self._ages().items():
            if age is not None:
                ages.add_metric([measurement], age)
        yield from (requests, errors, reconnects, value, alerts, ages)


class _StorageCollector(Collector):
    """The disk under data_dir and the database on it, measured at each scrape."""

    def __init__(
        self,
        data_dir: Path,
        db: Path,
        failures: Callable[[], int],
        outbox: Callable[[], int] | None,
    ) -> None:
        self._data_dir, self._db, self._failures = data_dir, db, failures
        self._outbox = outbox

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "gateway_storage_write_failures",
            "Writes the disk refused (full, read-only, I/O error)",
            value=self._failures(),
        )
        if self._outbox is not None:
            yield GaugeMetricFamily(
                "gateway_mqtt_outbox_messages",
                "Messages waiting in the MQTT outbox for the broker",
                value=self._outbox(),
            )
        try:
            free = shutil.disk_usage(self._data_dir).free
        except OSError:
            pass  # data_dir not there (yet): no sample
        else:
            yield GaugeMetricFamily(
                "gateway_storage_free_bytes", "Free bytes on data_dir's filesystem", value=free
            )
        sizes = [
            path.stat().st_size
            for path in (self._db, self._db.with_name(self._db.name + "-wal"))
            if path.exists()
        ]
        if sizes:
            yield GaugeMetricFamily(
                "gateway_storage_db_bytes",
                "The SQLite database, with its -wal file",
                value=sum(sizes),
            )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "gateway_ws_connections",
            "Open WebSocket connections",
            ["stream"],
            registry=self.registry,
        )
        self.long_polls = Gauge(
            "gateway_long_polls",
            "Polling-fallback requests (?wait=) held open, waiting for news",
            ["stream"],
            registry=self.registry,
        )
        self.messages_sent = Counter(
            "gateway_ws_messages_sent",
            "Messages offered to WebSocket clients",
            ["stream"],
            registry=self.registry,
        )
        self.clients_dropped = Counter(
            "gateway_ws_clients_dropped",
            "Slow or broken WebSocket clients cut off",
            ["stream"],
            registry=self.registry,
        )
        self.broadcast_seconds = Histogram(
            "gateway_broadcast_seconds",
            "Time from publish to the last client written or queued",
            ["stream"],
            buckets=BROADCAST_BUCKETS,
            registry=self.registry,
        )

        self.delivery_seconds = Histogram(
            "gateway_ws_delivery_seconds",
            "Publish to written to the client's socket: one sample per broadcast for the "
            "clients written at once, one per queued message for those that were behind",
            buckets=BROADCAST_BUCKETS,
            registry=self.registry,
        )
        self.notifications_sent = Counter(
            "gateway_notifications_sent",
            "Notifications a [[notify]] target accepted",
            ["target"],
            registry=self.registry,
        )
        self.notifications_failed = Counter(
            "gateway_notifications_failed",
            "Tries to send a notification that failed (each is retried)",
            ["target"],
            registry=self.registry,
        )
        self.config_reloads = Counter(
            "gateway_config_reloads",
            "Configuration reloads (SIGHUP) by result: ok, or failed (the running one kept)",
            ["result"],
            registry=self.registry,
        )
        for result in ("ok", "failed"):
            self.config_reloads.labels(result)
        self.loop_lag_seconds = Histogram(
            "gateway_event_loop_lag_seconds",
            "How late the event loop woke a task that asked to sleep",
            buckets=BROADCAST_BUCKETS,
            registry=self.registry,
        )

    def watch(
        self,
        buses: Callable[[], Mapping[str, Mapping[str, int]]],
        readings: Callable[[], Mapping[str, float | None]],
        alerts: Callable[[], Mapping[str, int]],
        ages: Callable[[], Mapping[str, float | None]] = dict,
    ) -> None:
        """Read these live at every scrape."""
        self.registry.register(_LiveCollector(buses, readings, alerts, ages))

    def watch_storage(
        self,
        data_dir: Path,
        db: Path,
        *,
        failures: Callable[[], int],
        outbox: Callable[[], int] | None = None,
    ) -> None:
        """Measure the disk and the database at every scrape (and the MQTT outbox's
        depth, when ``outbox`` is given: it must answer without I/O)."""
        self.registry.register(_StorageCollector(data_dir, db, failures, outbox))

    def published(self, stream: str, clients: int, seconds: float) -> None:
        self.messages_sent.labels(stream).inc(clients)
        self.broadcast_seconds.labels(stream).observe(seconds)
        self.delivery_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
