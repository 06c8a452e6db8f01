"""The C heap's free pages go back to the system (glibc's malloc_trim), in this process."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from gateway import memory

MIB = 2**20


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_returns_what_the_c_heap_holds_free() -> None:
    # 40 MB in blocks too big for Python's own allocator: on the C heap, touched.
    blocks = [bytes(4000) for _ in range(10_000)]
    pin = bytes(4000)  # above them: the heap's top stays in use, so free() cannot shrink it
    held = _rss()
    del blocks  # freed, but between live chunks: glibc keeps them for reuse
    assert _rss() > held - 8 * MIB  # still resident: what the soak saw as growth
    assert memory.trim()
    assert _rss() < held - 30 * MIB
    assert pin  # alive to here
