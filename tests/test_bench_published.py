"""The published figures are what the stored runs say: README and docs against results.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import published, soak_report, startup


def test_every_published_block_is_rendered_from_its_stored_run() -> None:
    assert published.stale() == []  # if not: python -m bench --rebuild (and --quick --rebuild)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for block in published.BLOCKS:
        for path in (block.file, block.results):
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(published.ROOT / path, tmp_path / path)
    return tmp_path


def test_a_figure_edited_by_hand_is_caught(copy: Path) -> None:
    readme = copy / "README.md"
    text = readme.read_text()
    block = text.index(published.begin(published.BLOCKS[0]))
    commit = text.index(" at commit ", block)
    readme.write_text(text[:commit] + " at commit 0000000" + text[text.index(",", commit) :])
    assert published.stale(copy) == ["README.md: bench:full"]
    published.write(copy / published.FULL, copy)
    assert published.stale(copy) == []
    assert readme.read_text() == text


def test_a_block_without_its_markers_is_an_error(copy: Path) -> None:
    scaling = copy / "docs" / "scaling.md"
    scaling.write_text(scaling.read_text().replace("<!-- bench:one-box end -->", ""))
    with pytest.raises(ValueError, match=r"docs/scaling.md: no bench:one-box block"):
        published.stale(copy)


def test_startup_verdict_follows_the_samples() -> None:
    fast = {"floor": [1.5], "interpreter": [0.02], "banner": [0.3], "full": [1.9]}
    slow = {**fast, "full": [2.4, 2.6, 2.5]}
    assert "(median): met (1.90 s" in startup.report(fast).text
    assert "(median): MISSED (2.50 s" in startup.report(slow).text
    assert "1.67x |" in startup.report(slow).text


def test_the_readme_soak_figures_are_the_stored_soak(copy: Path) -> None:
    readme = copy / "README.md"
    text = readme.read_text()
    results = json.loads((copy / published.SOAK).read_text())
    assert soak_report.block(results) in text
    growth = results["figures"]["rss_growth_kib_per_min"]
    quoted = f"| {growth:.1f} KiB/min"
    assert quoted in text
    readme.write_text(text.replace(quoted, f"| {growth - 10:.1f} KiB/min"))  # a hand edit
    assert published.stale(copy) == ["README.md: bench:soak"]
    published.write(copy / published.SOAK, copy)
    assert readme.read_text() == text
