"""The processes of a fan-out run: one server under test and two load clients.

Each is a child started with ``python -m``; each is stopped (SIGTERM, then
SIGKILL) when its ``async with`` block ends, whatever happened inside, and each
asks the kernel to kill it should this process die first
(:func:`bench.procstat.die_with_parent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from bench import procstat

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
PIPE_LIMIT = 1 << 30

#: The gateway's config for the benchmark: its four probes read once at start from the
#: simulators (so a sensor_update carries four values, as in the field) and never again
#: (no serial polling in the CPU figures); no heartbeats or pings within a run.
GATEWAY_CONFIG = """\
reservoir_id = "EMBALSE_01"
data_dir = "{data_dir}"

[server]
host = "127.0.0.1"
port = 0
sensor_interval = {interval}
heartbeat_interval = 3600.0
compression = {compression}
{extra}
{buses}
"""
_BUS = """
[[buses]]
name = "{name}"
port = "sim://{device}"
protocol = "{protocol}"
poll_interval = 3600.0
  [[buses.sensors]]
  measurement = "{measurement}"
[thresholds.{measurement}]
stale_after = 86400.0
"""
_PROBES = (
    ("ph-probe", "ezo-ph", "ezo", "ph"),
    ("ec-probe", "ezo-ec", "ezo", "conductivity"),
    ("temperature-probe", "ezo-rtd", "ezo", "temperature"),
    ("rs485-1", "modbus", "modbus-rtu", "water_level"),
)


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    label: str
    module: str


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(
            "floor", "floor: pre-encoded frame, raw transport writes", "bench.baselines.floor"
        ),
        ServerSpec("gateway", "gateway: sensor-gateway hub (aiohttp)", "bench.ws_gateway"),
        ServerSpec("seed", "seed: FastAPI + uvicorn ConnectionManager", "bench.baselines.seed"),
        ServerSpec("naive", "naive: aiohttp, await send_str per client", "bench.baselines.naive"),
    )
}


def gateway_config(data_dir: Path, *, interval: float, compression: bool, extra: str = "") -> str:
    buses = "".join(
        _BUS.format(name=n, device=d, protocol=p, measurement=m) for n, d, p, m in _PROBES
    )
    return GATEWAY_CONFIG.format(
        data_dir=data_dir,
        interval=interval,
        compression="true" if compression else "false",
        extra=extra,
        buses=buses,
    )


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(frozen=True, slots=True)
class Broadcast:
    seq: int
    clients: int
    seconds: float
    at: float  # when this process read the line


@dataclass
class ServerProcess:
    """A server under test; ``async with`` starts it and stops it."""

    spec: ServerSpec
    workdir: Path
    interval: float = 0.5
    compression: bool = False
    extra: tuple[str, ...] = ()  # more command-line arguments, for experiments
    port: int = 0
    broadcasts: list[Broadcast] = field(default_factory=list)
    _proc: asyncio.subprocess.Process | None = None
    _reader: asyncio.Task[None] | None = None
    _news: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def cpu(self) -> float:
        return procstat.cpu_seconds(self.pid)

    def rss(self) -> int:
        return procstat.rss_bytes(self.pid)

    async def __aenter__(self) -> ServerProcess:
        args = ["--interval", str(self.interval)]
        if self.spec.name == "gateway":
            config = self.workdir / "gateway.toml"
            config.write_text(
                gateway_config(self.workdir, interval=self.interval, compression=self.compression)
            )
            args = ["-c", str(config)]
        elif self.compression:
            args.append("--compression")
        log = (self.workdir / f"{self.spec.name}.log").open("ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.spec.module, *args, *self.extra,
                stdout=asyncio.subprocess.PIPE, stderr=log, stdin=asyncio.subprocess.DEVNULL,
                cwd=self.workdir, env=child_env(), limit=PIPE_LIMIT,
            )  # fmt: skip
        finally:
            log.close()
        try:
            self.port = await asyncio.wait_for(self._ready(), START_TIMEOUT)
        except BaseException:
            await self.stop()
            raise
        self._reader = asyncio.create_task(self._read(), name=f"bench.{self.spec.name}.stdout")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _ready(self) -> int:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            if line.startswith(b"READY "):
                return int(line.split()[1])
        raise RuntimeError(f"{self.spec.name} exited before listening: {self.log_tail()}")

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            parts = line.split()
            if len(parts) == 4 and parts[0] == b"B":
                seq, clients, seconds = int(parts[1]), int(parts[2]), float(parts[3])
                self.broadcasts.append(Broadcast(seq, clients, seconds, time.time()))
                self._news.set()

    async def next_broadcast(self, timeout: float) -> Broadcast | None:
        """The next broadcast to end from now on, or None if none ends within ``timeout``."""
        seen = len(self.broadcasts)
        deadline = time.monotonic() + timeout
        while len(self.broadcasts) == seen:
            self._news.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), left)
        return self.broadcasts[seen]

    @property
    def pausable(self) -> bool:
        return self.spec.name != "gateway"

    def toggle_pause(self) -> None:
        """Pause or resume a baseline's broadcasts (SIGUSR1); the gateway cannot pause."""
        if not self.pausable:
            raise RuntimeError("the gateway's ticker cannot be paused")
        assert self._proc is not None
        self._proc.send_signal(signal.SIGUSR1)

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / f"{self.spec.name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            self._proc = proc  # pid stays readable while it stops
            await _terminate(proc)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


