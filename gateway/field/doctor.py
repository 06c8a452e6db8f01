"""``sensor-gateway doctor``: what stands between this box and a working gateway.

One line per check, ``ok``, ``warn`` or ``fail``, each saying what to do.
Run it with the gateway stopped: the gateway holds its ports (an exclusive
flock), and doctor reports a held port as a failure, naming the holder.

Port permissions are judged from the mode bits against this user's uid and
groups, explicitly, not with access(2): root passes access(2) for any file, so
under root a port the service user could not open would look fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from drivers import ezo
from drivers.errors import DriverError
from drivers.ezo_sensor import EZO_TYPES
from drivers.model import EZO_CIRCUITS, Quality
from drivers.sensors import ModbusBus
from drivers.serial_line import SerialLine
from gateway.api.listen import addresses, where
from gateway.config import BusConfig, Config, ConfigError, load_config

State = Literal["ok", "warn", "fail"]
MiB = 1024 * 1024
WARN_FREE = 100 * MiB
FAIL_FREE = 10 * MiB
NETWORK_TIMEOUT = 3.0
SCAN_HINT = "run `sensor-gateway scan {port}` to see what answers, at which baud"


@dataclass(frozen=True, slots=True)
class Check:
    state: State
    what: str
    detail: str

    def __str__(self) -> str:
        return f"{self.state:<4} {self.what}: {self.detail}"


async def run_doctor(path: Path | None) -> list[Check]:
    """Every check, in order; the device checks only when the config is valid."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else "invalid"
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        name = path or "the embedded default"
        return [Check("fail", "config", f"{first}{more}; run `sensor-gateway check-config {name}`")]
    checks = [Check("ok", "config", f"{path or 'the embedded default'} is valid")]
    for bus in config.buses:
        checks += await check_bus(bus)
    checks.append(check_data_dir(config.data_dir))
    checks.append(check_clock())
    if config.mqtt.url:
        checks.append(await check_broker(config.mqtt.url))
    checks.append(check_listen(config))
    return checks


async def doctor_command(path: Path | None) -> int:
    """The ``doctor`` command: print the checks; 1 if any failed."""
    checks = await run_doctor(path)
    for check in checks:
        print(check, flush=True)
    return 1 if any(check.state == "fail" for check in checks) else 0


# Ports and devices ---------------------------------------------------------------


async def check_bus(bus: BusConfig) -> list[Check]:
    what = f"bus {bus.name}"
    if bus.port.startswith("sim://"):
        return [Check("warn", what, f"{bus.port} is simulated: run with --simulate, or set a port")]
    if not urlsplit(bus.port).scheme:
        problem = check_port_file(bus.port)
        if problem is not None:
            return [Check("fail", f"{what} {bus.port}", problem)]
    line = SerialLine(bus.port, name=bus.name, baudrate=bus.baudrate, timeout=bus.timeout)
    try:
        await line.open()
    except DriverError as exc:
        return [Check("fail", f"{what} {bus.port}", f"cannot open: {exc}")]
    try:
        checks = [Check("ok", f"{what} {bus.port}", "exists, readable and writable, not held")]
        if bus.protocol == "ezo":
            return checks + await check_ezo(line, bus)
        return checks + await check_modbus(line, bus)
    finally:
        await line.close()


def check_port_file(port: str) -> str | None:
    """What keeps this user from owning ``port`` (None: nothing): missing, mode, a holder."""
    try:
        info = os.stat(port)
    except FileNotFoundError:
        return "does not exist: plug the adapter in; `ls -l /dev/serial/by-id/` lists them"
    except OSError as exc:
        return f"cannot stat: {exc.strerror}"
    if not stat.S_ISCHR(info.st_mode):
        return "is not a character device (a serial port)"
    if not may_read_write(info, os.geteuid(), {os.getegid(), *os.getgroups()}):
        mode = stat.filemode(info.st_mode)
        return (
            f"{mode} owner {info.st_uid} group {info.st_gid}: this user cannot read and write it; "
            "add the user to its group (sudo adduser $USER dialout, log in again) or fix the "
            "mode with a udev rule (deploy/99-sensor-gateway.rules)"
        )
    holders = _holders(port)
    if _locked(port):
        who = f" (pid {', '.join(holders)})" if holders else ""
        return (
            f"held by another process{who}: stop it (the gateway: systemctl stop "
            "sensor-gateway; ModemManager: see docs/deployment.md)"
        )
    return None


