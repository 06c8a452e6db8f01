"""The figures the project publishes, written from a run's stored results, never by hand.

Each published block sits between two markers in a markdown file::

    <!-- bench:NAME begin: written by python -m bench from RESULTS; do not edit -->
    ...
    <!-- bench:NAME end -->

and is rendered from a ``results.json`` that a run stored (the tables it
printed, with the date, the machine and the commit it ran on). ``python -m
bench`` rewrites every block after a run (and with ``--rebuild``);
tests/test_bench_published.py fails when a file differs from what its
stored results render.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FULL = Path("docs/bench/results.json")
QUICK = Path("docs/bench/quick/results.json")
SOAK = Path("docs/bench/soak/results.json")


@dataclass(frozen=True, slots=True)
class Block:
    """One generated block: where it goes and what renders it from which results."""

    name: str
    file: Path
    results: Path
    render: Callable[[dict[str, Any], Path], str]


def header(results: dict[str, Any]) -> list[str]:
    """Date, mode, command, commit and machine of a run: the first lines of every block."""
    command = "make bench" if results["mode"] == "quick" else "make bench-full"
    return [
        f"{results['date']}, {results['mode']} run (`{command}`) at commit"
        f" {results['commit']}, {results['seconds']:.0f} s.",
        results["machine"] + ".",
    ]


def run_text(results: dict[str, Any], out: Path) -> str:
    """Every benchmark's tables and plots of one run, as docs/bench/README.md shows them."""
    lines = [*header(results), ""]
    for data in results["benchmarks"].values():
        lines += [data["text"], ""]
        figures = data.get("figures", [])
        lines += [f"![{Path(f).stem}]({_link(out, f)})" for f in figures]
        lines += [""] if figures else []
    return "\n".join(lines).rstrip("\n")


def _link(out: Path, figure: str) -> str:
    """A figure's path from the repository root: the text is meant for the top README."""
    try:
        return (out.resolve() / figure).relative_to(ROOT).as_posix()
    except ValueError:
        return figure


def _full_run(results: dict[str, Any], results_path: Path) -> str:
    return run_text(results, ROOT / results_path.parent)


def _scaling(results: dict[str, Any], results_path: Path) -> str:
    """docs/scaling.md's one-box table, from the full run."""
    from bench import scaling_table

    return "\n".join([*header(results), "", scaling_table.render(results["benchmarks"])])


def _benchmark(name: str) -> Callable[[dict[str, Any], Path], str]:
    """One benchmark's tables from a run, or a line saying the run did not include it."""

    def render(results: dict[str, Any], results_path: Path) -> str:
        data = results["benchmarks"].get(name)
        if data is None:
            return f"(The stored run has no `{name}` benchmark: `python -m bench {name}`.)"
        text = data["text"].split("\n", 1)[1].lstrip("\n")  # the block's own heading stays
        return "\n".join([*header(results), "", text])

    return render


def _soak(results: dict[str, Any], results_path: Path) -> str:
    """The README's soak figures, from the stored soak (``make soak``)."""
    from bench import soak_report

    return soak_report.block(results)


BLOCKS = (
    Block("full", Path("README.md"), FULL, _full_run),
    Block("one-box", Path("docs/scaling.md"), FULL, _scaling),
    Block("ws-memory", Path("docs/scaling.md"), FULL, _benchmark("ws-memory")),
    Block("ws-profile", Path("docs/scaling.md"), FULL, _benchmark("ws-profile")),
    Block("soak", Path("README.md"), SOAK, _soak),
)


def begin(block: Block) -> str:
    return (
        f"<!-- bench:{block.name} begin: written by python -m bench from"
        f" {block.results.as_posix()}; do not edit -->"
    )


def end(block: Block) -> str:
    return f"<!-- bench:{block.name} end -->"


def rendered(block: Block, root: Path = ROOT) -> str:
    """The file's text with the block rendered from its stored results."""
    text = (root / block.file).read_text()
    pattern = re.compile(
        rf"<!-- bench:{re.escape(block.name)} begin[^\n]*-->\n.*?<!-- bench:"
        rf"{re.escape(block.name)} end -->",
        re.DOTALL,
    )
    if not pattern.search(text):
        raise ValueError(f"{block.file}: no bench:{block.name} block")
    results = json.loads((root / block.results).read_text())
    body = block.render(results, block.results)
    return pattern.sub(lambda _: f"{begin(block)}\n{body}\n{end(block)}", text, count=1)


def stale(root: Path = ROOT) -> list[str]:
    """Blocks whose file differs from what its stored results render."""
    return [
        f"{b.file}: bench:{b.name}"
        for b in BLOCKS
        if (root / b.results).exists() and rendered(b, root) != (root / b.file).read_text()
    ]


def write(results_path: Path, root: Path = ROOT) -> list[Path]:
    """Rewrite the blocks rendered from ``results_path``; returns the files changed."""
    changed = []
    for block in BLOCKS:
        if (root / block.results).resolve() != results_path.resolve():
            continue
        text = rendered(block, root)
        if text != (root / block.file).read_text():
            (root / block.file).write_text(text)
            changed.append(block.file)
    return changed
