"""What a running ``sensor-gateway run`` (or ``relay``) tells systemd, and its SIGHUP.

Once listening and polling: ``READY=1`` and a ``STATUS=`` line (kept current);
``WATCHDOG=1`` while the event loop and every bus make progress; on SIGHUP,
``RELOADING=1``, the configuration re-read and applied (:meth:`Gateway.reload`),
then ``READY=1`` again. Without ``$NOTIFY_SOCKET`` only the reload happens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from functools import partial

from gateway import supervise
from gateway.config import Config, ConfigError
from gateway.field import sdnotify
from gateway.service import Gateway

log = logging.getLogger(__name__)
STATUS_EVERY = 10.0  # s between checks of the STATUS line (sent only when it changed)


class ServiceManager:
    """Call :meth:`start` once listening, :meth:`hangup` on SIGHUP, :meth:`stop` at the end."""

    def __init__(
        self,
        systemd: sdnotify.Notifier,
        gateway: Gateway | None,
        reread: Callable[[], Config] | None,
    ) -> None:
        """``gateway`` None: a relay (no buses, no reload)."""
        self.systemd, self.gateway, self.reread = systemd, gateway, reread
        self._tasks: list[asyncio.Task[None]] = []
        self._reloads: set[asyncio.Task[None]] = set()
        self._status = ""

    def start(self, banner: str) -> None:
        self._status = self.gateway.status_line() if self.gateway else banner
        self.systemd.ready(self._status)
        alive: Callable[[], bool] = _loop_runs  # a relay: the event loop alone
        if self.gateway is not None:
            alive = sdnotify.ProgressCheck(
                self.gateway.progress, _Live(self.gateway.progress_limits)
            )
        watchdog = partial(sdnotify.supervise_watchdog, self.systemd, alive)
        self._tasks.append(supervise.start("gateway.watchdog", watchdog, logger=log))
        if self.systemd.enabled and self.gateway is not None:
            self._tasks.append(supervise.start("gateway.status", self._report, logger=log))

    def hangup(self) -> None:
        """SIGHUP: reload in a task of its own (one after another)."""
        task = asyncio.create_task(self.reload(), name="gateway.reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> None:
        """Re-read the configuration and apply it; a bad one changes nothing."""
        self.systemd.reloading("reloading the configuration")
        gateway = self.gateway
        if gateway is None or self.reread is None:
            log.warning("SIGHUP: this command does not reload; restart it to apply changes")
        else:
            result = "failed"
            try:
                await gateway.reload(self.reread())
                result = "ok"
            except ConfigError as exc:
                for problem in exc.problems:
                    log.error("reload: %s", problem)
                log.error("reload: refused; still running the previous configuration")
            except Exception:
                log.exception("reload: failed part way; restart the gateway")
            gateway.metrics.config_reloads.labels(result).inc()
            self._status = gateway.status_line()
        self.systemd.ready(self._status)

    async def _report(self) -> None:
        assert self.gateway is not None
        while True:
            await asyncio.sleep(STATUS_EVERY)
            line = self.gateway.status_line()
            if line != self._status:
                self._status = line
                self.systemd.status(line)

    async def stop(self) -> None:
        tasks, self._tasks = [*self._tasks, *self._reloads], []
        await supervise.cancel(tasks)


def _loop_runs() -> bool:
    """The watchdog task runs on the loop: a blocked loop sends nothing by itself."""
    return True


class _Live(Mapping[str, float]):
    """A mapping computed afresh at each lookup: the buses change on reload."""

    def __init__(self, compute: Callable[[], dict[str, float]]) -> None:
        self._compute = compute

    def __getitem__(self, key: str) -> float:
        return self._compute()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._compute())

    def __len__(self) -> int:
        return len(self._compute())