def may_read_write(info: os.stat_result, uid: int, groups: set[int]) -> bool:
    """The mode bits' answer for this uid and groups, root included (no DAC override)."""
    if info.st_uid == uid:
        need = stat.S_IRUSR | stat.S_IWUSR
    elif info.st_gid in groups:
        need = stat.S_IRGRP | stat.S_IWGRP
    else:
        need = stat.S_IROTH | stat.S_IWOTH
    return info.st_mode & need == need


def _locked(port: str) -> bool:
    """True if another process holds the flock the gateway's SerialLine takes."""
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return False  # opening it again reports the reason
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False


def _holders(port: str) -> list[str]:
    """The pids (with their names) that have ``port`` open, as far as /proc shows."""
    target = os.path.realpath(port)
    found = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            if any(os.path.realpath(fd) == target for fd in fd_dir.iterdir()):
                comm = (fd_dir.parent / "comm").read_text().strip()
                found.append(f"{fd_dir.parent.name} {comm}")
    return found


async def check_ezo(line: SerialLine, bus: BusConfig) -> list[Check]:
    [sensor] = bus.sensors
    expected = EZO_TYPES[sensor.circuit] if sensor.circuit else EZO_CIRCUITS.get(sensor.measurement)
    what = f"bus {bus.name} EZO"
    try:
        kind, firmware = ezo.circuit_type(await _ezo(line, "i"))
    except DriverError as exc:
        hint = SCAN_HINT.format(port=line.port)
        return [Check("fail", what, f"no answer to `i` ({exc}); check TX/RX and UART mode; {hint}")]
    if expected is not None and kind.upper() != expected.upper():
        return [
            Check(
                "fail",
                what,
                f"an EZO {kind} circuit answers, but {sensor.measurement} needs {expected}: "
                "the probes' ports are swapped? fix the port or the measurement in the config",
            )
        ]
    checks = [Check("ok", what, f"{kind} circuit, firmware {firmware}")]
    try:
        status = (await _ezo(line, "Status")).query("Status").fields
        calibrated = (await _ezo(line, "Cal,?")).query("Cal").fields
    except DriverError as exc:
        return [*checks, Check("warn", what, f"Status or Cal,? failed: {exc}")]
    checks.append(Check("ok", f"{what} status", "restart code, supply V: " + ", ".join(status)))
    if not calibrated or calibrated[0] == "0":
        checks.append(Check("warn", f"{what} calibration", "not calibrated: calibrate the probe"))
    else:
        checks.append(Check("ok", f"{what} calibration", f"{calibrated[0]} point(s)"))
    return checks


async def _ezo(line: SerialLine, command: str) -> ezo.Reply:
    return await line.request(
        ezo.encode_command(command),
        lambda: ezo.Transaction(command),
        timeout=ezo.COMMAND_TIME + line.timeout,
    )


async def check_modbus(line: SerialLine, bus: BusConfig) -> list[Check]:
    points = [sensor.modbus_point() for sensor in bus.sensors]
    readings = await ModbusBus(line, points, poll_interval=bus.poll_interval).read()
    checks = []
    for point, reading in zip(points, readings, strict=True):
        what = f"bus {bus.name} unit {point.unit} {point.measurement}"
        if reading.good:
            checks.append(Check("ok", what, f"reads {reading.value}"))
        elif reading.quality is Quality.EXCEPTION:
            checks.append(
                Check(
                    "fail",
                    what,
                    f"{reading.detail}: the unit is there but refuses this read; check register "
                    "(0-based), register_type and data_type against its manual",
                )
            )
        else:
            hint = SCAN_HINT.format(port=line.port)
            checks.append(
                Check(
                    "fail",
                    what,
                    f"{reading.quality}: {reading.detail}; check the unit address, "
                    f"baudrate ({bus.baudrate}) and wiring; {hint}",
                )
            )
    return checks


