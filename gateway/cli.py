"""The ``sensor-gateway`` command line.

Exit codes (../shared/contract.md): 0 normal stop, 1 bad config or usage,
2 a port or serial device that cannot be opened at start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import resource
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from aiohttp import web

from drivers.errors import PortDisconnected
from gateway.config import Config, ConfigError, dump_config, load_config

# Each command imports what only it needs (the relay, the client, jwt, the simulators)
# where it starts: `run` without --simulate loads none of them, which keeps start-up short.

EXIT_OK, EXIT_USAGE, EXIT_PORT = 0, 1, 2
LISTEN_BACKLOG = 4096
PROG = "sensor-gateway"
log = logging.getLogger("gateway")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake exits 1 as the contract says (argparse uses 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Reservoir sensor gateway: serial probes in, alerts and readings out.",
    )
    common = _Parser(add_help=False)
    common.add_argument(
        "--log-level",
        default="INFO",
        metavar="L",
        help="DEBUG, INFO, WARNING or ERROR (default INFO)",
    )
    config_file = _Parser(add_help=False)
    config_file.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML configuration (default: the embedded one, which reads the simulators)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        parents=[config_file, common],
        help="run the gateway",
        description="Poll the configured serial buses and serve the dashboard, the WebSocket "
        "streams and the REST API until stopped (Ctrl-C or SIGTERM).",
    )
    run.add_argument(
        "--simulate",
        action="store_true",
        help="start the simulated devices too, and read them where the config says sim://<device>",
    )
    run.add_argument("--host", metavar="H", help="address to listen on (default from config)")
    run.add_argument("--port", type=int, metavar="P", help="port to listen on; 0 picks a free one")
    run.add_argument("--data-dir", type=Path, metavar="D", help="where SQLite and links go")

    relay = commands.add_parser(
        "relay",
        parents=[config_file, common],
        help="serve the API for every reservoir heard on the MQTT broker",
        description="No serial buses: subscribe to the broker in [mqtt] and serve the same "
        "WebSocket and REST API for every reservoir its gateways publish "
        "(/ws/sensors?reservoir=ID, channels sensors:<id> and alerts:<id> on /ws).",
    )
    relay.add_argument("--host", metavar="H", help="address to listen on (default from config)")
    relay.add_argument(
        "--port", type=int, metavar="P", help="port to listen on; 0 picks a free one"
    )

    check = commands.add_parser(
        "check-config",
        help="validate a configuration file",
        description="Validate FILE (and the GATEWAY_* environment). Prints the normalized "
        "configuration as JSON and exits 0, or prints every problem as `path.to.key: message` "
        "and exits 1.",
    )
    check.add_argument("file", type=Path, metavar="FILE")

    watch = commands.add_parser(
        "watch",
        help="print the gateway's messages as they arrive",
        description="Connect to a gateway and print each message as it arrives, reconnecting "
        "(and resuming without a gap) like the dashboard does. URL: the gateway "
        "(http://127.0.0.1:8000: alerts and sensors) or one stream (ws://.../ws/alerts).",
    )
    watch.add_argument("url", metavar="URL")
    watch.add_argument("--token", metavar="T", help="a token, when the gateway requires one")
    watch.add_argument("--json", action="store_true", help="print the raw JSON of each message")

    mint = commands.add_parser(
        "token",
        parents=[config_file],
        help="mint an HS256 token for a dashboard or a script",
        description="Print a JWT signed with auth.jwt_secret (from the config or "
        "GATEWAY_AUTH__JWT_SECRET), for a dashboard, wscat or a bench script.",
    )
    mint.add_argument("--sub", required=True, help="who the token is for (kept in the history)")
    mint.add_argument(
        "--days", type=float, default=30.0, help="valid for this many days (default 30)"
    )

    sim = commands.add_parser(
        "simulate",
        parents=[config_file, common],
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
        metavar="D",
        help="where the stable links to the devices go, like /dev/serial/by-id "
        "(default: <data_dir>/serial/by-id)",
    )
    sim.add_argument(
        "--fast",
        action="store_true",
        help="answer at once instead of with the circuits' real processing times",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "token":
        return mint_token(args.config, args.sub, args.days)
    if args.command == "watch":
        return asyncio.run(watch_command(args.url, args.token, raw=args.json))
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        print(f"{PROG}: --log-level: unknown level {args.log_level!r}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _report(exc)
    if args.command == "run":
        config = _with_overrides(config, args)
        return asyncio.run(serve(config, simulate=args.simulate))
    if args.command == "relay":
        return asyncio.run(serve_relay(_with_overrides(config, args)))
    link_dir = args.link_dir or config.data_dir / "serial" / "by-id"
    return asyncio.run(simulate(args.control_port, link_dir.absolute(), fast=args.fast))


def _report(error: ConfigError) -> int:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    return EXIT_USAGE


def check_config(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return _report(exc)
    print(dump_config(config))
    return EXIT_OK


def mint_token(path: Path | None, subject: str, days: float) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return _report(exc)
    if not config.auth.jwt_secret:
        print("auth.jwt_secret: not set, so the gateway accepts no tokens to mint", file=sys.stderr)
        return EXIT_USAGE
    if days <= 0:
        print("--days: must be more than 0", file=sys.stderr)
        return EXIT_USAGE
    import jwt

    expires = int(time.time() + days * 86400)
    print(jwt.encode({"sub": subject, "exp": expires}, config.auth.jwt_secret, algorithm="HS256"))
    return EXIT_OK


async def watch_command(url: str, token: str | None, *, raw: bool) -> int:
    if not url.startswith(("http://", "https://", "ws://", "wss://")):
        print(
            f"{PROG} watch: URL must start with http://, https://, ws:// or wss://", file=sys.stderr
        )
        return EXIT_USAGE
    from gateway.client import GatewayClient
    from gateway.watch import describe

    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        async with GatewayClient(url, token=token) as client:
            async for item in client:
                print(describe(item, raw=raw), flush=True)
    except asyncio.CancelledError:
        pass
    return EXIT_OK


def _with_overrides(config: Config, args: argparse.Namespace) -> Config:
    server = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    update: dict[str, object] = {"server": config.server.model_copy(update=server)}
    if getattr(args, "data_dir", None) is not None:
        update["data_dir"] = args.data_dir
    return config.model_copy(update=update)


def _raise_file_limit() -> None:
    """Let the process hold as many sockets as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else soft, hard)
        )


