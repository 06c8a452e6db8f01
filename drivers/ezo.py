"""Atlas Scientific EZO codec (UART mode), sans-I/O.

Commands go out as ASCII lines ending in CR. Each reply is zero or more
lines (a reading such as ``9.560``, a query answer such as ``?I,pH,1.98``)
closed by a status line: ``*OK`` on success, ``*ER`` for an unknown command.
A circuit that resets or wakes says so (``*RS``, ``*RE``, ``*WA``) and has lost
its runtime settings. The device simulator uses the same line codec.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from drivers.errors import CircuitRebooted, EzoError, EzoUnknownCommand, ProtocolError

CR = b"\r"
MAX_LINE = 64
#: Status codes a circuit sends on a line of their own.
STATUS_CODES = frozenset({"*OK", "*ER", "*OV", "*UV", "*RS", "*RE", "*SL", "*WA", "*DONE"})
#: After these the circuit's settings (continuous mode, outputs) are gone.
RESTART_CODES = frozenset({"*RS", "*RE", "*WA", "*SL"})
SUPPLY_CODES = {"*OV": "supply over voltage", "*UV": "supply under voltage"}

#: Seconds a circuit takes to answer ``R`` (datasheets); other commands ~0.3 s.
READ_TIME = {"pH": 0.9, "EC": 0.6, "RTD": 0.6, "DO": 0.6, "ORP": 1.0}
COMMAND_TIME = 0.3
#: Seconds a circuit takes to take a calibration point.
CAL_TIME = 0.9
#: Calibration points each circuit takes: point -> (command, standard value or None).
#: ``{v}`` is the value of the standard the probe sits in. Every circuit also takes
#: ``clear`` (``Cal,clear``).
CAL_POINTS: dict[str, dict[str, tuple[str, float | None]]] = {
    "pH": {
        "mid": ("Cal,mid,{v}", 7.0),
        "low": ("Cal,low,{v}", 4.0),
        "high": ("Cal,high,{v}", 10.0),
    },
    "EC": {
        "dry": ("Cal,dry", None),
        "single": ("Cal,{v}", 1413.0),
        "low": ("Cal,low,{v}", 12880.0),
        "high": ("Cal,high,{v}", 80000.0),
    },
    "DO": {"atm": ("Cal", None), "zero": ("Cal,0", None)},
    "ORP": {"single": ("Cal,{v}", 225.0)},
    "RTD": {"single": ("Cal,{v}", 100.0)},
}
CLEAR = ("Cal,clear", None)
#: The RTD circuit's reading when no probe is attached: a quality, not a value.
RTD_NO_PROBE = -1023.0
#: EC circuit outputs, always reported in this order when enabled.
EC_OUTPUTS = ("EC", "TDS", "S", "SG")


def encode_command(command: str) -> bytes:
    """A command line as it goes on the wire."""
    if not command or len(command) > MAX_LINE or not command.isascii():
        raise ValueError(f"not an EZO command: {command!r}")
    if any(not 0x20 <= ord(c) < 0x7F for c in command):
        raise ValueError(f"EZO command with a control character: {command!r}")
    return command.encode("ascii") + CR


@dataclass(frozen=True, slots=True)
class Status:
    """``*OK``, ``*ER``, ``*RE`` and the like."""

    code: str


@dataclass(frozen=True, slots=True)
class QueryReply:
    """``?I,pH,1.98`` -> name ``I``, fields ``("pH", "1.98")``."""

    name: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Data:
    """A value line such as ``9.560`` or ``466.4,252,0.23,1.000``."""

    fields: tuple[str, ...]


Line = Status | QueryReply | Data


def parse_line(line: str) -> Line:
    """Classify one line (without its CR). Raises ProtocolError for garbage."""
    if not line:
        raise ProtocolError("empty line")
    if any(not 0x20 <= ord(c) < 0x7F for c in line):
        raise ProtocolError(f"line with non-printable bytes: {line!r}")
    if line.startswith("*"):
        code = line.split(",", 1)[0]
        if code not in STATUS_CODES:
            raise ProtocolError(f"unknown status line {line!r}")
        return Status(code)
    if line.startswith("?"):
        parts = tuple(line[1:].split(","))
        # The EC output query answers "?,O,EC,TDS": the name is the second part.
        if parts[0] == "" and len(parts) > 1:
            parts = parts[1:]
        return QueryReply(parts[0], parts[1:])
    return Data(tuple(line.split(",")))


@dataclass
class LineSplitter:
    """Bytes in, complete CR-terminated lines out. LF, where a host adds it, is ignored."""

    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data.replace(b"\n", b"")
        lines: list[str] = []
        while (end := self._buffer.find(CR)) >= 0:
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if len(raw) > MAX_LINE:
                raise ProtocolError(
                    f"{len(raw)}-byte line, longer than any reply: {raw[:16].hex(' ')}"
                )
            if raw:
                lines.append(_decode(raw))
        if len(self._buffer) > MAX_LINE:
            junk = bytes(self._buffer)
            self._buffer.clear()
            raise ProtocolError(f"{len(junk)} bytes without a line end: {junk[:16].hex(' ')}")
        return lines


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(f"non-ASCII line: {raw[:16].hex(' ')}") from None


@dataclass(frozen=True, slots=True)
class Reply:
    command: str
    lines: tuple[Data | QueryReply, ...]

    def data(self) -> Data:
        """The value line of a reading."""
        for line in self.lines:
            if isinstance(line, Data):
                return line
        raise EzoError(f"{self.command}: *OK without a value")

    def query(self, name: str) -> QueryReply:
        for line in self.lines:
            if isinstance(line, QueryReply) and line.name.lower() == name.lower():
                return line
        raise EzoError(f"{self.command}: no ?{name} line in the reply")


class Transaction:
    """Collects the reply to one command until its ``*OK`` or ``*ER``.

    ``feed`` returns None until the status line, then the :class:`Reply`.
    It raises EzoError on ``*ER`` or a supply warning, CircuitRebooted when the
    circuit restarts mid-reply, and ProtocolError on garbage.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self.wire = encode_command(command)
        self._splitter = LineSplitter()
        self._lines: list[Data | QueryReply] = []
        self._warnings: list[str] = []

    def feed(self, data: bytes) -> Reply | None:
        for text in self._splitter.feed(data):
            if (reply := self.feed_line(text)) is not None:
                return reply
        return None

    def feed_line(self, text: str) -> Reply | None:
        """One complete line (without its CR): the Reply once it is the status line."""
        line = parse_line(text)
        if not isinstance(line, Status):
            self._lines.append(line)
        elif line.code in ("*OK", "*DONE"):
            if self._warnings:
                raise EzoError(f"{self.command}: {', '.join(self._warnings)}")
            return Reply(self.command, tuple(self._lines))
        elif line.code == "*ER":
            raise EzoUnknownCommand(f"{self.command}: the circuit answered *ER (unknown command)")
        elif line.code in RESTART_CODES:
            raise CircuitRebooted(line.code)
        else:
            self._warnings.append(SUPPLY_CODES[line.code])
        return None


