"""The history benchmark still runs (a smoke test: no figure is judged here)."""

from __future__ import annotations

from bench import history


async def test_history_benchmark_runs_and_prints_its_table() -> None:
    report = await history.run(quick=True, iterations=10)
    rows = [line for line in report.text.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 3
    assert "73 points" in report.text  # 3 days of 1 h buckets, the partial first one too
    assert report.data["rows_one"] == 3 * 8640
