"""What another process costs, read from ``/proc`` (so a load client's own cost never blurs it).

CPU comes from the scheduler's ``se.sum_exec_runtime`` of every thread
(``/proc/<pid>/task/<tid>/sched``, nanosecond precision) where the kernel shows
it, else from ``utime + stime`` in ``/proc/<pid>/stat`` (clock ticks, 10 ms).
RSS is ``VmRSS`` of ``/proc/<pid>/status``.

:func:`die_with_parent` is called first thing by every process the benchmarks
start, so none outlives a parent that was killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from pathlib import Path

_TICK = 1.0 / os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far, all its threads."""
    precise = _sched_seconds(pid)
    return precise if precise is not None else stat_cpu_seconds(pid)


def stat_cpu_seconds(pid: int) -> float:
    """``utime + stime`` from ``/proc/<pid>/stat``, in seconds (10 ms resolution)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * _TICK


def _sched_seconds(pid: int) -> float | None:
    total = 0.0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/sched").read_text()
        except FileNotFoundError:
            continue  # a thread that just ended
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("se.sum_exec_runtime"):
                total += float(line.split(":")[1]) / 1000.0  # milliseconds
                break
        else:
            return None
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size of the process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def die_with_parent() -> None:
    """Ask the kernel to send SIGTERM to this process when its parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
