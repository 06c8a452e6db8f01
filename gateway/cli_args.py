"""The ``sensor-gateway`` command line's arguments, exit codes and usage errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from gateway.config import ConfigError
from gateway.field.scan import parse_bauds, parse_units

EXIT_OK, EXIT_USAGE, EXIT_PORT = 0, 1, 2
PROG = "sensor-gateway"
#: The longest a minted token may live: a token that never expires is refused.
MAX_TOKEN_DAYS = 3650


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
    listening = _Parser(add_help=False)  # run and relay serve the same way
    listening.add_argument(
        "--host",
        action="append",
        metavar="H",
        help="address to listen on; repeat for more (default from config: localhost, "
        "which is 127.0.0.1 and ::1)",
    )
    listening.add_argument(
        "--port", type=int, metavar="P", help="port to listen on; 0 picks a free one"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        parents=[config_file, listening, common],
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
        "--fast",
        action="store_true",
        help="with --simulate: the devices answer at once instead of with the circuits' "
        "real processing times (bench scripts, tests)",
    )
    run.add_argument("--data-dir", type=Path, metavar="D", help="where SQLite and links go")
    run.add_argument(
        "--require-ports",
        action="store_true",
        help="exit 2 when a serial port cannot be opened at start (default: log it, run "
        "that bus as down and keep trying, poll the others)",
    )

    commands.add_parser(
        "relay",
        parents=[config_file, listening, common],
        help="serve the API for every reservoir heard on the MQTT broker",
        description="No serial buses: subscribe to the broker in [mqtt] and serve the same "
        "WebSocket and REST API for every reservoir its gateways publish "
        "(/ws/sensors?reservoir=ID, channels sensors:<id> and alerts:<id> on /ws).",
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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, or a usage error: one line naming what is wrong, exit 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run" and args.fast and not args.simulate:
        parser.error("run: --fast applies to the simulated devices: add --simulate")
    return args


def report(error: ConfigError) -> int:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    return EXIT_USAGE