# The box ---------------------------------------------------------------------


def check_data_dir(data_dir: Path) -> Check:
    what = f"data_dir {data_dir}"
    where = data_dir
    while not where.exists() and where != where.parent:
        where = where.parent  # the gateway creates data_dir: its nearest existing parent must do
    try:
        with tempfile.TemporaryFile(dir=where) as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return Check(
            "fail",
            what,
            f"{where} not writable ({exc.strerror or exc}): give the gateway's user a directory "
            "of its own (StateDirectory= in the unit) and free space",
        )
    free = shutil.disk_usage(where).free
    text = f"{free / MiB:.1f} MiB free" + ("" if where == data_dir else " (to be created)")
    if free < FAIL_FREE:
        return Check("fail", what, f"only {text}: free space or move data_dir to a larger disk")
    if free < WARN_FREE:
        return Check("warn", what, f"only {text}: free space soon (the database grows)")
    return Check("ok", what, f"writable, {text}")


def check_clock() -> Check:
    try:
        result = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        answer = result.stdout.strip() if result.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        answer = ""
    if answer == "yes" or Path("/run/systemd/timesync/synchronized").exists():
        return Check("ok", "clock", "synchronised (NTP)")
    if answer == "no":
        return Check(
            "warn",
            "clock",
            "not synchronised: timestamps may be off; enable NTP (timedatectl set-ntp true)",
        )
    return Check("warn", "clock", "cannot tell whether it is synchronised (no timedatectl answer)")


async def check_broker(url: str) -> Check:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    what = f"mqtt broker {host}:{port}"
    try:
        async with asyncio.timeout(NETWORK_TIMEOUT):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        return Check(
            "fail",
            what,
            f"unreachable ({reason}): check mqtt.url, the network and the broker; "
            "the gateway keeps messages in its outbox meanwhile",
        )
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Check("ok", what, "reachable (TCP)")


def check_listen(config: Config) -> Check:
    """Each address ``server.host`` names (as ``run`` binds them) is free on the port."""
    host, port = config.server.host, config.server.port
    names = addresses(host)
    implicit = "localhost" in ([host] if isinstance(host, str) else host)
    if port == 0:
        return Check("ok", f"listen {', '.join(names)}", "any free port")
    bound: list[str] = []
    for address in names:
        what = f"listen {where(address, port)}"
        try:
            for family, _, _, _, sockaddr in _addresses(address, port):
                with socket.socket(family, socket.SOCK_STREAM) as sock:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(sockaddr)
        except OSError as exc:
            if implicit and address == "::1" and exc.errno in _NO_IPV6:
                continue  # run leaves ::1 out too, saying so in one line
            if exc.errno == errno.EADDRINUSE:
                return Check(
                    "fail",
                    what,
                    f"port in use (is the gateway running? `ss -ltnp 'sport = :{port}'`); "
                    "stop it or set server.port",
                )
            return Check("fail", what, f"cannot bind: {exc.strerror or exc}; check server.host")
        bound.append(where(address, port))
    return Check("ok", f"listen {', '.join(bound)}", "free")


_NO_IPV6 = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


def _addresses(host: str, port: int) -> Iterator[tuple[int, int, int, str, tuple[str, int]]]:
    for family, kind, proto, name, address in socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        if family in (socket.AF_INET, socket.AF_INET6):
            yield family, kind, proto, name, (str(address[0]), int(address[1]))
