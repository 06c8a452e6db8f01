"""An Atlas Scientific EZO circuit on its own UART: readings, and its calibration.

The circuit type comes from the configuration (``circuit = "do"``) or, when left
out, from its ``i`` reply; either way ``i`` is asked at start, and a circuit of
another type than configured gives error readings naming the port and both types.
pH, EC and DO readings are compensated with a fresh temperature; DO also with the
salinity of the EC reading (``S,<uS>``). ORP is mV, uncompensated.

Start-up is one write: ``*OK,1``, ``C,0``, ``i`` and the circuit's settings, driven
by the status lines that answer them (no fixed sleeps); the first reading rides in
the same write when no compensated one is to follow. At start a compensated circuit
may wait, at most ``temperature_wait`` s, for the first temperature, so that its
first reading is already compensated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from drivers import ezo
from drivers.errors import CircuitRebooted, DriverError, EzoError, EzoUnknownCommand, SettingError
from drivers.model import EZO_CIRCUITS, Quality, Reading, check_measurement, scaled
from drivers.serial_line import SerialLine

log = logging.getLogger(__name__)

#: ``circuit = ...`` in the configuration -> the type the circuit's ``i`` answers.
EZO_TYPES = {"ph": "pH", "ec": "EC", "rtd": "RTD", "do": "DO", "orp": "ORP"}
CIRCUIT_UNITS = {"pH": "pH", "EC": "µS/cm", "RTD": "°C", "DO": "mg/L", "ORP": "mV"}
#: Circuits whose reading depends on the water's temperature.
TEMPERATURE_COMPENSATED = frozenset({"pH", "EC", "DO"})
#: Settings each circuit gets at start besides ``*OK,1`` and ``C,0``: EC on, RTD in
#: Celsius, DO in mg/L.
SETUP = {"EC": ("O,EC,1",), "RTD": ("S,c",), "DO": ("O,mg,1",)}
#: How often a compensated circuit looks for the first temperature at start (s).
TEMPERATURE_POLL = 0.02
DEFAULT_READ_TIME = 1.0  # before ``i`` has said which circuit it is

Source = Callable[[], float | None]


class EzoSensor:
    """One EZO circuit (pH, EC, RTD, DO or ORP) on its own UART.

    Before the first reading, and again whenever the port was reopened or the
    circuit announced a restart, it turns continuous mode off, checks with ``i``
    that the circuit on the port is the one configured and enables the outputs it
    needs. After a restart or a reopened port the first reading is thrown away.
    Readings and calibration commands take turns (:meth:`calibrate` runs between
    two polls).
    """

    #: What a caller that knows a temperature is coming may give as ``temperature_wait``:
    #: the RTD's reading time, plus its bus's timeout.
    RTD_READ_TIME = ezo.READ_TIME["RTD"]

    def __init__(
        self,
        line: SerialLine,
        measurement: str,
        *,
        circuit: str | None = None,
        scale: float = 1.0,
        offset: float = 0.0,
        temperature: Source | None = None,
        conductivity: Source | None = None,
        read_time: float | None = None,
        command_time: float = ezo.COMMAND_TIME,
        temperature_wait: float = 0.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        check_measurement(measurement)
        if circuit is not None and circuit not in EZO_TYPES:
            raise SettingError(f"circuit {circuit!r} is not one of {', '.join(EZO_TYPES)}")
        self.line = line
        self.measurement = measurement
        #: The type configured (or implied by a seed measurement); None: whatever ``i`` says.
        self.expected = EZO_TYPES[circuit] if circuit else EZO_CIRCUITS.get(measurement)
        self.circuit: str | None = self.expected  # as ``i`` reported, once it has
        self.scale, self.offset = scale, offset
        self.temperature = temperature if self.circuit != "RTD" else None
        self.conductivity = conductivity
        self._read_time = read_time
        self.command_time = command_time
        self.firmware: str | None = None
        self._wall = wall_clock
        self._turn = asyncio.Lock()  # a reading or a calibration: one at a time
        self._ready_generation = 0
        self._restarted: str | None = None
        self._rt_supported = True
        self._rt_answered = False  # an RT reading has come back from this circuit
        self._salinity_sent: float | None = None
        #: At start, how long a compensated circuit waits for the first temperature (0: not
        #: at all). Worth it only where some bus reads temperature: its owner knows that.
        self.temperature_wait = temperature_wait
        self._compensated = False
        line.on_stale = self._unsolicited

    @property
    def read_time(self) -> float:
        if self._read_time is not None:
            return self._read_time
        return ezo.READ_TIME.get(self.circuit or "", DEFAULT_READ_TIME)

    async def read(self) -> list[Reading]:
        async with self._turn:
            try:
                value = await self._ready()
                if value is None:
                    value = await self._read_value()
                if self._restarted:  # announced while this reading was taken: not trusted
                    raise CircuitRebooted(self._restarted)
            except CircuitRebooted as exc:
                log.warning("%s: %s; re-initialising", self.line.name, exc)
                self._restarted = exc.status
                return [self._failed(Quality.DEVICE_ERROR, str(exc))]
            except DriverError as exc:
                return [self._failed(Quality.of(exc), str(exc))]
        return [Reading(self.measurement, value, Quality.GOOD, self._wall(), self.line.name)]

    async def calibrate(self, command: str) -> ezo.Calibration:
        """Run one ``Cal`` command between two polls; the circuit's calibration after it.

        Raises EzoUnknownCommand when the circuit refuses it (``*ER``), DriverError when
        it does not answer.
        """
        async with self._turn:
            await self._ready()
            await self.command(command, ezo.CAL_TIME)
            return await self._calibration()

    async def calibration(self) -> ezo.Calibration:
        """``Cal,?`` (and ``Slope,?`` on pH), between two polls."""
        async with self._turn:
            await self._ready()
            return await self._calibration()

    async def command(self, text: str, wait: float | None = None) -> ezo.Reply:
        """Send one command and return its reply (setters, queries). The line serialises
        single commands; a sequence that must not be split goes through the methods above."""
        timeout = (self.command_time if wait is None else wait) + self.line.timeout
        return await self.line.request(
            ezo.encode_command(text), lambda: ezo.Transaction(text), timeout=timeout
        )

    def _unsolicited(self, data: bytes) -> None:
        for code in ezo.RESTART_CODES:
            if code.encode() + ezo.CR in data:
                self._restarted = code

    async def _ready(self) -> float | None:
        """Open and (re)initialise as needed; the first value when start-up gave one."""
        await self.line.ensure_open()
        if self._restarted or self._ready_generation != self.line.generation:
            return await self._initialise()
        return None

    async def _calibration(self) -> ezo.Calibration:
        points = ezo.calibration_points(await self.command("Cal,?"))
        slope = ezo.slope(await self.command("Slope,?")) if self.circuit == "pH" else None
        return ezo.Calibration(points, slope)

    async def _initialise(self) -> float | None:
        """Settings and the identity check in one write; the first value when it can be had.

        The reading rides in the same write when the circuit type is known and no
        compensated one is to follow (an RTD or ORP, or no temperature to be had). After
        an announced restart or a reopened port that reading is thrown away instead, and
        the one kept follows it in the same write where it can (:meth:`_second_read`).
        """
        discard = self._restarted is not None or self.line.generation > 1
        self._restarted = None
        self._salinity_sent = None
        known = self.expected
        commands = ["*OK,1", "C,0", "i", *(SETUP.get(known, ()) if known else ())]
        reads = known is not None and (discard or not self._compensates())
        kept = self._second_read() if reads and discard else None
        reading = ["R", *([kept] if kept else [])] if reads else []
        wait = self.command_time * len(commands) + self.read_time * len(reading)
        batch = [*commands, *reading]
        try:
            replies = await self.line.request(
                b"".join(ezo.encode_command(c) for c in batch),
                lambda: ezo.Batch(batch),
                timeout=wait + self.line.timeout,
            )
        except EzoError:
            self._rt_answered = False  # not known any more: RT alone next time
            # A setting refused: most likely another circuit than configured. Say that.
            if known is not None:
                self._check_type(ezo.circuit_type(await self.command("i"))[0], known)
            raise
        kind, self.firmware = ezo.circuit_type(replies[2])
        if known is not None:
            self._check_type(kind, known)
        self.circuit = next((t for t in CIRCUIT_UNITS if t.upper() == kind.upper()), kind)
        if known is None:  # its settings could only be chosen once ``i`` had answered
            for command in SETUP.get(self.circuit, ()):
                await self.command(command)
        self._ready_generation = self.line.generation
        log.info("%s: EZO %s %s ready", self.line.name, kind, self.firmware)
        if not reads or (discard and not kept):
            return None
        return scaled(ezo.reading_value(replies[-1], self.circuit), self.scale, self.offset)

    def _second_read(self) -> str | None:
        """After a restart, the read that follows the thrown-away ``R`` in the start-up
        write, saving a round trip: ``R`` again where nothing is compensated, ``RT,<t>``
        where this circuit has answered RT before and a temperature is at hand. None
        (read on its own after start-up) for DO, whose salinity goes first."""
        if self.circuit == "DO":
            return None
        if self.temperature is None or self.circuit not in TEMPERATURE_COMPENSATED:
            return "R"
        temperature = self.temperature()
        if temperature is None or not self._rt_answered:
            return None
        return f"RT,{temperature:.2f}"

    def _check_type(self, kind: str, known: str) -> None:
        if kind.upper() != known.upper():
            raise SettingError(
                f"{self.line.port} has an EZO {kind} circuit, but {self.measurement} "
                f"is configured for an EZO {known} circuit"
            )

    def _compensates(self) -> bool:
        """Whether a compensated reading is to follow start-up (then none rides in it)."""
        if self.circuit not in TEMPERATURE_COMPENSATED:
            return False
        if self.circuit == "DO" and self.conductivity is not None:
            return True  # the salinity goes first
        return self.temperature is not None and (
            self.temperature_wait > 0 or self.temperature() is not None
        )

    async def _temperature(self) -> float | None:
        """A fresh temperature; at start, waits (bounded) for the first one to be read."""
        assert self.temperature is not None
        loop = asyncio.get_running_loop()
        give_up = loop.time() + (0.0 if self._compensated else self.temperature_wait)
        # The temperature is a plain getter (the service's latest readings): nothing to await.
        while (temperature := self.temperature()) is None and loop.time() < give_up:  # noqa: ASYNC110
            await asyncio.sleep(TEMPERATURE_POLL)
        self._compensated = True
        return temperature

    async def _read_value(self) -> float:
        compensated = self.circuit in TEMPERATURE_COMPENSATED
        temperature = await self._temperature() if self.temperature and compensated else None
        if self.circuit == "DO":
            await self._send_salinity()
        if temperature is None:
            reply = await self.command("R", self.read_time)
        elif self._rt_supported:
            try:
                reply = await self.command(f"RT,{temperature:.2f}", self.read_time)
                self._rt_answered = True
            except EzoUnknownCommand:
                self._rt_supported = False  # older firmware: set T, then read
                return await self._read_value()
        else:
            await self.command(f"T,{temperature:.2f}")
            reply = await self.command("R", self.read_time)
        value = ezo.reading_value(reply, self.circuit or "EZO")
        return scaled(value, self.scale, self.offset)

    async def _send_salinity(self) -> None:
        """DO: the salinity of the water as the EC probe reads it (uS/cm), when it changed."""
        conductivity = self.conductivity() if self.conductivity else None
        if conductivity is None or conductivity == self._salinity_sent:
            return
        await self.command(f"S,{conductivity:.1f}")
        self._salinity_sent = conductivity

    def _failed(self, quality: Quality, detail: str) -> Reading:
        return Reading(self.measurement, None, quality, self._wall(), self.line.name, detail)
