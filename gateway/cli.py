"""The ``sensor-gateway`` command line.

Exit codes (../shared/contract.md): 0 normal stop, 1 bad config or usage,
2 an address that cannot be listened on, or (``run --require-ports``) a serial port
that cannot be opened at start.
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from aiohttp import web

from drivers.errors import PortDisconnected
from gateway.api.listen import ListenError, listen
from gateway.config import Config, ConfigError, dump_config, load_config, with_overrides
from gateway.field import sdnotify
from gateway.field.journal import configure_logging
from gateway.field.scan import parse_bauds, parse_units, scan_command
from gateway.field.service_manager import ServiceManager

if TYPE_CHECKING:
    from gateway.service import Gateway

# Each command imports what only it needs (the relay, the client, jwt, the simulators,
# the field tools) where it starts: `run` without --simulate loads none of them, which
# keeps start-up short.

EXIT_OK, EXIT_USAGE, EXIT_PORT = 0, 1, 2
LISTEN_BACKLOG = 4096
PROG = "sensor-gateway"
#: The longest a minted token may live: a token that never expires is refused.
MAX_TOKEN_DAYS = 3650
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
        "streams and the REST API until stopped (Ctrl-C or SIGTERM). SIGHUP re-reads the "
        "configuration file and applies it without dropping a client.",
    )
    run.add_argument(
        "--simulate",
        action="store_true",
        help="start the simulated devices too, and read them where the config says sim://<device>",
    )
    run.add_argument(
        "--host",
        action="append",
        metavar="H",
        help="address to listen on; repeat for more (default from config: localhost, "
        "which is 127.0.0.1 and ::1)",
    )
    run.add_argument("--port", type=int, metavar="P", help="port to listen on; 0 picks a free one")
    run.add_argument("--data-dir", type=Path, metavar="D", help="where SQLite and links go")
    run.add_argument(
        "--require-ports",
        action="store_true",
        help="exit 2 when a serial port cannot be opened at start (default: log it, run "
        "that bus as down and keep trying, poll the others)",
    )

    relay = commands.add_parser(
        "relay",
        parents=[config_file, common],
        help="serve the API for every reservoir heard on the MQTT broker",
        description="No serial buses: subscribe to the broker in [mqtt] and serve the same "
        "WebSocket and REST API for every reservoir its gateways publish "
        "(/ws/sensors?reservoir=ID, channels sensors:<id> and alerts:<id> on /ws).",
    )
    relay.add_argument(
        "--host",
        action="append",
        metavar="H",
        help="address to listen on; repeat for more (default from config: localhost, "
        "which is 127.0.0.1 and ::1)",
    )
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
    watch.add_argument(
        "--channel",
        action="append",
        metavar="NAME",
        help="a channel to follow on /ws instead of alerts and sensors (repeatable): "
        "alerts, sensors, sites (every site's status and counts), or on a relay "
        "alerts:<reservoir_id>, sensors:<reservoir_id>",
    )
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
    mint.add_argument(
        "--role",
        choices=("viewer", "operator", "technician"),
        default="viewer",
        help="what the bearer may do: viewer reads, operator also dismisses and shelves "
        "alerts, technician also calibrates probes (default viewer)",
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
    backup = commands.add_parser(
        "backup",
        parents=[config_file],
        help="copy the live database safely",
        description="Copy the SQLite database under data_dir to DEST with SQLite's online "
        "backup: a consistent copy, safe while the gateway runs. DEST: a new file, or a "
        "directory to put a dated copy in.",
    )
    backup.add_argument("dest", type=Path, metavar="DEST")

    scan = commands.add_parser(
        "scan",
        help="find the Modbus units or the EZO circuit on a serial line",
        description="Ask PORT at each baud rate for an EZO circuit (`i`) and, if none answers, "
        "every Modbus unit in --units (function 3, register 0; an exception reply counts too). "
        "Prints a [[buses]] table to paste into the configuration. Stop the gateway first: "
        "it holds the port. Exit 1 when nothing answers.",
    )
    scan.add_argument("port", metavar="PORT")
    scan.add_argument(
        "--baud", type=parse_bauds, default="9600,19200", help="rates to try (default 9600,19200)"
    )
    scan.add_argument(
        "--units", type=parse_units, default="1-247", help="unit addresses (default 1-247)"
    )
    scan.add_argument(
        "--timeout", type=float, default=0.1, metavar="S", help="s to wait per unit (default 0.1)"
    )

    commands.add_parser(
        "doctor",
        parents=[config_file],
        help="check the config, ports, probes, disk, clock, broker and listening port",
        description="One line per check: ok, warn or fail, and what to do. Ports: exist, "
        "readable and writable by this user, not held by another process; each EZO circuit "
        "answers `i` with the configured type, Status and Cal,?; each Modbus point reads. "
        "Run it with the gateway stopped (it holds its ports). Exit 1 when a check fails.",
    )
    commands.add_parser(
        "notify-test",
        parents=[config_file],
        help="send a test notification to every [[notify]] target",
        description="Send a test message to each [[notify]] target now (not through the "
        "outbox) and print one line per target: ok, or fail and why. Exit 1 when any fails.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "token":
        return mint_token(args.config, args.sub, args.days, args.role)
    if args.command == "watch":
        return asyncio.run(
            watch_command(args.url, args.token, raw=args.json, channels=args.channel)
        )
    if args.command == "backup":
        return backup_command(args.config, args.dest)
    if args.command == "doctor":
        from gateway.field.doctor import doctor_command

        return asyncio.run(doctor_command(args.config))
    if args.command == "notify-test":
        return notify_test(args.config)
    if args.command == "scan":
        return asyncio.run(scan_command(args.port, args.baud, args.units, args.timeout))
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        print(f"{PROG}: --log-level: unknown level {args.log_level!r}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(level)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _report(exc)
    if args.command in ("run", "relay"):
        try:
            config = _with_overrides(config, args)
        except ConfigError as exc:
            return _report(exc)
    if args.command == "run":

        def reread() -> Config:
            return _with_overrides(load_config(args.config), args)

        return asyncio.run(
            serve(config, simulate=args.simulate, require_ports=args.require_ports, reread=reread)
        )
    if args.command == "relay":
        return asyncio.run(serve_relay(config))
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


def notify_test(path: Path | None) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return _report(exc)
    from gateway.notify.sender import send_test
    from gateway.notify.targets import from_config
    from gateway.service import notify_site

    targets = from_config(config.notify)
    if not targets:
        print("no [[notify]] targets configured", file=sys.stderr)
        return EXIT_USAGE
    errors = asyncio.run(send_test(targets, notify_site(config)))
    for target, error in zip(targets, errors, strict=True):
        print(f"{target.name}: " + ("ok" if error is None else f"fail: {error}"))
    return EXIT_OK if all(e is None for e in errors) else EXIT_USAGE


def mint_token(path: Path | None, subject: str, days: float, role: str = "viewer") -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return _report(exc)
    if not config.auth.jwt_secret:
        print("auth.jwt_secret: not set, so the gateway accepts no tokens to mint", file=sys.stderr)
        return EXIT_USAGE
    if not 0 < days <= MAX_TOKEN_DAYS:  # NaN too: every token gets a real exp
        print(f"--days: expected more than 0 and at most {MAX_TOKEN_DAYS}", file=sys.stderr)
        return EXIT_USAGE
    import jwt

    expires = int(time.time() + days * 86400)
    claims = {"sub": subject, "role": role, "exp": expires}
    print(jwt.encode(claims, config.auth.jwt_secret, algorithm="HS256"))
    return EXIT_OK


def backup_command(path: Path | None, dest: Path) -> int:
    from gateway.field.backup import BackupError, backup_database
    from gateway.service import DB_NAME

    try:
        config = load_config(path)
        done = backup_database(config.data_dir / DB_NAME, dest)
    except ConfigError as exc:
        return _report(exc)
    except BackupError as exc:
        print(f"{PROG} backup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{done.path}: {done.size} bytes, {done.alerts} alerts, integrity ok")
    return EXIT_OK


async def watch_command(
    url: str, token: str | None, *, raw: bool, channels: list[str] | None = None
) -> int:
    if not url.startswith(("http://", "https://", "ws://", "wss://")):
        print(
            f"{PROG} watch: URL must start with http://, https://, ws:// or wss://", file=sys.stderr
        )
        return EXIT_USAGE
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    from gateway.client import GatewayClient
    from gateway.watch import describe

    try:
        async with GatewayClient(url, token=token, channels=channels) as client:
            async for item in client:
                print(describe(item, raw=raw), flush=True)
    except asyncio.CancelledError:
        pass
    return EXIT_OK


def _with_overrides(config: Config, args: argparse.Namespace) -> Config:
    """The config with --host, --port, --data-dir, checked as the file's values are; and
    the data_dir made (for ``run``) so that one that cannot be is a one-line error."""
    server = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    changes: dict[str, object] = {"server": server}
    if getattr(args, "data_dir", None) is not None:
        changes["data_dir"] = args.data_dir
    config = with_overrides(config, changes)
    if args.command == "run":
        try:
            config.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problem = exc.strerror or str(exc)
            raise ConfigError([f"data_dir: cannot create {config.data_dir}: {problem}"]) from None
    return config


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
    require_ports: bool = False,
    reread: Callable[[], Config] | None = None,
) -> int:
    """Run the gateway until SIGINT/SIGTERM; on SIGHUP, apply ``reread()``. Exit code
    per the contract."""
    from gateway.api.server import GATEWAY, build_app

    try:
        app = build_app(config, simulate=simulate, require_ports=require_ports)
    except ConfigError as exc:
        return _report(exc)
    mode = "simulated devices" if simulate else f"{len(config.buses)} serial buses"
    banner = f"{config.reservoir_id} on {{url}} ({mode})"
    return await _serve(app, config, banner, gateway=app[GATEWAY], reread=reread)


async def serve_relay(config: Config) -> int:
    """Run a relay until SIGINT/SIGTERM."""
    from gateway.mqtt.relay import build_relay_app

    try:
        app = build_relay_app(config)
    except ConfigError as exc:
        return _report(exc)
    return await _serve(app, config, f"relay on {{url}} for {config.mqtt.url}")


async def _serve(
    app: web.Application,
    config: Config,
    banner: str,
    *,
    gateway: Gateway | None = None,
    reread: Callable[[], Config] | None = None,
) -> int:
    """Serve ``app`` until stopped; ``gateway`` None: a relay (no buses, no reload)."""
    with _stop_signals() as stop:
        return await _serve_until(app, config, banner, stop, gateway=gateway, reread=reread)


async def _serve_until(
    app: web.Application,
    config: Config,
    banner: str,
    stop: asyncio.Event,
    *,
    gateway: Gateway | None,
    reread: Callable[[], Config] | None,
) -> int:
    _raise_file_limit()
    systemd = sdnotify.Notifier.from_environ()
    runner = web.AppRunner(app, handle_signals=False)
    try:
        await runner.setup()
    except PortDisconnected as exc:
        print(f"{PROG}: cannot open serial port {exc.port}: {exc.reason}", file=sys.stderr)
        await runner.cleanup()
        return EXIT_PORT
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
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, manager.hangup)
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
