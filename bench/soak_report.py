"""The soak's report: figures from what was observed, verdicts against the issue's bar, plots.

``write`` stores docs/bench/soak/results.json, README.md and the plots beside it,
and rewrites the README's ``bench:soak`` block (:mod:`bench.published`), all from
the same results; ``block`` renders that block, so a test can check it still matches.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import machine, markdown_table

#: The issue's bar for a 60-minute run.
RSS_GROWTH_MAX = 20.0  # KiB/min after the first quarter
REPLUG_MAX = 2.0  # s from the replug to the first good reading
#: Open files (besides the WebSocket clients' sockets) the fitted trend may gain over the
#: last three quarters.
FD_DRIFT_MAX = 5
FIGURES = ("soak_memory.png", "soak_fds.png")


def log_findings(text: str) -> dict[str, Any]:
    """The gateway log's ERROR lines and tracebacks (the first few of each, for the report)."""
    errors = [line for line in text.splitlines() if " ERROR " in line]
    return {
        "lines": text.count("\n"),
        "errors": len(errors),
        "tracebacks": text.count("Traceback (most recent call last)"),
        "first_errors": errors[:10],
    }


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _seen(
    events: Iterable[tuple[str, str, float]], event: str, start: float, within: float
) -> bool:
    """A pH ``event`` in ``events`` between ``start`` and ``within`` s after it."""
    return any(
        name == event and measurement == "ph" and start <= at <= start + within
        for name, measurement, at in events
    )


def alert_findings(
    excursions: Sequence[float], history: Sequence[dict[str, Any]], mqtt: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Each pH excursion's alert: raised in the history and on MQTT, and cleared after."""
    stored = [(e["event"], e["measurement"], _epoch(e["at"])) for e in history]
    heard = [(e["event"], e["alert"]["measurement"], _epoch(e["at"])) for e in mqtt]
    return {
        "caused": len(excursions),
        "in_history": sum(_seen(stored, "raised", t, 15) for t in excursions),
        "on_mqtt": sum(_seen(heard, "raised", t, 15) for t in excursions),
        "cleared": sum(_seen(stored, "cleared", t + 8, 20) for t in excursions),
        "history_events": len(history),
        "mqtt_events": len(mqtt),
    }


def _slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 for fewer than two points)."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def figures_of(observed: dict[str, Any], minutes: float) -> dict[str, Any]:
    """The numbers the report and the README quote."""
    samples = observed["campaign"]["samples"]
    later = [s for s in samples if s["t"] >= minutes * 60 / 4]
    span = later[-1]["t"] - later[0]["t"] if len(later) > 1 else 0.0
    fd_trend = _slope([(s["t"], s["fds"] - s["clients"]) for s in later]) * span
    recoveries = observed["campaign"]["recoveries"]
    measured = [r for r in recoveries if r is not None]
    wall = samples[-1]["t"] - samples[0]["t"] if len(samples) > 1 else 1.0
    return {
        "rss_start_mib": samples[0]["rss"] / 2**20,
        "rss_end_mib": samples[-1]["rss"] / 2**20,
        "rss_max_mib": max(s["rss"] for s in samples) / 2**20,
        "rss_growth_kib_per_min": _slope([(s["t"] / 60, s["rss"] / 1024) for s in later]),
        "fds_min": min(s["fds"] - s["clients"] for s in later or samples),
        "fds_max": max(s["fds"] - s["clients"] for s in later or samples),
        "clients_max": max(s["clients"] for s in samples),
        "fd_trend": fd_trend,
        "threads_max": max(s["threads"] for s in samples),
        "cpu_cores": (samples[-1]["cpu"] - samples[0]["cpu"]) / wall,
        "db_end_mib": samples[-1]["db"] / 2**20,
        "wal_max_mib": max(s["wal"] for s in samples) / 2**20,
        "replugs": len(recoveries),
        "replug_max_s": max(measured) if measured else None,
        "replug_median_s": statistics.median(measured) if measured else None,
        "replugs_within": sum(r <= REPLUG_MAX for r in measured),
    }


def verdicts(results: dict[str, Any]) -> dict[str, bool]:
    f, ws, mqtt, alerts = (results[k] for k in ("figures", "websocket", "mqtt", "alerts"))
    return {
        f"RSS growth after the first quarter under {RSS_GROWTH_MAX:g} KiB/min": (
            f["rss_growth_kib_per_min"] < RSS_GROWTH_MAX
        ),
        "open files flat": abs(f["fd_trend"]) < FD_DRIFT_MAX,
        "zero seq gaps (WebSocket and MQTT)": ws["gaps"] == 0 and mqtt["gaps"] == 0,
        "every raise recorded (history and MQTT)": (
            alerts["in_history"] == alerts["caused"] == alerts["on_mqtt"]
        ),
        f"every replug reading again within {REPLUG_MAX:g} s": (
            f["replugs"] > 0 and f["replugs_within"] == f["replugs"]
        ),
        "no traceback in the log": results["log"]["tracebacks"] == 0,
    }


