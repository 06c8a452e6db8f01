"""The naive aiohttp loop: ``await ws.send_str(json.dumps(m))`` for each client in turn.

Every delivery encodes the message again and waits on that client's send; a
client whose buffer is full holds up everybody after it.

Run: ``python -m bench.baselines.naive [--port P] [--interval S] [--compression]``.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from bench.baselines.common import (
    BACKLOG,
    STALL_HEADER,
    broadcast_done,
    parser,
    ready,
    sensor_update,
    serve,
    squeeze,
    ticker,
)

CLIENTS = web.AppKey("clients", set[web.WebSocketResponse])
COMPRESS = web.AppKey("compress", bool)


async def sensors(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(compress=request.app[COMPRESS])
    await ws.prepare(request)
    request.app[CLIENTS].add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        request.app[CLIENTS].discard(ws)
    return ws


async def squeeze_stalled(request: web.Request, response: web.StreamResponse) -> None:
    if request.headers.get(STALL_HEADER) and request.transport is not None:
        squeeze(request.transport)


def app(compression: bool) -> web.Application:
    application = web.Application()
    application[CLIENTS] = set()
    application[COMPRESS] = compression
    application.on_response_prepare.append(squeeze_stalled)
    application.router.add_get("/ws/sensors", sensors)
    return application


async def main(stop: asyncio.Event) -> None:
    args = parser(__doc__ or "").parse_args()
    application = app(args.compression)
    clients = application[CLIENTS]

    async def broadcast(seq: int) -> None:
        started = time.perf_counter()
        message = sensor_update(seq)
        for ws in list(clients):
            await ws.send_str(json.dumps(message))
        broadcast_done(seq, len(clients), time.perf_counter() - started)

    runner = web.AppRunner(application, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=BACKLOG)
        await site.start()
        ready(runner.addresses[0][1])
        task = asyncio.create_task(ticker(args.interval, broadcast), name="naive.ticker")
        try:
            await stop.wait()
        finally:
            task.cancel()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    raise SystemExit(serve(main))