class LoadClients:
    """Load-client processes (:mod:`bench.loadclient`); ``async with`` starts and stops them."""

    def __init__(self, count: int = 2) -> None:
        self.count = count
        self._procs: list[asyncio.subprocess.Process] = []
        self._lock = asyncio.Lock()  # one command at a time on the pipes
        self.next_id = 0

    async def __aenter__(self) -> LoadClients:
        try:
            for _ in range(self.count):
                self._procs.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bench.loadclient",
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        cwd=ROOT,
                        env=child_env(),
                        limit=PIPE_LIMIT,
                    )
                )
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def cpu(self) -> float:
        return sum(procstat.cpu_seconds(p.pid) for p in self._procs)

    async def call(
        self,
        cmd: str,
        per_process: Callable[[int], dict[str, Any]] | None = None,
        progress: Callable[[list[dict[str, Any]]], None] | None = None,
        **common: Any,
    ) -> list[dict[str, Any]]:
        """Send ``cmd`` to every client process; their final replies, in process order."""
        async with self._lock:
            return await self._call(cmd, per_process, progress, common)

    async def _call(
        self,
        cmd: str,
        per_process: Callable[[int], dict[str, Any]] | None,
        progress: Callable[[list[dict[str, Any]]], None] | None,
        common: dict[str, Any],
    ) -> list[dict[str, Any]]:
        for index, proc in enumerate(self._procs):
            assert proc.stdin is not None
            args = {**common, **(per_process(index) if per_process else {})}
            proc.stdin.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            await proc.stdin.drain()
        latest: list[dict[str, Any]] = [{} for _ in self._procs]
        finals: list[dict[str, Any] | None] = [None for _ in self._procs]

        async def collect(index: int, proc: asyncio.subprocess.Process) -> None:
            assert proc.stdout is not None
            while finals[index] is None:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"load client {index} exited during {cmd!r}")
                message = json.loads(line)
                if message.pop("event") == "done":
                    finals[index] = message
                else:
                    latest[index] = message
                    if progress is not None:
                        progress(latest)

        await asyncio.gather(
            *(collect(i, p) for i, p in enumerate(self._procs)), return_exceptions=False
        )
        return [f for f in finals if f is not None]

    async def connect(
        self,
        port: int,
        count: int,
        *,
        progress: Callable[[int], None] | None = None,
        **options: Any,
    ) -> list[dict[str, Any]]:
        """Open ``count`` more connections, split evenly over the processes."""
        shares = [count // self.count + (i < count % self.count) for i in range(self.count)]
        firsts = [self.next_id + sum(shares[:i]) for i in range(self.count)]
        self.next_id += count

        def show(latest: list[dict[str, Any]]) -> None:
            if progress is not None:
                progress(sum(m.get("open", 0) for m in latest))

        return await self.call(
            "connect",
            per_process=lambda i: {"count": shares[i], "first_id": firsts[i]},
            progress=show,
            host="127.0.0.1",
            port=port,
            path="/ws/sensors",
            **options,
        )

    async def stop(self) -> None:
        procs, self._procs = self._procs, []
        for proc in procs:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()  # the client exits at end of input
        await asyncio.gather(*(_terminate(p) for p in procs), return_exceptions=True)


@contextlib.asynccontextmanager
async def sampling(
    read: Callable[[], float], every: float = 0.1
) -> AsyncIterator[list[tuple[float, float]]]:
    """Samples ``(time, read())`` every ``every`` seconds while the block runs."""
    samples: list[tuple[float, float]] = []

    async def sample() -> None:
        while True:
            with contextlib.suppress(OSError, RuntimeError):
                samples.append((time.time(), read()))
            await asyncio.sleep(every)

    task = asyncio.create_task(sample(), name="bench.sampler")
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
