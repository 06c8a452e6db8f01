"""The ``sensor-gateway`` command line.

Exit codes (../shared/contract.md): 0 normal stop, 1 bad config or usage,
2 an address that cannot be listened on, or (``run --require-ports``) a serial port
that cannot be opened at start.

The arguments are in gateway/cli_args.py; ``run``, ``relay`` and ``simulate`` serve
until stopped through gateway/serve.py; the other commands are here, one function each.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from gateway.cli_args import EXIT_OK, EXIT_USAGE, MAX_TOKEN_DAYS, PROG, parse_args, report
from gateway.config import Config, ConfigError, dump_config, load_config, with_overrides
from gateway.field.journal import configure_logging
from gateway.field.scan import scan_command
from gateway.serve import Hangups, serve, serve_relay, simulate

# Each command imports what only it needs (the relay, the client, jwt, the simulators,
# the field tools) where it starts: `run` without --simulate loads none of them, which
# keeps start-up short.


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
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
    hangups = Hangups()
    if args.command in ("run", "relay"):
        hangups.hold()  # a reload asked for while it starts is applied once it listens
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return report(exc)
    if args.command in ("run", "relay"):
        try:
            config = with_command_line(config, args)
        except ConfigError as exc:
            return report(exc)
    if args.command == "run":

        def reread() -> Config:
            return with_command_line(load_config(args.config), args)

        return asyncio.run(
            serve(
                config,
                simulate=args.simulate,
                fast=args.fast,
                require_ports=args.require_ports,
                reread=reread,
                hangups=hangups,
            )
        )
    if args.command == "relay":
        return asyncio.run(serve_relay(config, hangups))
    link_dir = args.link_dir or config.data_dir / "serial" / "by-id"
    return asyncio.run(simulate(args.control_port, link_dir.absolute(), fast=args.fast))


def check_config(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return report(exc)
    print(dump_config(config))
    return EXIT_OK


def notify_test(path: Path | None) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return report(exc)
    from gateway.notify.messages import notify_site
    from gateway.notify.sender import send_test
    from gateway.notify.targets import from_config

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
        return report(exc)
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
        return report(exc)
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


def with_command_line(config: Config, args: argparse.Namespace) -> Config:
    """The config with ``run``'s or ``relay``'s --host, --port, --data-dir, checked as the
    file's values are (ConfigError); and the data_dir made (for ``run``) so that one that
    cannot be is a one-line error."""
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
