"""The gateway as the fan-out benchmark runs it: ``build_app(config)`` in its own process.

Exactly what ``sensor-gateway run --simulate`` serves (same app, same
``AppRunner``/``TCPSite`` defaults, accept backlog included), with the
simulated probes answering at once, plus two harness hooks that change
nothing on the way a message goes out:

- the stall squeeze of :mod:`bench.baselines.common` for connections that ask for it;
- every ``gateway_broadcast_seconds`` observation of the sensors stream is also
  printed as ``B <seq> <clients> <seconds>``, like the baselines report theirs.

Run: ``python -m bench.ws_gateway -c FILE`` (the config's ``server.port`` 0 picks a port).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.baselines.common import STALL_HEADER, broadcast_done, ready, serve, squeeze
from gateway.api.listen import addresses
from gateway.api.server import build_app
from gateway.config import load_config
from gateway.serve import LISTEN_BACKLOG
from gateway.service import Gateway


class _Observed:
    def __init__(self, child: Any, gateway: Gateway) -> None:
        self._child = child
        self._gateway = gateway

    def observe(self, seconds: float) -> None:
        self._child.observe(seconds)
        seq = getattr(self._gateway.hub.streams["sensors"], "seq", 0)
        broadcast_done(seq, 0, seconds)  # the client count is not needed: 0


class _Recorder:
    """Stands in for the broadcast histogram: forwards, and reports the sensors stream."""

    def __init__(self, histogram: Any, gateway: Gateway) -> None:
        self._histogram = histogram
        self._gateway = gateway

    def labels(self, stream: str) -> Any:
        child = self._histogram.labels(stream)
        return _Observed(child, self._gateway) if stream == "sensors" else child


async def _record_broadcasts(app: web.Application) -> None:
    """Found by type, not by key: the app's keys are the gateway's own business."""
    found = list({id(v): v for v in app.values() if isinstance(v, Gateway)}.values())
    if len(found) != 1:
        raise RuntimeError(f"expected one Gateway in the app's state, found {len(found)}")
    gateway = found[0]
    metrics: Any = gateway.metrics
    metrics.broadcast_seconds = _Recorder(metrics.broadcast_seconds, gateway)


async def _squeeze_stalled(request: web.Request, response: web.StreamResponse) -> None:
    if request.headers.get(STALL_HEADER) and request.transport is not None:
        squeeze(request.transport)


async def main(stop: asyncio.Event) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-c", "--config", type=Path, required=True)
    parser.add_argument(
        "--backlog",
        type=int,
        default=LISTEN_BACKLOG,
        help=f"listen backlog (default {LISTEN_BACKLOG}, as `sensor-gateway run`): experiments",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = load_config(args.config)
    app = build_app(config, simulate=True, sim_time_scale=0.0)
    app.on_startup.append(_record_broadcasts)  # after the cleanup context made the gateway
    app.on_response_prepare.append(_squeeze_stalled)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        host = addresses(config.server.host)[0]
        site = web.TCPSite(runner, host, config.server.port, backlog=args.backlog)
        await site.start()
        ready(runner.addresses[0][1])
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    raise SystemExit(serve(main))
