"""The ``sensor-gateway`` command line.

Exit codes (../shared/contract.md): 0 normal stop, 1 bad config or usage,
2 a port or serial device that cannot be opened at start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from aiohttp import web

from simulators.control import control_app
from simulators.rig import Rig

EXIT_OK, EXIT_USAGE, EXIT_PORT = 0, 1, 2
log = logging.getLogger("gateway")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake exits 1 as the contract says (argparse uses 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sensor-gateway",
        description="Reservoir sensor gateway: serial probes in, alerts and readings out.",
    )
    common = _Parser(add_help=False)
    common.add_argument(
        "--log-level",
        default="INFO",
        metavar="L",
        help="DEBUG, INFO, WARNING or ERROR (default INFO)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = commands.add_parser(
        "simulate",
        parents=[common],
        help="run the simulated devices alone on virtual serial ports",
        description=(
            "Start the simulated EZO pH, EC and RTD circuits and a Modbus RTU bus on virtual "
            "serial ports (ptys), print one line per device with its serial path, and serve "
            "the simulator control API until stopped (Ctrl-C)."
        ),
    )
    sim.add_argument(
        "--control-port",
        type=int,
        default=8001,
        metavar="P",
        help="port of the control API on 127.0.0.1 (default 8001; 0 picks a free one)",
    )
    sim.add_argument(
        "--link-dir",
        type=Path,
        default=Path("data/serial/by-id"),
        metavar="D",
        help="where the stable links to the devices go, like /dev/serial/by-id "
        "(default ./data/serial/by-id)",
    )
    sim.add_argument(
        "--fast",
        action="store_true",
        help="answer at once instead of with the circuits' real processing times",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        print(f"sensor-gateway: --log-level: unknown level {args.log_level!r}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "simulate":
        return asyncio.run(simulate(args.control_port, args.link_dir.absolute(), fast=args.fast))
    return EXIT_USAGE  # pragma: no cover - argparse rejects unknown commands


async def simulate(control_port: int, link_dir: Path, *, fast: bool = False) -> int:
    rig = Rig(link_dir, time_scale=0.0 if fast else 1.0)
    runner = web.AppRunner(control_app(rig), access_log=None)
    await runner.setup()
    try:
        await rig.start()
        site = web.TCPSite(runner, "127.0.0.1", control_port)
        try:
            await site.start()
        except OSError as exc:
            print(f"sensor-gateway: control port {control_port}: {exc.strerror}", file=sys.stderr)
            return EXIT_PORT
        for line in rig.summary():
            print(line)
        port = runner.addresses[0][1]
        print(f"control API: http://127.0.0.1:{port}/api/simulator", flush=True)
        await _until_stopped()
        return EXIT_OK
    finally:
        await runner.cleanup()
        await rig.stop()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
