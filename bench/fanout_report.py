"""The fan-out benchmark's tables (markdown, for the terminal and the README) and plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import Report, markdown_table

ORDER = ("floor", "gateway", "seed", "naive")
#: The issues' targets (ratios within one run where they can be).
CPU_TARGET = 1.2
P99_TARGET = 0.10
RSS_TARGET = 12 * 1024  # bytes per /ws/sensors client at 5,000 and 10,000 clients
RSS_AT = (5000, 10000)
CUT_OFF_TARGET = 15.0
STORM_TARGET = 15.0  # s for every client back, without a gap


def report(results: dict[str, Any], out: Path | None) -> Report:
    parts = [
        steady_table(results),
        stall_table(results),
        compression_table(results),
        storm_table(results),
        verdicts(results),
    ]
    figures = plots(results, out) if out is not None else []
    return Report("\n\n".join(p for p in parts if p), results, figures)


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def _pair(a: float | None, b: float | None, digits: int = 1) -> str:
    return f"{_fmt(a, digits)} / {_fmt(b, digits)}"


def _servers(section: dict[str, Any]) -> list[str]:
    return [name for name in ORDER if name in section]


def floor_ratio(results: dict[str, Any], name: str, clients: int) -> float | None:
    """CPU per delivery over the floor's, both measured in the same seconds."""
    row = _reference(results, name, clients)
    return None if row is None else row.get("x_floor")


def steady_table(results: dict[str, Any]) -> str:
    steady = results.get("steady", {})
    if not steady:
        return ""
    header = [
        "clients", "server", "CPU µs/delivery", "x floor", "publish→last write p50 / p99 ms",
        "receipt spread p50 / p99 ms", "latency p50 / p99 / max ms", "got every update",
        "RSS KiB/client", "load clients µs/delivery",
    ]  # fmt: skip
    sizes = sorted({r["clients"] for rows in steady.values() for r in rows})
    table = []
    for size in sizes:
        for name in _servers(steady):
            row = next((r for r in steady[name] if r["clients"] == size), None)
            if row is None:
                continue
            ratio = floor_ratio(results, name, size)
            table.append(
                [
                    f"{size:,}",
                    name,
                    _fmt(row["cpu_us_per_delivery"]),
                    f"{ratio:.2f}x" if ratio is not None else "—",
                    _pair(row["publish_ms_p50"], row["publish_ms_p99"]),
                    _pair(row["spread_ms_p50"], row["spread_ms_p99"]),
                    f"{_pair(row['latency_ms_p50'], row['latency_ms_p99'])}"
                    f" / {_fmt(row['latency_ms_max'])}",
                    f"{row['complete_share']:.1%}",
                    _fmt(row["rss_per_client"] / 1024),
                    _fmt(row["client_cpu_us_per_delivery"]),
                ]
            )
    title = "### WebSocket fan-out, steady state (/ws/sensors, 2 updates/s, 186-byte sensor_update)"
    timing = {r.get("timing") for rows in steady.values() for r in rows} - {None}
    alone = timing == {"alone"}
    notes = [
        "Each server ran beside the floor, both publishing: 'x floor' is its CPU per delivery"
        " over the floor's in the same seconds (the floor row: the median of those windows).",
        "Timings (publish→last write, spread, latency) "
        + (
            "come from a second window with the other server paused."
            if alone
            else "were taken beside the other server (quick run: no solo window)."
        ),
    ]
    return "\n".join([title, "", markdown_table(header, table), "", *notes])


def _reference(results: dict[str, Any], name: str, clients: int) -> dict[str, Any] | None:
    rows = results.get("steady", {}).get(name, [])
    return next((r for r in rows if r["clients"] == clients), None)


def stall_table(results: dict[str, Any]) -> str:
    stall = results.get("stall", {})
    if not stall:
        return ""
    header = [
        "server", "clients (stalled)", "healthy served without gap", "updates/s per healthy client",
        "healthy latency p99 ms (before the stall)", "publish→last write p99 ms (before)",
        "stalled clients, once they read", "first update withheld after s", "RSS growth MiB",
    ]  # fmt: skip
    table = []
    for name in _servers(stall):
        row = stall[name]
        ref = row["reference"]
        fate = row["stalled_fate"]
        table.append(
            [
                name,
                f"{row['clients']:,} ({row['stalled']})",
                f"{row['served_share']:.1%}",
                _fmt(row["updates_per_s"], 2),
                f"{_fmt(row['latency_ms_p99'])} ({_fmt(ref.get('latency_ms_p99'))})",
                f"{_fmt(row['publish_ms_p99'])} ({_fmt(ref.get('publish_ms_p99'))})",
                fate["summary"],
                _fmt(fate["first_withheld_s"]),
                _fmt(row["rss_growth"] / 2**20, 2),
            ]
        )
    seconds = max(r["seconds"] for r in stall.values())
    title = f"### 1 % stalled clients beside healthy ones ({seconds:.0f} s window)"
    return f"{title}\n\n{markdown_table(header, table)}"


