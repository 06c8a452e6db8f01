"""The soak's checks: what counts as a gap, which alerts count as recorded, the verdicts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bench.soak_report import alert_findings
from bench.soak_watch import SeqCheck


def test_a_skipped_seq_is_a_gap_and_a_repeated_one_is_not() -> None:
    check = SeqCheck()
    for seq in (5, 6, 6, 7, 10, 11, 9):  # a resume that missed nothing repeats the last
        check.heard(seq)
    assert (check.gaps, check.missed, check.backwards, check.last) == (1, 2, 1, 11)


def _at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _stored(event: str, epoch: float, measurement: str = "ph") -> dict[str, Any]:
    return {"event": event, "measurement": measurement, "at": _at(epoch)}


def test_each_excursion_needs_its_own_raise_and_clear() -> None:
    excursions = [1000.0, 1030.0, 1060.0]
    history = [
        _stored("raised", 1004.0),
        _stored("cleared", 1010.0),
        _stored("raised", 1034.0),  # the second one never cleared
        _stored("raised", 1064.0, "conductivity"),  # not the pH: the third one is missing
    ]
    mqtt = [
        {"event": e["event"], "at": e["at"], "alert": {"measurement": e["measurement"]}}
        for e in history[:1]
    ]
    found = alert_findings(excursions, history, mqtt)
    assert found["caused"] == 3
    assert found["in_history"] == 2
    assert found["cleared"] == 1
    assert found["on_mqtt"] == 1
