"""Handing back what the C allocator holds free, so RSS follows the heap in use.

Under the churn of clients coming and going, glibc keeps the memory a burst of them
freed: free chunks between live ones, reused but not returned, so RSS creeps up with
each new peak while the memory in use (Python's heap and the C heap alike) stays flat
(docs/reliability.md, "Memory under client churn"). ``malloc_trim(0)`` returns the
free pages of every arena to the kernel. Where the C library has none (musl, macOS)
:func:`trim` does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

#: s between two trims: a few ms of work for a heap of tens of MB.
TRIM_INTERVAL = 60.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        function = ctypes.CDLL(None).malloc_trim  # the C library this interpreter runs on
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


def trim() -> bool:
    """Return the C heap's free pages to the system; True if any were (False where the
    C library cannot)."""
    malloc_trim = _malloc_trim()
    return malloc_trim is not None and bool(malloc_trim(0))
