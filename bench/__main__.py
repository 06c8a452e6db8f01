"""``python -m bench [--quick] [-n N] [--out DIR] [name ...]``: run benchmarks, print their tables.

Besides the terminal, a run writes ``results.json``, ``README.md`` (the tables,
the figures and the machine line, ready for the project README) and the PNG
plots into ``--out``: ``docs/bench/`` for a full run, ``docs/bench/quick/``
for a ``--quick`` one, so a quick run never overwrites the published figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol

from bench import (
    Report,
    alerts,
    fanout,
    fanout_report,
    fieldbox,
    history,
    machine,
    published,
    relay,
    serial_cycle,
    serial_overhead,
    startup,
    tcp_cycle,
    ws_memory,
    ws_profile,
)

ROOT = Path(__file__).resolve().parent.parent
#: README.md below this line is written by hand and kept when a run rewrites the file.
NOTES = "<!-- notes: kept by python -m bench -->"


class Benchmark(Protocol):
    """A benchmark: measures, then returns its report (markdown, figures, plots written)."""

    def __call__(
        self, *, iterations: int | None = None, quick: bool = False, out: Path | None = None
    ) -> Coroutine[Any, Any, str | Report]: ...


BENCHMARKS: dict[str, Benchmark] = {
    "serial": serial_overhead.run,
    "serial-cycle": serial_cycle.run,
    "tcp-cycle": tcp_cycle.run,
    "alerts": alerts.run,
    "ws": fanout.run,
    "fieldbox": fieldbox.run,
    "relay": relay.run,
    "startup": startup.run,
    "ws-memory": ws_memory.run,
    "ws-profile": ws_profile.run,
    "history": history.run,
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
        "--quick", action="store_true", help="short windows, few iterations: under 3 minutes"
    )
    parser.add_argument(
        "-n", "--iterations", type=int, help="timed transactions per row (overrides --quick)"
    )
    parser.add_argument(
        "--out", type=Path, help="where results.json, README.md and plots go (default docs/bench)"
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="measure nothing: redo README.md, the tables and plots from --out's results.json",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: one of {', '.join(BENCHMARKS)}")
    if args.iterations is not None and args.iterations < 10:
        parser.error("--iterations must be at least 10")
    out: Path = args.out or ROOT / "docs" / "bench" / ("quick" if args.quick else "")
    if args.rebuild:
        return _rebuild(out)
    started = time.time()
    header: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "mode": "quick" if args.quick else "full",
        "commit": _commit(),
    }
    print(header["machine"], flush=True)
    reports: dict[str, Report] = {}
    for name in args.names or list(BENCHMARKS):
        print(f"\n[bench] {name} ...", flush=True)
        result = asyncio.run(
            BENCHMARKS[name](iterations=args.iterations, quick=args.quick, out=out)
        )
        reports[name] = result if isinstance(result, Report) else Report(result)
        print()
        print(reports[name].text, flush=True)
    header["seconds"] = round(time.time() - started, 1)
    _write(out, header, reports)
    print(f"\n[bench] done in {header['seconds']:.0f} s; results in {out}", flush=True)
    return 0


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "gateway", "drivers"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes" if dirty else head


def _rebuild(out: Path) -> int:
    """Tables, plots and README.md again from a run's results.json (the report code changed)."""
    saved = json.loads((out / "results.json").read_text())
    header = {k: v for k, v in saved.items() if k != "benchmarks"}
    reports = {}
    for name, data in saved["benchmarks"].items():
        text = data.pop("text")
        data.pop("figures", None)
        if name == "ws":
            reports[name] = fanout_report.report(data, out)
        elif name == "ws-profile":
            reports[name] = ws_profile.report(data)
        elif name == "ws-memory":
            reports[name] = ws_memory.report(data, data["clients"])
        elif name == "startup":
            reports[name] = startup.report(data["samples"])
        elif name == "fieldbox":
            reports[name] = Report(text, data, [fieldbox.plot(data["samples"], out)])
        else:
            reports[name] = Report(text, data)
    _write(out, header, reports)
    print(f"[bench] rebuilt {out / 'README.md'} from {out / 'results.json'}")
    return 0


def _write(out: Path, header: dict[str, Any], reports: dict[str, Report]) -> None:
    """results.json, README.md beside it, and every published block rendered from it."""
    out.mkdir(parents=True, exist_ok=True)
    results = {
        **header,
        "benchmarks": {
            n: {"text": r.text, "figures": r.figures, **r.data} for n, r in reports.items()
        },
    }
    stored = json.loads(json.dumps(results, default=_plain))
    (out / "results.json").write_text(json.dumps(stored, indent=1) + "\n")
    readme = out / "README.md"
    kept = readme.read_text().partition(NOTES)[2] if readme.exists() else ""
    lines = ["## Benchmarks", "", published.run_text(stored, out), ""]
    if kept:
        lines += [NOTES + kept.rstrip("\n"), ""]
    readme.write_text("\n".join(lines))
    for changed in published.write(out / "results.json"):
        print(f"[bench] rewrote the figures in {changed}", flush=True)


def _plain(value: object) -> object:
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
