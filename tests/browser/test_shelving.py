"""The shelving screen in Chromium: shelve pH from its active alert (the alert leaves
the counts and the list, the shelf shows who and why), then unshelve it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.browser.support import GatewayProcess, require_browser

require_browser()

from playwright.sync_api import Page, expect  # noqa: E402


@pytest.fixture
def ph_critical(gateway: GatewayProcess) -> Iterator[None]:
    gateway.simulate("ph", value=9.6)
    yield
    gateway.simulate("ph", value=7.4)
    shelved = gateway.request("GET", "/api/alerts/shelved")
    for shelf in shelved:
        gateway.request("DELETE", f"/api/alerts/shelve/{shelf['measurement']}")


def critical_count(page: Page):  # type: ignore[no-untyped-def]
    return page.locator('.count[data-severity="critical"] .count-value')


def test_shelve_from_an_alert_then_unshelve(
    page: Page, gateway: GatewayProcess, ph_critical: None
) -> None:
    page.goto(gateway.url + "/")
    expect(page.locator("#connection")).to_have_text("Conectado")
    alert = page.locator('#alerts li.alert[data-measurement="ph"]')
    expect(alert).to_have_count(1)
    expect(critical_count(page)).to_have_text("1")
    expect(page.locator("#shelves .shelve-empty")).to_be_visible()

    alert.get_by_role("button", name=re.compile("Poner en espera")).click()
    form = page.locator("#shelves .shelve-form")
    expect(form).to_be_visible()
    expect(form.locator(".shelve-measurement")).to_have_value("ph")
    form.locator(".shelve-minutes").select_option("30")
    form.locator(".shelve-reason").fill("limpieza de la sonda")
    form.get_by_role("button", name="Poner en espera").click()

    shelf = page.locator('#shelves .shelve-item[data-measurement="ph"]')
    expect(shelf).to_have_count(1)
    expect(shelf.locator(".shelve-by")).to_have_text("por local")
    expect(shelf.locator(".shelve-reason-text")).to_have_text("limpieza de la sonda")
    expect(shelf.locator(".shelve-left")).to_have_text(re.compile(r"^quedan (29|30) min"))
    expect(form).to_be_hidden()
    expect(alert).to_have_count(0)  # out of the list and the counts while shelved
    expect(critical_count(page)).to_have_text("0")
    [listed] = gateway.request("GET", "/api/alerts/shelved")
    assert (listed["measurement"], listed["reason"]) == ("ph", "limpieza de la sonda")
    assert 1790 < listed["seconds_left"] <= 1800

    shelf.get_by_role("button", name="Reactivar").click()
    expect(shelf).to_have_count(0)
    expect(page.locator("#shelves .shelve-empty")).to_be_visible()
    expect(alert).to_have_count(1)  # settled at once on the latest reading: still critical
    expect(critical_count(page)).to_have_text("1")
    events = [e for e in gateway.request("GET", "/api/alerts/history") if e["kind"] == "shelf"]
    assert [(e["event"], e["by"]) for e in events][-2:] == [
        ("shelved", "local"),
        ("unshelved", "local"),
    ]


def test_a_tile_opens_the_form_for_its_measurement(page: Page, gateway: GatewayProcess) -> None:
    page.goto(gateway.url + "/")
    tile = page.locator('.tile[data-measurement="water_level"]')
    tile.get_by_role("button", name="Poner en espera las alarmas de Nivel").click()
    form = page.locator("#shelves .shelve-form")
    expect(form.locator(".shelve-measurement")).to_have_value("water_level")
    form.locator(".shelve-reason").fill("x" * 5)
    form.locator(".shelve-minutes").select_option("480")
    form.get_by_role("button", name="Cancelar").click()
    expect(form).to_be_hidden()
    assert gateway.request("GET", "/api/alerts/shelved") == []
