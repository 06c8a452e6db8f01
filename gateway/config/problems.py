"""pydantic's errors as ``path.to.key: message`` lines, naming the variable an
environment value came from."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any, get_args, get_origin

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_core import ErrorDetails
from pydantic_settings import SettingsError

from gateway.config.base import CHECKS, ENV_PREFIX, Problem, format_loc, unknown
from gateway.config.buses import SensorConfig
from gateway.config.sections import NotifyTarget

# Turning pydantic's errors into `path.to.key: message` --------------------------


def error_lines(
    exc: ValidationError, environ: Mapping[str, str], root: type[BaseModel]
) -> list[str]:
    """One ``path.to.key: message`` line per fault; ``root`` is the model validated."""
    problems: list[str] = []
    for error in exc.errors():
        loc, owner = _resolve(error["loc"], root)
        if error["type"] == CHECKS:
            found: list[Problem] = error.get("ctx", {})["problems"]
            found = [((*loc, *sub), message) for sub, message in found]
        else:
            found = [(loc, _message(error, loc, owner))]
        for where, message in found:
            line = f"{format_loc(where)}: {message}{_env_hint(where, environ)}"
            if line not in problems:
                problems.append(line)
    return problems


def _resolve(
    raw: tuple[str | int, ...], root: type[BaseModel]
) -> tuple[tuple[str | int, ...], type[BaseModel] | None]:
    """Drop pydantic's internal loc parts; return the path and the model holding its last key."""
    loc: list[str | int] = []
    node: Any = root
    owner: type[BaseModel] | None = None
    for part in raw:
        if part == "[key]":  # a dict key that failed: the path ends at the key
            break
        if isinstance(node, type) and issubclass(node, BaseModel):
            if isinstance(part, str):
                loc.append(part)
                owner = node
                field = node.model_fields.get(part)
                node = field.annotation if field else None
        elif get_origin(node) is list and isinstance(part, int):
            loc.append(part)
            node, owner = get_args(node)[0], None
        elif get_origin(node) is dict and isinstance(part, str):
            loc.append(part)
            node, owner = get_args(node)[1], None
    return tuple(loc), owner


_PLAIN = {
    "missing": "required key is missing",
    "string_type": "must be text in quotes",
    "finite_number": "must be a finite number",
    "list_type": "must be a list",
    "path_type": "must be a path in quotes",
    **dict.fromkeys(("string_too_short", "too_short"), "must not be empty"),
    **dict.fromkeys(("int_type", "int_parsing", "int_from_float"), "must be a whole number"),
    **dict.fromkeys(("float_type", "float_parsing"), "must be a number"),
    **dict.fromkeys(("bool_type", "bool_parsing"), "must be true or false"),
    **dict.fromkeys(("model_type", "dict_type"), "must be a table"),
}


def _message(error: ErrorDetails, loc: tuple[str | int, ...], owner: type[BaseModel] | None) -> str:
    kind, key = error["type"], loc[-1] if loc else ""
    if kind == "extra_forbidden":
        private = str(key).startswith("_")  # a pydantic-settings option (_env_file), not a typo
        return unknown(
            "unknown key", str(key), list(owner.model_fields) if owner and not private else []
        )
    if "[key]" in error["loc"]:
        return f"not a measurement name: {error['msg']}, got {key!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal", "less_than"):
        message = _range(error, owner, str(key))
    elif kind in _PLAIN:
        message = _PLAIN[kind]
    else:
        message = error["msg"].removeprefix("Value error, ")
        message = re.sub(r"^Input should be\b", "must be", message)
    secret = owner is NotifyTarget and key == "url"  # apprise URLs carry passwords, tokens
    if kind != "missing" and not secret and not isinstance(error["input"], dict | list):
        message += f", got {error['input']!r}"
    if owner is SensorConfig and key == "unit":
        message += " (0 is broadcast and never answers reads)"
    return message


_WORDS = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}


def _range(error: ErrorDetails, owner: type[BaseModel] | None, key: str) -> str:
    field = owner.model_fields.get(key) if owner else None
    meta = field.metadata if field else []
    bounds = {k: v for m in meta for k in ("ge", "le") if (v := getattr(m, k, None)) is not None}
    if "ge" in bounds and "le" in bounds:
        return f"must be between {bounds['ge']} and {bounds['le']}"
    ctx = error.get("ctx", {})
    op = next(k for k in _WORDS if k in ctx)
    return f"must be {_WORDS[op]} {ctx[op]:g}"


def _env_hint(loc: tuple[str | int, ...], environ: Mapping[str, str]) -> str:
    """Name the variables a value came from, when the environment set it."""
    keys = [str(p) for p in itertools.takewhile(lambda p: isinstance(p, str), loc)]
    for n in range(len(keys), 0, -1):
        name = (ENV_PREFIX + "__".join(keys[:n])).upper()
        found = [v for v in environ if v.upper() == name]
        if n == len(keys):  # variables below the key set it too
            found += [v for v in environ if v.upper().startswith(name + "__")]
        if found:
            return f" (from {', '.join(sorted(found))})"
    return ""


def settings_problem(exc: SettingsError, environ: Mapping[str, str]) -> str:
    found = re.search(r'field "(\w+)"', str(exc))
    key = found[1] if found else "environment"
    cause = f" ({exc.__cause__})" if exc.__cause__ else ""
    hint = _env_hint((key,), environ)
    return f"{key}: lists and tables in the environment must be JSON{cause}{hint}"
