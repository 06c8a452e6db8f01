"""The blocks of docs/seed-walkthrough.md, read by the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).parent.parent / "docs" / "seed-walkthrough.md"


def snippet(marker: str) -> str:
    """The fenced block right after ``<!-- marker -->`` in the walkthrough."""
    found = re.search(
        rf"<!-- {re.escape(marker)} -->\n```[a-z]*\n(.*?)\n```", DOC.read_text(), re.DOTALL
    )
    assert found, f"no block after <!-- {marker} --> in {DOC}"
    return found.group(1)
