"""The Modbus TCP cycle benchmark still runs (a smoke test: no figures are judged here)."""

from __future__ import annotations

from bench import tcp_cycle
from bench.__main__ import BENCHMARKS


async def test_tcp_cycle_benchmark_runs_and_prints_its_table() -> None:
    report = await tcp_cycle.run(iterations=10)
    rows = [line for line in report.text.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 4  # header, rule, four rows
    assert report.data["requests_per_cycle"] == 3
    assert report.data["cycles"] == 10
    assert BENCHMARKS["tcp-cycle"] is tcp_cycle.run
