"""Run a gateway, a relay or the simulators until SIGINT/SIGTERM: bind, announce, stop
cleanly (``sensor-gateway run``, ``relay`` and ``simulate``)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import resource
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.errors import PortDisconnected
from gateway.cli_args import EXIT_OK, EXIT_PORT, PROG, report
from gateway.config import Config, ConfigError
from gateway.field import sdnotify
from gateway.field.service_manager import ServiceManager

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.service import Gateway

# Each command imports what only it needs (the relay, the client, jwt, the simulators,
# the field tools) where it starts: `run` without --simulate loads none of them, which
# keeps start-up short. `run` loads aiohttp only once its buses have started.

LISTEN_BACKLOG = 4096
log = logging.getLogger("gateway")


class Hangups:
    """SIGHUP for ``run`` and ``relay`` from the moment :meth:`hold` is called: one that
    comes before the server listens is kept and handed to the reload once it does,
    instead of ending the process (SIGHUP's default action)."""

    def __init__(self) -> None:
        self.pending = False

    def hold(self) -> Hangups:
        """Keep SIGHUP from now on (the main thread, before or inside the event loop)."""
        signal.signal(signal.SIGHUP, self._keep)
        return self

    def _keep(self, signum: int, frame: object) -> None:
        self.pending = True

    def hand_to(self, handler: Callable[[], None]) -> None:
        """From now on SIGHUP calls ``handler``; one kept while starting calls it now."""
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, handler)
        if self.pending:
            self.pending = False
            log.info("SIGHUP came while starting; applying it now")
            handler()


def _raise_file_limit() -> None:
    """Let the process hold as many sockets as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else soft, hard)
        )


async def serve(
    config: Config,
    *,
    simulate: bool = False,
    fast: bool = False,
    require_ports: bool = False,
    reread: Callable[[], Config] | None = None,
    hangups: Hangups,
) -> int:
    """Run the gateway until SIGINT/SIGTERM; on SIGHUP, apply ``reread()``. Exit code
    per the contract. ``fast``: simulated devices answer at once. ``hangups``: SIGHUP,
    held since the command began.

    The buses start first; the web server's modules load in a worker thread while the
    devices answer their start-up write (gateway/startup.py says why)."""
    from gateway.startup import GatewayRun

    with _stop_signals() as stop:
        try:
            run = GatewayRun(
                config,
                simulate=simulate,
                sim_time_scale=0.0 if fast else 1.0,
                require_ports=require_ports,
            )
        except ConfigError as exc:
            return report(exc)
        try:
            try:
                await run.start()
            except PortDisconnected as exc:
                print(f"{PROG}: cannot open serial port {exc.port}: {exc.reason}", file=sys.stderr)
                return EXIT_PORT
            # The event loop goes on serving the buses (and, simulating, the devices) while
            # the import runs; the import takes the GIL in turns of 5 ms at most.
            await asyncio.to_thread(importlib.import_module, "gateway.api.server")
            from gateway.api.server import gateway_app  # loaded: nothing left to do here

            app = gateway_app(run)
            buses = len(config.buses)
            mode = f"{buses} bus{'es' if buses != 1 else ''}"
            if simulate:
                mode = "simulated devices, answering at once" if fast else "simulated devices"
            banner = f"{config.reservoir_id} on {{url}} ({mode})"
            return await _serve_until(
                app, config, banner, stop, hangups, gateway=run.gateway, reread=reread
            )
        finally:
            await run.stop()


async def serve_relay(config: Config, hangups: Hangups) -> int:
    """Run a relay until SIGINT/SIGTERM (SIGHUP: a warning that it does not reload)."""
    from gateway.mqtt.relay import build_relay_app

    try:
        app = build_relay_app(config)
    except ConfigError as exc:
        return report(exc)
    banner = f"relay on {{url}} for {config.mqtt.url}"
    with _stop_signals() as stop:
        return await _serve_until(app, config, banner, stop, hangups, gateway=None, reread=None)


async def _serve_until(
    app: web.Application,
    config: Config,
    banner: str,
    stop: asyncio.Event,
    hangups: Hangups,
    *,
    gateway: Gateway | None,
    reread: Callable[[], Config] | None,
) -> int:
    from aiohttp import web

    from gateway.api.listen import ListenError, listen

    _raise_file_limit()
    systemd = sdnotify.Notifier.from_environ()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()  # a gateway's buses have started already (serve)
    manager = ServiceManager(systemd, gateway, reread)
    try:
        # A deep accept queue: after a restart every screen reconnects at once (aiohttp's
        # default backlog of 128 makes a 10,000-client storm take 31 s instead of 9 s).
        try:
            bound = await listen(
                runner, config.server.host, config.server.port, backlog=LISTEN_BACKLOG
            )
        except ListenError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return EXIT_PORT
        log.info("listening on %s", ", ".join(bound))
        print(f"{PROG}: " + banner.format(url=f"http://{bound[0]}"), flush=True)
        manager.start(banner.format(url=f"http://{bound[0]}"))
        hangups.hand_to(manager.hangup)
        await stop.wait()
        log.info("stopping")
        systemd.stopping("stopping")
        return EXIT_OK
    finally:
        await manager.stop()
        await runner.cleanup()
        systemd.close()


async def simulate(control_port: int, link_dir: Path, *, fast: bool = False) -> int:
    with _stop_signals() as stop:
        return await _simulate_until(control_port, link_dir, stop, fast=fast)


async def _simulate_until(
    control_port: int, link_dir: Path, stop: asyncio.Event, *, fast: bool
) -> int:
    from aiohttp import web

    from simulators.control import control_app
    from simulators.rig import Rig

    rig = Rig(link_dir, time_scale=0.0 if fast else 1.0)
    runner = web.AppRunner(control_app(rig), access_log=None)
    await runner.setup()
    try:
        await rig.start()
        site = web.TCPSite(runner, "127.0.0.1", control_port)
        try:
            await site.start()
        except OSError as exc:
            print(f"{PROG}: control port {control_port}: {exc.strerror}", file=sys.stderr)
            return EXIT_PORT
        for line in rig.summary():
            print(line)
        port = runner.addresses[0][1]
        print(f"control API: http://127.0.0.1:{port}/api/simulator", flush=True)
        await stop.wait()
        return EXIT_OK
    finally:
        await runner.cleanup()
        await rig.stop()


@contextlib.contextmanager
def _stop_signals() -> Iterator[asyncio.Event]:
    """SIGINT and SIGTERM set the event, from the very start of a command: a stop that
    comes while it starts up (systemd may send one at any time) is a clean stop too."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