class Batch:
    """Several commands in one write; the circuit answers each in turn, each with its status.

    ``feed`` returns None until the last command's status line, then every
    :class:`Reply` in order. Errors are those of :class:`Transaction`, naming
    the command they belong to. Used at start-up: one round trip instead of one
    per setting, driven by the status lines, never by a sleep.
    """

    def __init__(self, commands: Sequence[str]) -> None:
        if not commands:
            raise ValueError("an empty EZO batch")
        self._pending = [Transaction(c) for c in commands]
        self.wire = b"".join(t.wire for t in self._pending)
        self._pending.reverse()
        self._splitter = LineSplitter()
        self._replies: list[Reply] = []

    def feed(self, data: bytes) -> tuple[Reply, ...] | None:
        for text in self._splitter.feed(data):
            if (reply := self._pending[-1].feed_line(text)) is not None:
                self._replies.append(reply)
                self._pending.pop()
                if not self._pending:
                    return tuple(self._replies)
        return None


def parse_number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ProtocolError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ProtocolError(f"{what}: {text!r} is not a finite number")
    return value


def reading_value(reply: Reply, circuit: str) -> float:
    """The measured value in a reading reply from a ``circuit`` (pH, EC, RTD, DO, ORP).

    EC replies list the enabled outputs in the order EC, TDS, S, SG; the gateway
    keeps EC enabled, so the first field is conductivity in uS/cm. DO replies list
    mg/L then % saturation; ORP is mV and may be negative.
    """
    fields = reply.data().fields
    value = parse_number(fields[0], f"{circuit} reading")
    if circuit == "RTD" and value == RTD_NO_PROBE:
        raise EzoError("RTD circuit reports no probe attached (-1023.000)")
    return value


def circuit_type(reply: Reply) -> tuple[str, str]:
    """``?I,pH,1.98`` -> ``("pH", "1.98")``."""
    fields = reply.query("I").fields
    if len(fields) < 2:
        raise ProtocolError(f"malformed device information: {fields!r}")
    return fields[0], fields[1]


def calibration_command(circuit: str, point: str, value: float | None) -> str:
    """The ``Cal`` command for one point of a circuit (``pH``, ``mid``, 7.0 -> ``Cal,mid,7.00``).

    ``value`` None takes the point's standard value. Raises ValueError naming the points
    the circuit takes when it takes no such point.
    """
    points = {**CAL_POINTS.get(circuit, {}), "clear": CLEAR}
    if point not in points:
        raise ValueError(
            f"an EZO {circuit} circuit takes no {point!r} point: one of {', '.join(points)}"
        )
    template, standard = points[point]
    if "{v}" not in template:
        return template
    number = standard if value is None else value
    if number is None or not math.isfinite(number):
        raise ValueError(f"point {point!r} needs a finite value")
    return template.format(v=f"{number:.2f}")


@dataclass(frozen=True, slots=True)
class Calibration:
    """What a circuit says of its calibration: ``?Cal,n`` and, on pH, ``?Slope,acid,base,mV``."""

    points: int
    slope: tuple[float, float, float] | None = None

    def as_dict(self) -> dict[str, object]:
        slope = None
        if self.slope is not None:
            acid, base, offset = self.slope
            slope = {"acid": acid, "base": base, "offset_mv": offset}
        return {"points": self.points, "slope": slope}


def calibration_points(reply: Reply) -> int:
    """``?Cal,2`` -> 2."""
    fields = reply.query("Cal").fields
    if not fields or not fields[0].isdigit():
        raise ProtocolError(f"malformed calibration state: {fields!r}")
    return int(fields[0])


def slope(reply: Reply) -> tuple[float, float, float]:
    """``?Slope,99.7,100.3,-0.89`` -> (99.7, 100.3, -0.89)."""
    fields = reply.query("Slope").fields
    if len(fields) < 3:
        raise ProtocolError(f"malformed slope: {fields!r}")
    acid, base, offset = (parse_number(f, "slope") for f in fields[:3])
    return acid, base, offset
