"""One poller per bus: reads its sensors every ``poll_interval`` and hands readings on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from drivers.ezo_sensor import EzoSensor
from drivers.modbus_rtu import RtuFraming
from drivers.modbus_tcp import DEFAULT_PORT as MODBUS_TCP_PORT
from drivers.modbus_tcp import TcpFraming
from drivers.model import Reading
from drivers.sensors import ModbusBus
from drivers.serial_line import SerialLine
from drivers.tcp_line import TcpLine
from gateway.config import BusConfig

log = logging.getLogger(__name__)

ReadingSink = Callable[[Reading], None]


def temperature_wait_for(buses: Sequence[BusConfig]) -> float:
    """How long compensated circuits wait at start for the first temperature: the time the
    slowest temperature bus needs for its first reading, or 0 where none reads one."""
    return max(
        (
            EzoSensor.RTD_READ_TIME + bus.timeout if bus.protocol == "ezo" else bus.timeout
            for bus in buses
            if any(sensor.measurement == "temperature" for sensor in bus.sensors)
        ),
        default=0.0,
    )


class BusPoller:
    """Owns one bus: its SerialLine, its driver, and the task that polls it."""

    def __init__(
        self,
        config: BusConfig,
        sinks: Sequence[ReadingSink],
        *,
        port: str | None = None,
        temperature: Callable[[], float | None] | None = None,
        conductivity: Callable[[], float | None] | None = None,
        temperature_wait: float = 0.0,
    ) -> None:
        """``temperature`` and ``conductivity`` give fresh values to compensate EZO
        readings with (pH, EC and DO by temperature; DO by salinity too).
        ``temperature_wait``: how long a compensated EZO circuit waits at start for the
        first temperature (give ``temperature_wait_for(config)`` where another bus reads
        one)."""
        self.config = config
        self.name = config.name
        self.sinks = list(sinks)
        self.line = _line(config, port or config.port)
        self.driver: ModbusBus | EzoSensor
        if config.protocol in ("modbus-rtu", "modbus-tcp"):
            points = [sensor.modbus_point() for sensor in config.sensors]
            framing = TcpFraming() if config.protocol == "modbus-tcp" else RtuFraming()
            self.driver = ModbusBus(
                self.line, points, framing=framing, poll_interval=config.poll_interval
            )
        else:
            [sensor] = config.sensors
            self.driver = EzoSensor(
                self.line,
                sensor.measurement,
                circuit=sensor.circuit,
                scale=sensor.scale,
                offset=sensor.offset,
                temperature=temperature,
                conductivity=conductivity,
                temperature_wait=temperature_wait,
            )
        self.polls = 0
        self.last_poll_seconds = 0.0
        #: time.monotonic() of the last finished poll (good or failed), or of construction:
        #: the watchdog's sign that this bus is not wedged (gateway/field/sdnotify.py).
        self.last_progress = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Open the port now (at start). Raises PortDisconnected naming it."""
        await self.line.open()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"poller.{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.line.close()

    async def poll_once(self) -> list[Reading]:
        started = time.monotonic()
        readings = await self.driver.read()
        self.last_poll_seconds = time.monotonic() - started
        self.polls += 1
        for reading in readings:
            for sink in self.sinks:
                sink(reading)
        return readings

    async def _run(self) -> None:
        """Poll on a fixed schedule; a slow poll delays the next, never piles up.

        An unplugged port cuts the wait short the moment it is back (the line watches
        for it), and the schedule starts again from that poll.
        """
        interval = self.config.poll_interval
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await self.poll_once()
            except Exception:  # a bug must not silence the bus: log it, keep polling
                log.exception("bus %s: poll failed", self.name)
            self.last_progress = time.monotonic()
            next_at += interval
            now = loop.time()
            if next_at < now:
                next_at = now  # fell behind: start again from here, skipping the missed polls
            if await self.line.idle(next_at - now):
                next_at = loop.time()

    def health(self) -> dict[str, object]:
        counters = dict(self.line.counters)
        return {
            "state": "connected" if self.line.connected else "down",
            "port": self.line.port,
            "protocol": self.config.protocol,
            "counters": counters,
            "last_poll_ms": round(self.last_poll_seconds * 1000, 1),
            "recent_frames": [f.as_dict() for f in list(self.line.frames)[-10:]],
        }


def _line(config: BusConfig, port: str) -> SerialLine:
    """The bus's one line: a serial port, or a TCP connection for ``tcp://`` ports."""
    if port.startswith("tcp://"):
        return TcpLine(
            port,
            default_port=MODBUS_TCP_PORT if config.protocol == "modbus-tcp" else None,
            name=config.name,
            timeout=config.timeout,
            retries=config.retries,
            request_gap=config.request_gap,
        )
    return SerialLine(
        port,
        name=config.name,
        baudrate=config.baudrate,
        timeout=config.timeout,
        retries=config.retries,
        request_gap=config.request_gap,
        echo=config.echo,
    )
