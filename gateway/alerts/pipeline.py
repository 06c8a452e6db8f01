"""The alert path: engine -> store -> clients and the MQTT uplink, and what it does
when the disk refuses a write.

While the store takes writes, a change is committed (with the outbox messages
that tell the broker of it) before any client hears of it: what a client was
told is on disk.

When a commit fails (disk full, read-only, I/O error), the clients still hear
of the change at once (its ``seq`` and the new counts on /ws/alerts; REST reads
the engine, so it agrees), and the change is held in memory, in order, with its
outbox messages and its notifications (gateway/notify/). The held changes
are committed, oldest first and each batch in its own transaction, every
``[storage] retry_interval`` and at once when the next change comes; a later
event for a held alert therefore never reaches the disk before the alert it
refers to. Only a process that stops while changes are held loses them, and it
says which in one ERROR line.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gateway.alerts.engine import AlertEngine
from gateway.alerts.model import Change, Now, Rule, alert_json
from gateway.alerts.shelves import Shelf, ShelfEvent
from gateway.alerts.store import Store, StoreWriteError
from gateway.alerts.tables import Notification, Outgoing, Restored
from gateway.api.hub import Hub
from gateway.timestamps import utc_timestamp

if TYPE_CHECKING:
    from gateway.mqtt.uplink import Uplink  # aiomqtt loads only where a broker is set

log = logging.getLogger("gateway.pipeline")  # the name logs were filtered by


class Notices(Protocol):
    """Who turns alert changes into notifications (gateway/notify/sender.py)."""

    def for_changes(self, changes: Sequence[Change]) -> list[Notification]: ...

    def wake(self) -> None:
        """Notifications were committed: send them."""


@dataclass
class _Pending:
    """Changes with the counts and the active alerts just after them."""

    changes: list[Change]
    summary: dict[str, int]
    active: list[dict[str, Any]]
    done: asyncio.Future[None] | None = None
    shelf_events: list[ShelfEvent] = field(default_factory=list)


@dataclass
class _Batch:
    """A pending batch once stamped: its /ws/alerts messages and its outbox messages."""

    changes: list[Change]
    messages: list[dict[str, Any]]
    outgoing: list[Outgoing]
    notifications: list[Notification]
    done: asyncio.Future[None] | None = None
    delivered: bool = field(default=False)
    shelf_events: list[ShelfEvent] = field(default_factory=list)


class AlertPipeline:
    def __init__(
        self,
        rules: Mapping[str, Rule],
        store: Store,
        hub: Hub,
        uplink: Uplink | None,
        *,
        retry_interval: float,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        notices: Notices | None = None,
    ) -> None:
        self.rules, self.store, self.hub, self.uplink = rules, store, hub, uplink
        self.notices = notices
        self.retry_interval = retry_interval
        self._wall, self._monotonic = wall, monotonic
        self.engine = AlertEngine(rules, new_id=store.new_id, now=monotonic())
        self._summary = self.engine.summary()
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._held: collections.deque[_Batch] = collections.deque()
        #: Shelves in force, and the timers (on the loop's monotonic clock) that end them.
        self.shelves: dict[str, Shelf] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}

    def now(self) -> Now:
        return Now(self._monotonic(), self._wall())

    def restore(self, restored: Restored) -> None:
        """Put back what the store held (once it is open, before any client)."""
        self.engine = AlertEngine(self.rules, new_id=self.store.new_id, now=self._monotonic())
        self.engine.restore(restored.alerts, restored.latches)
        wall = self._wall()
        for shelf in restored.shelves:  # the time left, from the wall clock after a restart
            if shelf.measurement in self.rules:
                self._put_up(shelf, shelf.until - wall)
        self._summary = self.engine.summary()

    def set_rules(self, rules: Mapping[str, Rule], latest: Mapping[str, float | None]) -> None:
        """New rules from a reloaded config, applied in place: active alerts and
        dismissals stay; what the new bounds change at the ``latest`` values is sent."""
        self.rules = rules
        self.submit(self.engine.set_rules(rules, latest, self.now()))

    # changes in ---------------------------------------------------------------------

    def evaluate(self, measurement: str, value: float | None) -> None:
        self.submit(self.engine.evaluate(measurement, value, self.now()))

    def check_stale(self) -> None:
        self.submit(self.engine.check_stale(self.now()))

    def submit(
        self,
        changes: list[Change],
        done: asyncio.Future[None] | None = None,
        shelf_events: Sequence[ShelfEvent] = (),
    ) -> None:
        if changes or shelf_events:
            active = [alert_json(a) for a in self.engine.active()]
            pending = _Pending(changes, self.engine.summary(), active, done, list(shelf_events))
            self._queue.put_nowait(pending)

    async def _submitted(self, changes: list[Change], shelf_events: list[ShelfEvent]) -> None:
        """Submit, and return once committed (or held) and sent."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.submit(changes, done, shelf_events)
        await done

    async def dismiss(self, alert_id: str, by: str | None = None) -> bool:
        """Dismiss an active alert; returns once ``dismissed`` and ``update`` are sent."""
        change = self.engine.dismiss(alert_id, self.now(), by)
        if change is None:
            return False
        await self._submitted([change], [])
        return True

    # shelves --------------------------------------------------------------------------

    async def shelve(self, measurement: str, seconds: float, by: str, reason: str) -> Shelf:
        """Silence ``measurement`` for ``seconds`` (validated by the caller); returns once
        ``shelved`` (and ``update``, if its alert left the counts) are sent. Shelving a
        shelved measurement replaces its shelf."""
        now = self.now()
        shelf = Shelf(measurement, now.wall + seconds, by, reason, now.wall)
        self._put_up(shelf, seconds)
        await self._submitted([], [ShelfEvent("shelved", shelf, now.wall, by)])
        return shelf

    async def unshelve(self, measurement: str, by: str) -> Shelf | None:
        """End a shelf before its time (None if there is none); the measurement is settled
        on its latest reading at once."""
        changes, event = self._take_down(measurement, by)
        if event is None:
            return None
        await self._submitted(changes, [event])
        return event.shelf

    def _put_up(self, shelf: Shelf, delay: float) -> None:
        self.engine.shelve(shelf.measurement)
        self.shelves[shelf.measurement] = shelf
        if (timer := self._expiry.pop(shelf.measurement, None)) is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._expiry[shelf.measurement] = loop.call_later(
            max(0.0, delay), self._expire, shelf.measurement
        )

    def _take_down(
        self, measurement: str, by: str | None
    ) -> tuple[list[Change], ShelfEvent | None]:
        shelf = self.shelves.pop(measurement, None)
        if (timer := self._expiry.pop(measurement, None)) is not None:
            timer.cancel()
        if shelf is None:
            return [], None
        now = self.now()
        changes = self.engine.unshelve(measurement, now)
        return changes, ShelfEvent("unshelved", shelf, now.wall, by)

    def _expire(self, measurement: str) -> None:
        """A shelf's time is up: ``unshelved`` (``by`` null), then what its reading raises."""
        changes, event = self._take_down(measurement, None)
        if event is not None:
            self.submit(changes, shelf_events=[event])

    def shelved(self) -> list[tuple[Shelf, dict[str, Any] | None]]:
        """The shelves in force, soonest to end first, each with its alert out of sight."""
        hidden = self.engine.shelved()
        return [
            (shelf, None if (alert := hidden.get(m)) is None else alert_json(alert))
            for m, shelf in sorted(self.shelves.items(), key=lambda item: item[1].until)
        ]

    # what clients read ----------------------------------------------------------------

    def active(self) -> list[dict[str, Any]]:
        return [alert_json(a) for a in self.engine.active()]

    @property
    def summary(self) -> dict[str, int]:
        """The counts the clients were last told."""
        return dict(self._summary)

    @property
    def held(self) -> int:
        """Alert changes the disk has not taken yet."""
        return sum(len(b.changes) for b in self._held)

    def storage(self) -> dict[str, object]:
        """``/healthz``'s ``storage``: failing while a write fails or changes are held."""
        health = self.store.health
        if not health.failing and not self._held:
            return {"state": "ok"}
        error = health.error or "alert changes not yet written"
        return {"state": "failing", "error": error, "held_alert_changes": self.held}

    def news(
        self,
        changes: Sequence[Change],
        summary: dict[str, int],
        shelf_events: Sequence[ShelfEvent] = (),
    ) -> list[dict[str, Any]]:
        """Stamp the /ws/alerts news: a ``shelved``/``unshelved`` per shelf event, a
        ``dismissed`` per dismissal, then an ``update`` if, and only if, the counts
        changed. The caller delivers them."""
        messages = [self.hub.prepare("alerts", event.message()) for event in shelf_events]
        messages += [
            self.hub.prepare(
                "alerts",
                {"type": "dismissed", "alert_id": c.alert.id, "by": c.alert.dismissed_by},
            )
            for c in changes
            if c.event == "dismissed"
        ]
        if summary != self._summary:
            self._summary = dict(summary)
            messages.append(self.hub.prepare("alerts", {"type": "update", "data": self._summary}))
        return messages

    # the writer -----------------------------------------------------------------------

    async def run(self) -> None:
        """The writer task: stamp each batch, commit it, tell the clients."""
        try:
            while True:
                pending = await self._next()
                if pending is not None:
                    self._held.append(self._stamp(pending))
                await self._flush()
        except asyncio.CancelledError:
            for timer in self._expiry.values():
                timer.cancel()
            self._report_unsaved()
            raise

    async def _next(self) -> _Pending | None:
        """The next batch; None when it is time to retry the held ones."""
        if not self._held:
            return await self._queue.get()
        try:
            async with asyncio.timeout(self.retry_interval):
                return await self._queue.get()
        except TimeoutError:
            return None

    def _stamp(self, pending: _Pending) -> _Batch:
        """The messages are stamped (given their seq) before the commit, so that the
        MQTT outbox carries them in the same transaction as the changes."""
        messages = self.news(pending.changes, pending.summary, pending.shelf_events)
        outgoing = (
            self.uplink.for_alerts(pending.changes, messages, pending.active, pending.shelf_events)
            if self.uplink is not None
            else []
        )
        notifications = (
            self.notices.for_changes(pending.changes) if self.notices is not None else []
        )
        return _Batch(
            pending.changes,
            messages,
            outgoing,
            notifications,
            pending.done,
            shelf_events=pending.shelf_events,
        )

    async def _flush(self) -> None:
        """Commit the held batches, oldest first; deliver each at once whatever happens."""
        while self._held:
            batch = self._held[0]
            try:
                await self.store.save(
                    batch.changes, batch.outgoing, batch.notifications, batch.shelf_events
                )
            except StoreWriteError:  # reported by store.health; kept for the next try
                for waiting in self._held:
                    self._deliver(waiting)
                return
            except Exception:
                log.exception("alert changes dropped: they cannot be saved")
            self._held.popleft()
            self._deliver(batch)
            if batch.outgoing and self.uplink is not None:
                self.uplink.wake.set()
            if batch.notifications and self.notices is not None:
                self.notices.wake()

    def _deliver(self, batch: _Batch) -> None:
        if batch.delivered:
            return
        batch.delivered = True
        for event in batch.shelf_events:
            shelf = event.shelf
            log.info("alerts of %s %s by %s until %s: %s", shelf.measurement, event.event,
                     event.by or "expiry", utc_timestamp(shelf.until), shelf.reason)  # fmt: skip
        for change in batch.changes:
            log.info("alert %s %s: %s %s", change.alert.id, change.event,
                     change.alert.measurement, change.alert.severity)  # fmt: skip
        for message in batch.messages:
            self.hub.deliver("alerts", message)
        if batch.done is not None and not batch.done.done():
            batch.done.set_result(None)

    def _report_unsaved(self) -> None:
        """At stop: say what never reached the disk (held, or not yet taken up)."""
        unsaved = [c for b in self._held for c in b.changes]
        while not self._queue.empty():
            unsaved += self._queue.get_nowait().changes
        if unsaved:
            log.error(
                "storage: stopping with %d alert changes not written to %s: %s",
                len(unsaved),
                self.store.path,
                ", ".join(
                    f"{c.alert.id} {c.event} {c.alert.measurement} {c.alert.severity} "
                    f"at {utc_timestamp(c.at)}"
                    for c in unsaved
                ),
            )