async def serve(config: Config, *, simulate: bool = False) -> int:
    """Run the gateway until SIGINT/SIGTERM. Exit code per the contract."""
    from gateway.server import build_app

    try:
        app = build_app(config, simulate=simulate)
    except ConfigError as exc:
        return _report(exc)
    mode = "simulated devices" if simulate else f"{len(config.buses)} serial buses"
    return await _serve(app, config, f"{config.reservoir_id} on {{url}} ({mode})")


async def serve_relay(config: Config) -> int:
    """Run a relay until SIGINT/SIGTERM."""
    from gateway.relay import build_relay_app

    try:
        app = build_relay_app(config)
    except ConfigError as exc:
        return _report(exc)
    return await _serve(app, config, f"relay on {{url}} for {config.mqtt.url}")


async def _serve(app: web.Application, config: Config, banner: str) -> int:
    _raise_file_limit()
    runner = web.AppRunner(app, handle_signals=False)
    try:
        await runner.setup()
    except PortDisconnected as exc:
        print(f"{PROG}: cannot open serial port {exc.port}: {exc.reason}", file=sys.stderr)
        await runner.cleanup()
        return EXIT_PORT
    try:
        # A deep accept queue: after a restart every screen reconnects at once (aiohttp's
        # default backlog of 128 makes a 10,000-client storm take 31 s instead of 9 s).
        site = web.TCPSite(runner, config.server.host, config.server.port, backlog=LISTEN_BACKLOG)
        try:
            await site.start()
        except OSError as exc:
            where = f"{config.server.host}:{config.server.port}"
            print(f"{PROG}: cannot listen on {where}: {exc.strerror}", file=sys.stderr)
            return EXIT_PORT
        host, port = runner.addresses[0][:2]
        print(f"{PROG}: " + banner.format(url=f"http://{host}:{port}"), flush=True)
        await _until_stopped()
        log.info("stopping")
        return EXIT_OK
    finally:
        await runner.cleanup()


async def simulate(control_port: int, link_dir: Path, *, fast: bool = False) -> int:
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
