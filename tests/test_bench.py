"""The benchmarks still run (a smoke test: no figures are judged here)."""

from __future__ import annotations

from bench import serial_overhead


async def test_serial_benchmark_runs_and_prints_its_table() -> None:
    report = await serial_overhead.run(iterations=20)
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 5  # header, rule, five measured rows
    assert "SerialLine.request + ResponseDecoder" in report
