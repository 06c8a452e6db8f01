"""Benchmarks, run with ``python -m bench`` (``make bench``); each prints a markdown table.

Every figure is compared with a baseline measured in the same run (a ratio),
never with a fixed number from another machine. Shared here: the summary of a
sample, the table printer, and the line naming the machine a run was made on.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Report:
    """What a benchmark returns besides its text: figures for results.json, plots written."""

    text: str
    data: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Summary:
    """Order statistics of one row's samples, in microseconds."""

    n: int
    median: float
    p90: float
    p99: float

    @classmethod
    def of_ns(cls, samples_ns: Sequence[int]) -> Summary:
        ordered = sorted(samples_ns)
        if not ordered:
            raise ValueError("no samples to summarise")
        return cls(
            n=len(ordered),
            median=statistics.median(ordered) / 1000,
            p90=_nearest_rank(ordered, 0.90) / 1000,
            p99=_nearest_rank(ordered, 0.99) / 1000,
        )


def _nearest_rank(ordered: Sequence[int], fraction: float) -> int:
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A pipe table with numeric-looking columns right-aligned, ready for the README."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    numeric = [i > 0 and all(_numeric(r[i]) for r in rows) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + (":" if num else "-") for w, num in zip(widths, numeric, strict=True)]
    return "\n".join([line(header), line(rule), *(line(r) for r in rows)])


def _numeric(cell: str) -> bool:
    return cell in ("", "—") or cell.lstrip("+-").replace(".", "", 1).rstrip("x%").isdigit()


def machine() -> str:
    """One line naming what the figures were measured on."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    core_text = f"{cores} cores" if usable == cores else f"{cores} cores ({usable} usable)"
    return (
        f"Machine: {_cpu_model()}, {core_text}; "
        f"{platform.python_implementation()} {platform.python_version()}; "
        f"{platform.system()} {platform.release()}"
    )


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        for row in text.splitlines():
            name, sep, value = row.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.machine() or "unknown CPU"
