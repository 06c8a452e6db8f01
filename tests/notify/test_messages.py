"""Every text a notification can carry, in both languages."""

from __future__ import annotations

import pytest

from gateway.alerts.model import Alert
from gateway.notify.messages import TITLES, WORDS, Site, render

OFFLINE = Alert("E-7", "water_level", "offline", None, "warning", "active", None, None,
                1764470000.0, 1764470000.0)  # fmt: skip
LOW = Alert("E-8", "ph", "threshold", "low", "critical", "active", 4.8, 5.0, 1764470000.0,
            1764470060.0)  # fmt: skip


def test_both_languages_have_every_text() -> None:
    assert TITLES["es"].keys() == TITLES["en"].keys()
    assert WORDS["es"].keys() == WORDS["en"].keys()


@pytest.mark.parametrize("language", ["es", "en"])
@pytest.mark.parametrize("event", ["raised", "escalated", "deescalated", "cleared", "reminder"])
def test_every_event_renders(language: str, event: str) -> None:
    site = Site("EMBALSE_01", language, "", labels={"ph": "pH del agua"}, units={"ph": "pH"})  # type: ignore[arg-type]
    title, body, _ = render(site, LOW, event)
    assert "EMBALSE_01" in title
    assert "pH del agua" in title
    assert "2025-11-30T02:33:20.000Z" in body
    assert "E-8" in body


def test_an_offline_alert_says_so_and_uses_the_label() -> None:
    site = Site("EMBALSE_01", "en", "https://gw/", labels={"water_level": "Nivel"})
    title, body, kind = render(site, OFFLINE, "offline")
    assert title == "[WARNING] EMBALSE_01: Nivel not reporting"
    assert "No good reading arrives from the probe." in body
    assert body.endswith("Dashboard: https://gw/")
    assert kind == "warning"
    title, _, kind = render(site, OFFLINE, "cleared")
    assert (title, kind) == ("[CLEARED] EMBALSE_01: Nivel reporting again", "success")


def test_a_low_bound_in_spanish() -> None:
    title, body, kind = render(Site("EMBALSE_01", units={"ph": "pH"}), LOW, "raised")
    assert title == "[CRÍTICA] EMBALSE_01: ph 4.8 pH (por debajo de 5 pH)"
    assert "Límite: por debajo de 5 pH" in body
    assert kind == "failure"