def compression_table(results: dict[str, Any]) -> str:
    deflate = results.get("compression", {})
    if not deflate:
        return ""
    header = [
        "server", "clients", "CPU µs/delivery off → on", "x floor off → on",
        "RSS KiB/client off → on", "bytes/message on the wire off → on", "frames sent compressed",
    ]  # fmt: skip
    table = []
    for name in _servers(deflate):
        on = deflate[name]
        off = _reference(results, name, on["clients"]) or {}
        off_rss = off.get("rss_per_client")
        table.append(
            [
                name,
                f"{on['clients']:,}",
                f"{_fmt(off.get('cpu_us_per_delivery'))} → {_fmt(on['cpu_us_per_delivery'])}",
                f"{_fmt(off.get('x_floor'), 2)} → {_fmt(on.get('x_floor'), 2)}",
                f"{_fmt(off_rss and off_rss / 1024)} → {_fmt(on['rss_per_client'] / 1024)}",
                f"{_fmt(off.get('bytes_per_message'), 0)} → {_fmt(on['bytes_per_message'], 0)}",
                f"{on['compressed_share']:.0%}",
            ]
        )
    title = "### permessage-deflate offered by every client and enabled on the server"
    return f"{title}\n\n{markdown_table(header, table)}"


def storm_table(results: dict[str, Any]) -> str:
    storm = results.get("storm", {})
    if not storm:
        return ""
    header = [
        "server", "clients", "all reconnected after s", "connect p50 / p99 s",
        "all had an update after s", "retries", "no gap (?since=)",
        "server CPU s meanwhile (broadcasts included)",
    ]  # fmt: skip
    table = [
        [
            name,
            f"{row['clients']:,}",
            _fmt(row["all_back_s"], 2),
            _pair(row["connect_s_p50"], row["connect_s_p99"], 2),
            _fmt(row["all_served_s"], 2),
            str(row["retries"] + row["failed"]),
            f"{row['gap_free_share']:.1%}",
            _fmt(row["cpu_ms_per_reconnect"] * row["clients"] / 1000),
        ]
        for name in _servers(storm)
        for row in [storm[name]]
    ]
    title = "### Reconnect storm: every client drops (RST) and reconnects at once with ?since="
    return f"{title}\n\n{markdown_table(header, table)}"


def verdicts(results: dict[str, Any]) -> str:
    lines = ["Targets (issue), gateway:"]
    ratios = [
        (r["clients"], x)
        for r in results.get("steady", {}).get("gateway", [])
        if (x := floor_ratio(results, "gateway", r["clients"])) is not None
    ]
    if ratios:
        worst = max(x for _, x in ratios)
        shown = ", ".join(f"{x:.2f}x at {n:,}" for n, x in ratios)
        lines.append(
            f"- CPU per delivery <= {CPU_TARGET}x floor: {_met(worst <= CPU_TARGET)} ({shown})"
        )
    stall = results.get("stall", {}).get("gateway")
    if stall is not None:
        ref = stall["reference"]
        moved = _moved(stall.get("latency_ms_p99"), ref.get("latency_ms_p99"))
        fate = stall["stalled_fate"]
        withheld = fate["first_withheld_s"]
        ok = stall["served_share"] >= 1.0 and moved is not None and moved <= P99_TARGET
        lines.append(
            f"- beside 1 % stalled: healthy served {stall['served_share']:.1%}, p99 moved"
            f" {_fmt(None if moved is None else moved * 100)} %: {_met(ok)}; stalled:"
            f" {fate['summary']}, first withheld after {_fmt(withheld)} s"
            f" ({_met(withheld is not None and withheld <= CUT_OFF_TARGET)}),"
            f" RSS growth {_fmt(stall['rss_growth'] / 2**20, 2)} MiB"
        )
    sized = [r for r in results.get("steady", {}).get("gateway", []) if r["clients"] in RSS_AT]
    if sized:
        worst = max(r["rss_per_client"] for r in sized)
        shown = ", ".join(f"{_fmt(r['rss_per_client'] / 1024)} at {r['clients']:,}" for r in sized)
        lines.append(
            f"- RSS per client <= {RSS_TARGET // 1024} KiB at 5,000 and 10,000 clients:"
            f" {_met(worst <= RSS_TARGET)} ({shown} KiB)"
        )
    storm = results.get("storm", {}).get("gateway")
    if storm is not None:
        back = storm["all_back_s"]
        ok = back is not None and back <= STORM_TARGET and storm["gap_free_share"] >= 1.0
        lines.append(
            f"- {storm['clients']:,} clients back without a gap within {STORM_TARGET:.0f} s of a"
            f" reconnect storm: {_met(ok)} ({_fmt(back)} s, {storm['gap_free_share']:.1%}"
            " without a gap)"
        )
    return "\n".join(lines) if len(lines) > 1 else ""


