"""What the configuration's modules share: keys and limits, a problem at a key, its
wording, and :class:`ConfigError`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from drivers.errors import GatewayError

ENV_PREFIX = "GATEWAY_"
DEFAULT_NAME = "default.toml (embedded)"
#: Sensor keys that mean something only on a modbus-rtu bus.
MODBUS_KEYS = ("unit", "register", "register_type", "data_type", "word_order", "byte_order")
#: Sensor keys that mean something only on an ezo bus.
EZO_KEYS = ("circuit",)
#: ``circuit = ...`` of an EZO sensor: the circuit types ``i`` answers, in lower case.
Circuit = Literal["ph", "ec", "rtd", "do", "orp"]
#: Sensor keys that describe a register layout: not for coils and discrete inputs.
LAYOUT_KEYS = ("data_type", "word_order", "byte_order")
MODBUS_PROTOCOLS = ("modbus-rtu", "modbus-tcp")
MIN_SECRET_BYTES = 32  # RFC 7518: an HS256 key as long as the hash
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
BOUNDS = ("critical_low", "warning_low", "info_low", "info_high", "warning_high", "critical_high")
NAME = re.compile(r"[A-Za-z0-9_-]+")
RATES = f"must be one of the standard rates {', '.join(map(str, BAUDRATES))}"
TOPIC = re.compile(r"[^/+#]+(/[^/+#]+)*")


#: A problem found by a cross-field check: the key's path relative to the model, and a message.
Problem = tuple[tuple[str | int, ...], str]
CHECKS = "config_checks"  # the pydantic error type that carries a list of Problems


def raise_problems(problems: Sequence[Problem]) -> None:
    """Report cross-field problems from a model validator, each at its own key."""
    if problems:
        text = "; ".join(f"{format_loc(loc)}: {message}" for loc, message in problems)
        raise PydanticCustomError(CHECKS, text, {"problems": list(problems)})


def rule(test: Callable[[Any], object], message: str) -> AfterValidator:
    """A check on one value, reported in ``message``'s words at that value's key."""

    def check(value: Any) -> Any:
        if not test(value):
            raise PydanticCustomError("invalid", message)
        return value

    return AfterValidator(check)


def unknown(what: str, key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"{what}; did you mean {close[0]!r}?"
    return f"{what}; known: {', '.join(known)}" if known else what


def format_loc(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text or "(top level)"


class ConfigError(GatewayError):
    """The configuration cannot be used; ``problems`` holds one line per fault."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
