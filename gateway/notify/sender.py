"""The notification outbox's sender: one queue per target, retried while it fails.

The alert pipeline asks :meth:`Notifier.for_changes` for the notifications of
each batch of alert changes and commits them with the changes (gateway/alerts/pipeline.py),
then calls :meth:`Notifier.wake`. Each target has its own task: it sends the
target's oldest row through apprise and deletes it once apprise says it was
delivered; while delivery fails it tries again after 1 s, 2 s, 4 s ... up to
10 min, so a dead mail server never delays a Telegram chat. A row is sent at
least once: a process killed between the send and the delete sends it again at
start. A target is ``failing`` (``/healthz`` degraded) after
:data:`FAILING_AFTER` failed tries in a row or :data:`FAILING_FOR` seconds
without a success while it has something to send.

Reminders: every ``repeat_minutes`` while an alert stays active (not dismissed,
not cleared), measured on the monotonic clock from the last thing the target
was told of that alert; they go through the same outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from gateway import supervise
from gateway.alerts.model import Alert, Change
from gateway.alerts.store import Store, StoreWriteError
from gateway.alerts.tables import Notification
from gateway.api.metrics import Metrics
from gateway.backoff import Backoff
from gateway.notify.messages import Site, render, render_test
from gateway.notify.targets import Target, event_of, parse_url
from gateway.timestamps import utc_timestamp

if TYPE_CHECKING:
    import apprise  # loaded by gateway.notify.targets once a target is read

log = logging.getLogger(__name__)
FIRST_RETRY, MAX_RETRY = 1.0, 600.0  # s between tries of a failing target
FAILING_AFTER = 3  # failed tries in a row
FAILING_FOR = 900.0  # s without a success while there is something to send
SEND_TIMEOUT = 60.0  # s for one apprise call
STORE_RETRY = 2.0  # s before trying again to forget a sent row the disk kept


@dataclass
class _State:
    """What one target's task knows; /api/notify and /healthz read it."""

    target: Target
    apprise: apprise.Apprise
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_success: float | None = None  # wall clock
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0  # in a row
    trying_since: float | None = None  # monotonic: the first failure since the last success
    sent_not_forgotten: set[int] = field(default_factory=set)

    def failing(self, now: float) -> bool:
        long = self.trying_since is not None and now - self.trying_since > FAILING_FOR
        return self.failures >= FAILING_AFTER or long


