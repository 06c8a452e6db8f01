"""The dashboard at ``/`` in headless Chromium, against a gateway on simulated devices."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.support import (
    GatewayProcess,
    gaps,
    new_page,
    require_browser,
    screenshot_path,
    sensor_seqs,
)

require_browser()

from playwright.sync_api import Browser, Page, Route, expect  # noqa: E402

MEASUREMENTS = ("temperature", "ph", "conductivity", "water_level")
NUMBER = re.compile(r"^-?\d+(,\d+)?$")  # Spanish decimals: 7,38


def tile(page: Page, measurement: str):  # type: ignore[no-untyped-def]
    return page.locator(f'.tile[data-measurement="{measurement}"]')


def count(page: Page, severity: str) -> int:
    return int(page.locator(f'.count[data-severity="{severity}"] .count-value').inner_text())


def open_dashboard(page: Page, gateway: GatewayProcess, query: str = "") -> None:
    page.goto(f"{gateway.url}/{query}")
    expect(page.locator("#connection")).to_have_text("Conectado")


@pytest.fixture
def ph_restored(gateway: GatewayProcess) -> Iterator[None]:
    yield
    gateway.simulate("ph", value=7.4)


def test_the_page_shows_the_simulated_values(page: Page, gateway: GatewayProcess) -> None:
    open_dashboard(page, gateway)
    expect(page.locator("#reservoir")).to_have_text("Embalse EMBALSE_01")
    units = gateway.request("GET", "/api/info")["units"]
    for measurement in MEASUREMENTS:
        expect(tile(page, measurement)).to_have_attribute("data-quality", "good")
        expect(tile(page, measurement).locator(".tile-value")).to_have_text(NUMBER)
        expect(tile(page, measurement).locator(".tile-unit")).to_have_text(units[measurement])
    latest = gateway.request("GET", "/api/sensors/latest")
    for measurement in MEASUREMENTS:
        shown = tile(page, measurement).locator(".tile-value").inner_text()
        assert math.isclose(float(shown.replace(",", ".")), latest[measurement], rel_tol=0.05), (
            measurement,
            shown,
            latest[measurement],
        )
    expect(page.locator(".tile .trend path.trend-line")).to_have_count(4)  # a line in each
    expect(page).to_have_title(re.compile(r"^(\(\d+\) )?Embalse EMBALSE_01$"))  # (active alerts)


def fake_hour(gateway: GatewayProcess):  # type: ignore[no-untyped-def]
    """An hour of readings for the trend lines of the screenshot (a fresh gateway has none)."""
    latest = gateway.request("GET", "/api/sensors/latest")
    now = time.time()

    def handle(route: Route) -> None:
        measurement = re.search(r"measurement=(\w+)", route.request.url).group(1)  # type: ignore[union-attr]
        base = latest.get(measurement) or 1.0
        rows = [
            {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(at)),
                "value": round(
                    base * (1 + 0.02 * math.sin(at / 420) + 0.006 * math.sin(at / 53)), 3
                ),
                "quality": "good",
            }
            for at in range(int(now) - 3600, int(now) - 20, 10)
        ]
        route.fulfill(status=200, content_type="application/json", body=json.dumps(rows))

    return handle


def test_a_ph_set_in_the_simulator_shows_then_dismissing_drops_the_counts(
    page: Page, gateway: GatewayProcess, ph_restored: None, tmp_path: Path
) -> None:
    page.route("**/api/sensors/history?*", fake_hour(gateway))
    open_dashboard(page, gateway)
    critical, total = count(page, "critical"), count(page, "total")
    ph_alerts = page.locator('.alert[data-measurement="ph"][data-severity="critical"]')
    expect(ph_alerts).to_have_count(0)

    started = time.monotonic()
    gateway.simulate("ph", value=9.6)
    expect(tile(page, "ph").locator(".tile-value")).to_have_text("9,60", timeout=2000)
    expect(tile(page, "ph")).to_have_attribute("data-level", "critical", timeout=500)
    expect(ph_alerts).to_have_count(1, timeout=max(0.0, 2000 - (time.monotonic() - started) * 1000))
    expect(ph_alerts).to_contain_text("9,60 por encima del límite 9,00")
    expect(page.locator('.count[data-severity="critical"] .count-value')).to_have_text(
        str(critical + 1)
    )
    page.screenshot(path=screenshot_path("dashboard.png", tmp_path))

    ph_alerts.get_by_role("button", name=re.compile("Descartar")).click()
    expect(ph_alerts).to_have_count(0)
    expect(page.locator('.count[data-severity="critical"] .count-value')).to_have_text(
        str(critical)
    )
    expect(page.locator('.count[data-severity="total"] .count-value')).to_have_text(str(total))
    assert not [a for a in gateway.request("GET", "/api/alerts") if a["measurement"] == "ph"]


def test_an_offline_sensor_shows_as_offline_never_as_a_number(
    page: Page, gateway: GatewayProcess
) -> None:
    open_dashboard(page, gateway)
    temperature = tile(page, "temperature")
    expect(temperature).to_have_attribute("data-quality", "good")
    gateway.simulate("temperature", fault="timeout")
    try:
        expect(temperature).to_have_attribute("data-quality", "offline", timeout=6000)
        expect(temperature.locator(".tile-value")).to_have_text("Sin datos")
        expect(temperature.locator(".tile-quality")).to_contain_text("Fuera de línea")
    finally:
        gateway.simulate("temperature", fault=None)
    expect(temperature).to_have_attribute("data-quality", "good", timeout=4000)
    expect(temperature.locator(".tile-value")).to_have_text(NUMBER)


def test_a_dropped_connection_resumes_with_since_and_misses_no_reading(
    page: Page, gateway: GatewayProcess
) -> None:
    open_dashboard(page, gateway, "?reconnect=200")
    page.wait_for_function("window.__ws.count('sensor_update') >= 3")
    page.evaluate("window.__ws.refuse = true; window.__cutSockets()")
    expect(page.locator("#connection")).to_have_text(
        re.compile(r"Reconectando\.\.\. \(intento \d+\)")
    )
    before = sensor_seqs(page.evaluate("window.__ws.frames"))
    time.sleep(1.2)  # two or three readings go by while the page is away
    page.evaluate("window.__ws.refuse = false")
    expect(page.locator("#connection")).to_have_text("Conectado")
    page.wait_for_function(f"window.__ws.count('sensor_update') >= {len(before) + 3}")

    subscribes = [json.loads(s) for s in page.evaluate("window.__ws.sent")]
    resumed = [s for s in subscribes if s.get("channel") == "sensors" and "since" in s]
    assert resumed, subscribes
    assert resumed[-1]["since"] == before[-1]
    seqs = sensor_seqs(page.evaluate("window.__ws.frames"))
    assert seqs[: len(before)] == before
    assert seqs[len(before)] == before[-1] + 1  # the missed ones were replayed
    assert gaps(seqs) == [], seqs


def test_with_websockets_refused_it_keeps_updating_by_polling(
    browser: Browser, gateway: GatewayProcess, ph_restored: None
) -> None:
    page = new_page(browser, "window.__ws.refuse = true")
    try:
        page.goto(f"{gateway.url}/?reconnect=100&attempts=2&wait=5")
        status = page.locator("#connection")
        expect(status).to_have_attribute("data-state", "polling")
        expect(status).to_have_text("Conectado por consulta periódica (sin WebSocket)")
        for value, shown in ((7.9, "7,90"), (8.1, "8,10")):
            gateway.simulate("ph", value=value)
            expect(tile(page, "ph").locator(".tile-value")).to_have_text(shown, timeout=3000)
        assert all(opened["refused"] for opened in page.evaluate("window.__ws.opened"))

        page.evaluate("window.__ws.refuse = false")  # the WebSocket comes back: switch to it
        expect(status).to_have_text("Conectado", timeout=3000)
        gateway.simulate("ph", value=7.6)
        expect(tile(page, "ph").locator(".tile-value")).to_have_text("7,60", timeout=3000)
        assert page.page_errors == []  # type: ignore[attr-defined]
    finally:
        page.context.close()


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1920, 1080)])
def test_readable_on_a_phone_and_on_a_wall(
    browser: Browser, gateway: GatewayProcess, width: int, height: int
) -> None:
    page = new_page(browser, viewport={"width": width, "height": height})
    try:
        open_dashboard(page, gateway)
        expect(tile(page, "ph").locator(".tile-value")).to_have_text(NUMBER)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
        tops = {round(tile(page, m).bounding_box()["y"]) for m in MEASUREMENTS}  # type: ignore[index]
        size = page.eval_on_selector(
            '.tile[data-measurement="ph"] .tile-value',
            "el => parseFloat(getComputedStyle(el).fontSize)",
        )
        if width < 600:
            assert len(tops) == 4  # one tile per row
            assert size >= 36
        else:
            assert len(tops) == 1  # all four in one row
            assert size >= 64
    finally:
        page.context.close()
