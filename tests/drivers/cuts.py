"""Ways to cut bytes into chunks, for the codec tests that feed a frame whole and in pieces."""

from __future__ import annotations

import itertools


def splits(raw: bytes) -> list[tuple[bytes, bytes]]:
    """Every way to cut ``raw`` into two chunks (either may be empty)."""
    return [(raw[:i], raw[i:]) for i in range(len(raw) + 1)]


def chunked(raw: bytes, cuts: list[int]) -> list[bytes]:
    """``raw`` cut at ``cuts`` (any integers, taken modulo the length; empty chunks allowed)."""
    points = [0, *sorted(c % (len(raw) + 1) for c in cuts), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(points)]
