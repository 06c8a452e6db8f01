"""What every benchmark server shares: the message, the stdout protocol, the stall squeeze.

A server prints ``READY <port>`` once it listens, then one line per broadcast,
``B <seq> <clients> <seconds>``: the time from the start of the broadcast
(before encoding) to the last client written, measured inside the server.

A load client that means to stall sends the header ``X-Bench-Stall: 1``; the
server then gives that one connection tiny buffers (:func:`squeeze`: the
smallest socket send buffer, ``TCP_NOTSENT_LOWAT`` of 1 byte so the kernel
takes no more once the peer's window is shut, a 1 KiB transport high-water
mark), so that its backlog shows within seconds at 2 updates a second instead
of after minutes. The same squeeze is applied in every server, the gateway included.

SIGUSR1 pauses a baseline's ticker and resumes it (no seq is spent while
paused): the benchmark runs each server beside the floor, and silences the
floor when it wants a server's own timings alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bench.procstat import die_with_parent
from gateway.timestamps import utc_timestamp

STALL_HEADER = "X-Bench-Stall"
SQUEEZED_SNDBUF = 4096
TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)
SQUEEZED_HIGH_WATER = 1024
#: What the gateway's sensor_update carries from its four simulated probes (186 bytes).
SENSOR_DATA: dict[str, float | str | None] = {
    "temperature": 16.875,
    "ph": 7.323,
    "conductivity": 441.3,
    "water_level": 12.6009865,
    "reservoir_id": "EMBALSE_01",
}
#: The seed's default accept backlog of an aiohttp site, used by every baseline but uvicorn.
BACKLOG = 128


def sensor_update(seq: int) -> dict[str, Any]:
    """The message the gateway publishes on /ws/sensors, same keys in the same order."""
    return {
        "type": "sensor_update",
        "timestamp": utc_timestamp(),
        "seq": seq,
        "data": SENSOR_DATA,
    }


def squeeze(transport: asyncio.BaseTransport) -> None:
    """Tiny buffers for one connection: its backlog fills in seconds, not minutes."""
    if isinstance(transport, asyncio.WriteTransport):
        transport.set_write_buffer_limits(high=SQUEEZED_HIGH_WATER)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SQUEEZED_SNDBUF)
        sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, 1)


def ready(port: int) -> None:
    print(f"READY {port}", flush=True)


def broadcast_done(seq: int, clients: int, seconds: float) -> None:
    print(f"B {seq} {clients} {seconds:.6f}", flush=True)


def parser(description: str) -> argparse.ArgumentParser:
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--port", type=int, default=0, help="0: any free port")
    args.add_argument("--interval", type=float, default=0.5, help="s between broadcasts")
    args.add_argument("--compression", action="store_true", help="permessage-deflate")
    return args


class _Pause:
    on = False

    @classmethod
    def toggle(cls) -> None:
        cls.on = not cls.on


def pausable() -> None:
    """SIGUSR1 pauses the ticker, the next one resumes it (call inside the running loop)."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _Pause.toggle)


def serve(main: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run ``main(stop)`` until SIGTERM or SIGINT sets ``stop``; dies with its parent."""
    die_with_parent()

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        pausable()
        await main(stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(runner())
    sys.stdout.flush()
    return 0


async def ticker(interval: float, broadcast: Callable[[int], Awaitable[None]]) -> None:
    """The seed's loop: sleep, broadcast the next seq; a failed broadcast is logged, not fatal."""
    seq = 0
    while True:
        await asyncio.sleep(interval)
        if _Pause.on:
            continue
        seq += 1
        try:
            await broadcast(seq)
        except Exception as exc:
            print(f"broadcast {seq} failed: {exc!r}", file=sys.stderr, flush=True)
