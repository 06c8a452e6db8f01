"""``python -m bench [--quick] [-n N] [name ...]``: run benchmarks and print their tables."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

from bench import alerts, machine, serial_overhead


class Benchmark(Protocol):
    """A benchmark: measures, then returns its report (a markdown table and notes)."""

    def __call__(
        self, *, iterations: int | None = None, quick: bool = False
    ) -> Coroutine[Any, Any, str]: ...


BENCHMARKS: dict[str, Benchmark] = {
    "serial": serial_overhead.run,
    "alerts": alerts.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="name",
        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="few iterations: a smoke test, not figures"
    )
    parser.add_argument(
        "-n", "--iterations", type=int, help="timed transactions per row (overrides --quick)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: one of {', '.join(BENCHMARKS)}")
    if args.iterations is not None and args.iterations < 10:
        parser.error("--iterations must be at least 10")
    print(machine())
    for name in args.names or list(BENCHMARKS):
        report = asyncio.run(BENCHMARKS[name](iterations=args.iterations, quick=args.quick))
        print()
        print(report, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