class Notifier:
    """Start with :meth:`start` (once the store is open), stop with :meth:`stop`."""

    def __init__(
        self,
        targets: Sequence[Target],
        store: Store,
        site: Site,
        *,
        active: Callable[[], list[Alert]],
        metrics: Metrics | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.site, self._active, self.metrics = store, site, active, metrics
        self._wall, self._monotonic = wall, monotonic
        self.states = _states(targets, {})
        self._told: dict[tuple[str, str], float] = {}  # (target key, alert id) -> monotonic
        self._tasks: list[asyncio.Task[None]] = []

    # what the pipeline calls -------------------------------------------------------------

    def for_changes(self, changes: Sequence[Change]) -> list[Notification]:
        """The notifications these alert changes call for, one per target that wants each."""
        rows: list[Notification] = []
        now = self._monotonic()
        for change in changes:
            event = event_of(change)
            if event is None:
                continue
            for state in self.states.values():
                if state.target.wants(change.alert, event):
                    rows.append(self._row(state.target, change.alert, event, change.at))
                    self._told[(state.target.key, change.alert.id)] = now
        return rows

    def wake(self) -> None:
        for state in self.states.values():
            state.wake.set()

    def _row(self, target: Target, alert: Alert, event: str, at: float) -> Notification:
        title, body, kind = render(self.site, alert, event)
        return Notification(target.key, title, body, kind, event, at, alert.id)

    # life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Forget rows of targets no longer configured; start a task per target."""
        queued = await self.store.notifications_queued()
        for key, count in queued.items():
            if key not in self.states:
                log.warning("notify: dropping %d notifications for a removed target", count)
                with contextlib.suppress(StoreWriteError):  # logged by store.health
                    await self.store.drop_notifications(key)
        for state in self.states.values():
            if self.metrics is not None:
                self.metrics.notifications_sent.labels(state.target.name)
                self.metrics.notifications_failed.labels(state.target.name)
            name = f"gateway.notify.{state.target.index}"
            self._tasks.append(supervise.start(name, partial(self._run, state), logger=log))
        steps = [s.target.repeat_seconds for s in self.states.values() if s.target.repeat_seconds]
        if steps:
            step = min(30.0, max(0.05, min(steps) / 4))
            self._tasks.append(
                supervise.start("gateway.notify.reminders", partial(self._remind, step), logger=log)
            )

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await supervise.cancel(tasks)

    async def retarget(self, targets: Sequence[Target], site: Site) -> None:
        """New targets (a reloaded config): stop, swap, start again. A target whose URL
        is unchanged keeps its queue and its record; a removed one's queue is dropped."""
        await self.stop()
        self.states, self.site = _states(targets, self.states), site
        await self.start()

    # sending ------------------------------------------------------------------------------

    async def _run(self, state: _State) -> None:
        """One target's queue, oldest first, for ever."""
        backoff = Backoff(FIRST_RETRY, MAX_RETRY)
        key = state.target.key
        while True:
            row = await self.store.next_notification(key)
            if row is None:
                state.wake.clear()  # then look again: a commit may have come in between
                if (row := await self.store.next_notification(key)) is None:
                    await state.wake.wait()
                    continue
            if row.id not in state.sent_not_forgotten:
                error = await deliver(state.apprise, row.title, row.body, row.kind)
                if error is not None:
                    self._failed(state, row, error)
                    with contextlib.suppress(StoreWriteError):  # logged by store.health
                        await self.store.notification_done(row.id, sent=False)
                    await asyncio.sleep(backoff.next())
                    continue
                backoff.reset()
                self._sent(state)
                state.sent_not_forgotten.add(row.id)
            try:
                await self.store.notification_done(row.id, sent=True)
            except StoreWriteError:  # logged by store.health; not sent twice meanwhile
                await asyncio.sleep(STORE_RETRY)
            else:
                state.sent_not_forgotten.discard(row.id)

    def _sent(self, state: _State) -> None:
        if state.failures:
            log.info("notify %s: delivered again after %d failures", state.target.name,
                     state.failures)  # fmt: skip
        state.last_success, state.failures, state.trying_since = self._wall(), 0, None
        if self.metrics is not None:
            self.metrics.notifications_sent.labels(state.target.name).inc()

    def _failed(self, state: _State, row: Notification, error: str) -> None:
        state.failures += 1
        state.last_error, state.last_error_at = error, self._wall()
        if state.trying_since is None:
            state.trying_since = self._monotonic()
        if self.metrics is not None:
            self.metrics.notifications_failed.labels(state.target.name).inc()
        if state.failures in (1, FAILING_AFTER) or state.failures % 10 == 0:
            log.warning("notify %s: %s (%s %s, try %d); retrying", state.target.name, error,
                        row.event, row.alert_id or "", state.failures)  # fmt: skip

    # reminders ----------------------------------------------------------------------------

    async def _remind(self, step: float) -> None:
        while True:
            await asyncio.sleep(step)
            await self.remind()

    async def remind(self) -> None:
        """Queue a reminder for every active alert a target was last told of
        ``repeat_minutes`` ago (or more)."""
        now, active = self._monotonic(), self._active()
        ids = {a.id for a in active}
        self._told = {k: v for k, v in self._told.items() if k[1] in ids}
        rows: list[Notification] = []
        for alert in active:
            for state in self.states.values():
                target = state.target
                if not target.reminds_of(alert):
                    continue
                told = self._told.setdefault((target.key, alert.id), now)
                if now - told >= target.repeat_seconds:
                    rows.append(self._row(target, alert, "reminder", self._wall()))
        if not rows:
            return
        with contextlib.suppress(StoreWriteError):  # logged by store.health; next tick
            await self.store.add_notifications(rows)
            for row in rows:
                self._told[(row.target, row.alert_id or "")] = now
            self.wake()

    # what people read ---------------------------------------------------------------------

    async def status(self) -> list[dict[str, Any]]:
        """``GET /api/notify``: every target, its URL reduced to scheme and host."""
        queued = await self.store.notifications_queued()
        now = self._monotonic()
        return [
            {
                "name": s.target.name,
                "url": s.target.shown,
                "state": "failing" if s.failing(now) else "ok",
                "queued": queued.get(key, 0),
                "last_success": _stamp(s.last_success),
                "last_error": s.last_error,
                "last_error_at": _stamp(s.last_error_at),
                "failures_in_a_row": s.failures,
                "min_severity": s.target.min_severity,
                "events": sorted(s.target.events),
                "repeat_minutes": s.target.repeat_seconds / 60.0,
            }
            for key, s in self.states.items()
        ]

    def health(self) -> dict[str, dict[str, Any]]:
        """``/healthz``'s ``notify``: only the failing targets carry more than their state."""
        now = self._monotonic()
        report: dict[str, dict[str, Any]] = {}
        for s in self.states.values():
            if s.failing(now):
                report[s.target.name] = {
                    "state": "failing", "error": s.last_error, "failures": s.failures,
                    "last_success": _stamp(s.last_success),
                }  # fmt: skip
            else:
                report[s.target.name] = {"state": "ok"}
        return report


def _states(targets: Sequence[Target], old: Mapping[str, _State]) -> dict[str, _State]:
    """A state per target; one whose key (its URL) was in ``old`` keeps its record."""
    states: dict[str, _State] = {}
    for target in targets:
        instance = parse_url(target.url)
        if instance is None:  # config validation has already refused it
            raise ValueError(f"notify[{target.index}].url: not an apprise URL")
        state = states[target.key] = _State(target, instance)
        if (kept := old.get(target.key)) is not None:
            for name in ("last_success", "last_error", "last_error_at", "failures",
                         "trying_since", "sent_not_forgotten"):  # fmt: skip
                setattr(state, name, getattr(kept, name))
    return states


async def deliver(instance: apprise.Apprise, title: str, body: str, kind: str) -> str | None:
    """Send one message now (apprise runs blocking plugins on its threads); None when
    delivered, else what went wrong."""
    try:  # (apprise's own timeout= argument adds seconds to every call: not used)
        async with asyncio.timeout(SEND_TIMEOUT):
            result = await instance.async_notify(body=body, title=title, notify_type=kind)
    except TimeoutError:
        return f"no answer within {SEND_TIMEOUT:g} s"
    except Exception as exc:  # a plugin bug must not stop the queue
        return f"{type(exc).__name__}: {exc}"
    if result:
        return None
    problems = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
    return problems[-1] if problems else f"not delivered ({result.status.name.lower()})"


async def send_test(targets: Sequence[Target], site: Site) -> list[str | None]:
    """``notify-test``: a test message to every target at once; an error or None each."""
    title, body, kind = render_test(site)
    instances = [parse_url(t.url) for t in targets]
    return await asyncio.gather(
        *(deliver(i, title, body, kind) if i is not None else _unusable() for i in instances)
    )


async def _unusable() -> str:
    return "not an apprise URL"


def _stamp(at: float | None) -> str | None:
    return None if at is None else utc_timestamp(at)
