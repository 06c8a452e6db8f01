"""A simulated Atlas Scientific EZO circuit, answering the drivers' own EZO codec."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from drivers import ezo
from drivers.errors import ProtocolError
from simulators.devices import Device, ensure_signals
from simulators.ezo_cal import model_for, oxygen_saturation
from simulators.world import World

log = logging.getLogger(__name__)


EZO_MEASUREMENT = {
    "pH": "ph",
    "EC": "conductivity",
    "RTD": "temperature",
    "DO": "dissolved_oxygen",
    "ORP": "orp",
}
#: Circuits that take a water temperature (``T``, ``RT``) to compensate their readings.
COMPENSATED = ("pH", "EC", "DO")
#: Stands in a reply for the value line, measured when the reply goes out.
READING = "<reading>"


class EzoDevice(Device):
    """An Atlas Scientific EZO circuit in UART mode. Boots in continuous mode."""

    kind = "ezo"

    def __init__(
        self,
        name: str,
        circuit: str,
        world: World,
        *,
        continuous_interval: float = 1.0,
        firmware: str = "2.16",
        link: Path | None = None,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
        baudrate: int = 9600,
    ) -> None:
        super().__init__(
            name, world, link=link, time_scale=time_scale, clock=clock, baudrate=baudrate
        )
        if circuit not in EZO_MEASUREMENT:
            raise ValueError(f"unknown EZO circuit {circuit!r}")
        self.circuit = circuit
        self.measurement = EZO_MEASUREMENT[circuit]
        self.firmware = firmware
        self.continuous_interval = continuous_interval
        self.commands: list[str] = []  # every command received, for tests and diagnosis
        self._splitter = ezo.LineSplitter()
        self._continuous_task: asyncio.Task[None] | None = None
        self.compensation = 25.0
        self.salinity = 0.0  # DO: uS/cm of the water, as the gateway said (S,<n>)
        #: The probe and the calibration the circuit applies (Cal commands change it).
        self.model = model_for(circuit)
        ensure_signals(world, (self.measurement,))
        self._reset_settings()

    @property
    def measurements(self) -> tuple[str, ...]:
        return (self.measurement,)

    def _reset_settings(self) -> None:
        self.continuous = True
        self.ok_enabled = True
        self.asleep = False
        self.outputs = dict.fromkeys(ezo.EC_OUTPUTS, True)
        self.do_outputs = {"MG": True, "%": False}
        self.temperature_unit = "c"

    async def start(self) -> None:
        await super().start()
        self._continuous_task = asyncio.create_task(
            self._continuous(), name=f"simulators.{self.name}.continuous"
        )

    async def stop(self) -> None:
        if self._continuous_task is not None:
            self._continuous_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._continuous_task
        await super().stop()

    def reboot(self, code: str = "*RE") -> None:
        """Restart the circuit: settings back to boot defaults, announced with ``code``."""
        self._reset_settings()
        self.port.write(code.encode() + ezo.CR)

    def replugged(self) -> None:
        self._reset_settings()

    async def _continuous(self) -> None:
        while True:
            await asyncio.sleep(self.continuous_interval)
            if self.continuous and not self.asleep and self.fault is None:
                self.port.write(self._reading_line() + ezo.CR)

    def received(self, data: bytes) -> None:
        if self.fault == "timeout" or not self.hears():
            return
        try:
            lines = self._splitter.feed(data)
        except ProtocolError:
            return  # noise on the line: a circuit ignores it
        for line in lines:
            self.commands.append(line)
            if self.asleep:
                self.asleep = False
                self.port.write(b"*WA" + ezo.CR)
                continue
            delay, reply = self._respond(line)
            status = reply.pop() if reply and reply[-1].startswith("*") else None
            if status is not None and (self.ok_enabled or status not in ("*OK", "*ER")):
                reply.append(status)
            if reply:
                self.send_later(delay, functools.partial(self._render, reply))

    def _render(self, reply: list[str]) -> bytes:
        lines = (self._reading_line() if r == READING else r.encode() for r in reply)
        return b"".join(line + ezo.CR for line in lines)

    def _respond(self, line: str) -> tuple[float, list[str]]:
        """(processing time, reply lines) for one command."""
        cmd, _, arg = line.partition(",")
        cmd = cmd.upper()
        quick = ezo.COMMAND_TIME
        if cmd == "R" and not arg:
            return ezo.READ_TIME[self.circuit], [READING, "*OK"]
        if cmd == "RT" and self.circuit in COMPENSATED:
            if (t := _number(arg)) is None:
                return quick, ["*ER"]
            self.compensation = t
            return ezo.READ_TIME[self.circuit], [READING, "*OK"]
        if cmd == "T" and self.circuit in COMPENSATED:
            if arg == "?":
                return quick, [f"?T,{self.compensation:.2f}", "*OK"]
            if (t := _number(arg)) is None:
                return quick, ["*ER"]
            self.compensation = t
            return quick, ["*OK"]
        if cmd == "C":
            if arg == "?":
                return quick, [f"?C,{int(self.continuous)}", "*OK"]
            self.continuous = arg not in ("0", "")
            return quick, ["*OK"]
        if cmd == "*OK":
            if arg == "?":
                return quick, [f"?*OK,{int(self.ok_enabled)}", "*OK"]
            self.ok_enabled = arg == "1"
            return quick, ["*OK"]
        if cmd == "I" and not arg:
            return quick, [f"?I,{self.circuit},{self.firmware}", "*OK"]
        if cmd == "STATUS":
            return quick, ["?Status,P,5.038", "*OK"]
        if cmd == "CAL":
            if arg == "?":
                return quick, [f"?Cal,{self.model.points}", "*OK"]
            return ezo.CAL_TIME, ["*OK" if self.model.command(arg) else "*ER"]
        if cmd == "SLOPE" and arg == "?" and (slope := self.model.slope()):
            return quick, [slope, "*OK"]
        if cmd == "O" and self.circuit == "EC":
            return quick, self._output(arg)
        if cmd == "O" and self.circuit == "DO":
            return quick, self._do_output(arg)
        if cmd == "S" and self.circuit == "DO":
            return quick, self._salinity(arg)
        if cmd == "S" and self.circuit == "RTD":
            if arg == "?":
                return quick, [f"?S,{self.temperature_unit}", "*OK"]
            if arg.lower() not in ("c", "k", "f"):
                return quick, ["*ER"]
            self.temperature_unit = arg.lower()
            return quick, ["*OK"]
        if cmd == "L":
            return quick, ["*OK"]
        if cmd == "SLEEP":
            self.asleep = True
            return quick, ["*SL"]
        return quick, ["*ER"]

    def _output(self, arg: str) -> list[str]:
        if arg == "?":
            enabled = [name for name in ezo.EC_OUTPUTS if self.outputs[name]]
            return [",".join(["?", "O", *enabled]), "*OK"]
        param, _, state = arg.partition(",")
        if param.upper() not in self.outputs or state not in ("0", "1"):
            return ["*ER"]
        self.outputs[param.upper()] = state == "1"
        return ["*OK"]

    def _do_output(self, arg: str) -> list[str]:
        param, _, state = arg.partition(",")
        if param.upper() not in self.do_outputs or state not in ("0", "1"):
            return ["*ER"]
        self.do_outputs[param.upper()] = state == "1"
        return ["*OK"]

    def _salinity(self, arg: str) -> list[str]:
        if arg == "?":
            return [f"?S,{self.salinity:.1f},uS", "*OK"]
        value, _, unit = arg.partition(",")
        number = _number(value)
        if number is None or number < 0 or unit.lower() not in ("", "ppt"):
            return ["*ER"]
        self.salinity = number / 0.00064 if unit else number
        return ["*OK"]

    def _reading_line(self) -> bytes:
        now = self.clock()
        value = self.model.reading(self.world.value(self.measurement, now))
        if self.circuit == "pH":
            return f"{value:.3f}".encode()
        if self.circuit == "ORP":
            return f"{value:.1f}".encode()
        if self.circuit == "DO":
            return self._oxygen_line(value, now)
        if self.circuit == "RTD":
            if self.temperature_unit == "k":
                value += 273.15
            elif self.temperature_unit == "f":
                value = value * 9 / 5 + 32
            return f"{value:.3f}".encode()
        fields = {"EC": f"{value:.1f}", "TDS": f"{value * 0.54:.0f}"}
        fields["S"] = f"{value * 0.00049:.2f}"
        fields["SG"] = f"{1.0 + value * 0.0000008:.3f}"
        return ",".join(fields[name] for name in ezo.EC_OUTPUTS if self.outputs[name]).encode()

    def _oxygen_line(self, value: float, now: float) -> bytes:
        """The probe senses oxygen's partial pressure; the circuit turns it into mg/L with
        the temperature and salinity it was told: right only when they are the water's."""
        actual = oxygen_saturation(
            self.world.value("temperature", now), self.world.value("conductivity", now)
        )
        told = oxygen_saturation(self.compensation, self.salinity)
        mg = value * told / actual
        fields = {"MG": f"{mg:.2f}", "%": f"{100 * value / actual:.1f}"}
        return ",".join(v for k, v in fields.items() if self.do_outputs[k]).encode()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
