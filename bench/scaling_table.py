"""docs/scaling.md's "one box" table, rendered from a full run's stored results.

Only rows whose figures the run stored appear; each names the benchmark it
comes from, so a reader finds the full table in the README.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench import markdown_table


def render(benchmarks: dict[str, Any]) -> str:
    rows = [
        *_serial(benchmarks.get("serial-cycle")),
        *_fanout(benchmarks.get("ws")),
        *_startup(benchmarks.get("startup")),
        *_fieldbox(benchmarks.get("fieldbox")),
    ]
    return markdown_table(["resource", "measured", "benchmark"], rows)


def _serial(data: dict[str, Any] | None) -> list[list[str]]:
    if not data or "cycle_ms_median" not in data:
        return []
    return [
        [
            "Modbus line at 9600 baud",
            f"a 2-point poll cycle {data['cycle_ms_median']:.1f} ms (median) for"
            f" {data['line_ms']:.1f} ms of wire time; driver and pty"
            f" {data['driver_ms']:+.2f} ms",
            "serial-cycle",
        ]
    ]


def _fanout(data: dict[str, Any] | None) -> list[list[str]]:
    rows = (data or {}).get("steady", {}).get("gateway", [])
    if not rows:
        return []
    ratios = ", ".join(f"{r['x_floor']:.2f}x at {r['clients']:,}" for r in rows if r.get("x_floor"))
    memory = ", ".join(f"{r['rss_per_client'] / 1024:.1f} KiB at {r['clients']:,}" for r in rows)
    biggest = max(rows, key=lambda r: r["clients"])
    out = [
        [
            "WebSocket fan-out, CPU",
            f"{biggest['cpu_us_per_delivery']:.1f} µs per delivered message at"
            f" {biggest['clients']:,} clients; over the floor's: {ratios}",
            "ws (steady)",
        ],
        ["WebSocket fan-out, memory", f"RSS per /ws/sensors client: {memory}", "ws (steady)"],
        [
            "WebSocket fan-out, time",
            f"publish to the last socket written {biggest['publish_ms_p50']:.0f} ms (p50) at"
            f" {biggest['clients']:,} clients",
            "ws (steady)",
        ],
    ]
    storm = (data or {}).get("storm", {}).get("gateway")
    if storm:
        out.append(
            [
                "reconnect storm",
                f"{storm['clients']:,} clients back after {storm['all_back_s']:.1f} s,"
                f" {storm['gap_free_share']:.0%} without a gap (?since=)",
                "ws (storm)",
            ]
        )
    return out


def _startup(data: dict[str, Any] | None) -> list[list[str]]:
    if not data or "samples" not in data:
        return []
    full = statistics.median(data["samples"]["full"])
    floor = statistics.median(data["samples"]["floor"])
    return [
        [
            "start-up",
            f"full readings {full:.2f} s after spawn (median); the devices alone {floor:.2f} s",
            "startup",
        ]
    ]


def _fieldbox(data: dict[str, Any] | None) -> list[list[str]]:
    if not data or "cpu_share" not in data:
        return []
    return [
        [
            "idle field box",
            f"{data['cpu_share']:.2%} of one core, {data['rss_end'] / 2**20:.0f} MiB RSS,"
            f" {data['clients']} clients",
            "fieldbox",
        ]
    ]