def _moved(now: float | None, before: float | None) -> float | None:
    if now is None or before is None or before <= 0:
        return None
    return (now - before) / before


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


# plots ---------------------------------------------------------------------------------------


def plots(results: dict[str, Any], out: Path) -> list[str]:
    import matplotlib  # type: ignore[import-not-found, unused-ignore]  # the bench extra

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for name, draw in (
        ("ws_steady.png", _plot_steady),
        ("ws_stall.png", _plot_stall),
        ("ws_compression.png", _plot_compression),
        ("ws_storm.png", _plot_storm),
    ):
        if draw(results, out / name):
            made.append(name)
    return made


def _plot_steady(results: dict[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]  # the bench extra

    steady = results.get("steady", {})
    if not steady:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    panels = (
        ("cpu_us_per_delivery", "server CPU µs per delivery", 1.0),
        ("publish_ms_p99", "publish → last write p99, ms", 1.0),
        ("spread_ms_p99", "first → last receipt p99, ms", 1.0),
        ("rss_per_client", "server RSS per client, KiB", 1 / 1024),
    )
    for ax, (key, title, scale) in zip(axes.flat, panels, strict=True):
        for name in _servers(steady):
            rows = sorted(steady[name], key=lambda r: r["clients"])
            ax.plot(
                [r["clients"] for r in rows],
                [(r[key] or 0) * scale for r in rows],
                marker="o",
                label=name,
            )
        ax.set_title(title)
        ax.set_xlabel("clients")
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    fig.suptitle("WebSocket fan-out, 2 updates/s (same run, same machine)")
    return _save(fig, path)


def _plot_stall(results: dict[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]  # the bench extra

    stall = results.get("stall", {})
    if not stall:
        return False
    names = _servers(stall)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.bar(names, [stall[n]["updates_per_s"] for n in names])
    left.axhline(
        1 / results["interval"], color="grey", linestyle="--", label="nominal (0.5 s sleep + send)"
    )
    left.set_title("updates/s reaching each healthy client (median)")
    left.legend()
    for name in names:
        samples = stall[name]["rss_samples"]
        right.plot([t for t, _ in samples], [v / 2**20 for _, v in samples], label=name)
    right.set_title("server RSS during the window, MiB")
    right.set_xlabel("s")
    right.legend()
    fig.suptitle("1 % stalled clients")
    return _save(fig, path)


def _plot_compression(results: dict[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]  # the bench extra

    deflate = results.get("compression", {})
    if not deflate:
        return False
    names = _servers(deflate)
    offs = [_reference(results, n, deflate[n]["clients"]) or {} for n in names]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in (
        (axes[0], "cpu_us_per_delivery", "server CPU µs per delivery"),
        (axes[1], "bytes_per_message", "bytes per message on the wire"),
    ):
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], [o.get(key, 0) for o in offs], 0.4, label="off")
        ax.bar([x + 0.2 for x in xs], [deflate[n][key] for n in names], 0.4, label="deflate")
        ax.set_xticks(list(xs), names)
        ax.set_title(title)
        ax.legend()
    fig.suptitle("permessage-deflate")
    return _save(fig, path)


def _plot_storm(results: dict[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]  # the bench extra

    storm = results.get("storm", {})
    if not storm:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in _servers(storm):
        times: Sequence[float] = storm[name]["connect"]
        if times:
            ax.plot(times, [(i + 1) / len(times) for i in range(len(times))], label=name)
    ax.set_xlabel("s after every client dropped")
    ax.set_ylabel("share reconnected")
    ax.set_title("Reconnect storm")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _save(fig: Any, path: Path) -> bool:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]  # the bench extra

    plt.close(fig)
    return True