def _n(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def block(results: dict[str, Any]) -> str:
    """The README's soak block: the run, its figures and its verdicts."""
    f, ws, mqtt, alerts, c = (
        results[k] for k in ("figures", "websocket", "mqtt", "alerts", "campaign")
    )
    rows = [
        ["RSS growth after the first quarter", f"{f['rss_growth_kib_per_min']:.1f} KiB/min"],
        ["RSS start / end / max", f"{f['rss_start_mib']:.1f} / {f['rss_end_mib']:.1f} / "
         f"{f['rss_max_mib']:.1f} MiB"],
        ["open files besides clients' sockets", f"{f['fds_min']}-{f['fds_max']}, "
         f"trend {f['fd_trend']:+.1f} (with up to {f['clients_max']} clients)"],
        ["threads (max)", str(f["threads_max"])],
        ["CPU", f"{f['cpu_cores']:.3f} of a core"],
        ["database / WAL (max)", f"{f['db_end_mib']:.1f} / {f['wal_max_mib']:.1f} MiB"],
        ["WebSocket connections / seq gaps", f"{ws['connections']} / {ws['gaps']}"],
        ["MQTT sensor messages / seq gaps", f"{mqtt['messages']} / {mqtt['gaps']} "
         f"(through {c['broker_outages']} broker outages)"],
        ["pH alerts caused / in history / on MQTT / cleared",
         f"{alerts['caused']} / {alerts['in_history']} / {alerts['on_mqtt']} / "
         f"{alerts['cleared']}"],
        ["replugs within 2 s (median, max)", f"{f['replugs_within']} of {f['replugs']} "
         f"({_n(f['replug_median_s'])} s, {_n(f['replug_max_s'])} s)"],
        ["broken CRCs counted / dead-unit periods", f"{c['crc_errors']} / {c['dead_units']}"],
        ["log: ERROR lines / tracebacks", f"{results['log']['errors']} / "
         f"{results['log']['tracebacks']}"],
    ]  # fmt: skip
    passed = verdicts(results)
    return "\n".join(
        [
            f"{results['date']}, {results['minutes']:g}-minute run (`make soak"
            f" MINUTES={results['minutes']:g}`) at commit {results['commit']}.",
            results["machine"] + ".",
            "",
            markdown_table(["", "measured"], rows),
            "",
            *(f"- {'met' if ok else 'MISSED'}: {what}" for what, ok in passed.items()),
        ]
    )


def summary(results: dict[str, Any]) -> str:
    return "## Soak\n\n" + block(results)


def write(observed: dict[str, Any], minutes: float, out: Path, commit: str) -> dict[str, Any]:
    """results.json, README.md and the plots in ``out``; the README block if ``out`` is ours.
    ``commit``: the one the gateway ran (taken when the soak began)."""
    from bench import published

    results = {
        "date": time.strftime("%Y-%m-%d", time.gmtime(observed["began"])),
        "minutes": minutes,
        "commit": commit,
        "machine": machine(),
        **observed,
        "figures": figures_of(observed, minutes),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    made = plots(results, out)
    images = "\n".join(f"![{Path(name).stem}]({name})" for name in made)
    (out / "README.md").write_text(
        f"{summary(results)}\n\n{images}\n\nWritten by `python -m bench.soak`; "
        "the campaign is described in bench/soak.py.\n"
    )
    if (out / "results.json").resolve() == (published.ROOT / published.SOAK).resolve():
        published.write(out / "results.json")
    return results


def plots(results: dict[str, Any], out: Path) -> list[str]:
    """Memory, and open files, over the run."""
    import matplotlib  # type: ignore[import-not-found, unused-ignore]  # the bench extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    samples = results["campaign"]["samples"]
    minutes = [s["t"] / 60 for s in samples]
    panels = (
        ("soak_memory.png", [s["rss"] / 2**20 for s in samples], "RSS, MiB"),
        (
            "soak_fds.png",
            [s["fds"] - s["clients"] for s in samples],
            "open files besides clients' sockets",
        ),
    )
    for name, values, label in panels:
        fig, ax = plt.subplots(figsize=(9, 3.5))
        ax.plot(minutes, values, marker=".", linewidth=1)
        ax.set_xlabel("minutes")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.set_title(f"{label} of the gateway during the soak ({results['commit']})")
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
    return [name for name, _, _ in panels]
