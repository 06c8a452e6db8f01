"""The history page in Chromium: the readings history drawn from the buckets, the alert
log with who dismissed, CSV links, English and Spanish, and the dashboard's link to it."""

from __future__ import annotations

import csv
import io
import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from gateway.alerts.tables import SCHEMA
from gateway.service import DB_NAME
from tests.browser.support import GatewayProcess, require_browser, screenshot_path

require_browser()

from playwright.sync_api import Page, expect  # noqa: E402

DAYS = 8
SECRET = "history-view-test-secret-0123456789"
TOKEN = jwt.encode(
    {"sub": "ana", "role": "operator", "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256"
)
EVERY = 60.0  # s between seeded readings: several in each bucket, so the band shows


def seed(data_dir: Path, now: float) -> None:
    """DAYS of readings every EVERY s, as a gateway would have stored them: a daily cycle."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(data_dir / DB_NAME)
    db.executescript(SCHEMA)
    rows = []
    for i in range(int(DAYS * 86400 / EVERY)):
        at = now - DAYS * 86400 + i * EVERY
        day = math.sin(2 * math.pi * at / 86400)
        wobble = math.sin(at / 977.0) + math.sin(i * 2.3)  # spread within each bucket
        rows += [
            ("ph", at, 7.2 + 0.25 * day + 0.05 * wobble + i / 20000, "good", "ph-probe"),
            ("temperature", at, 18.0 + 3.0 * day + 0.4 * wobble, "good", "temperature-probe"),
        ]
    db.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway (tokens needed) with a week of stored readings, and one alert raised and
    dismissed by ana."""
    running = GatewayProcess(tmp_path_factory.mktemp("history"), jwt_secret=SECRET)
    seed(running.directory / "data", time.time())
    running.start()
    running.request("PUT", "/api/simulator/ph", {"value": 9.6}, token=TOKEN)
    alert = until(lambda: running.request("GET", "/api/alerts", token=TOKEN))[0]
    running.request("POST", "/alerts/dismiss", {"alert_id": alert["id"]}, token=TOKEN)
    running.request("PUT", "/api/simulator/ph", {"value": 7.3}, token=TOKEN)
    yield running
    running.stop()


def until(condition: object, timeout: float = 8.0) -> list[dict[str, object]]:
    """Poll the gateway's REST state until ``condition()`` is non-empty."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():  # type: ignore[operator]
            return value  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_history_view_draws_min_max_band_and_average(
    page: Page, gateway: GatewayProcess, tmp_path: Path
) -> None:
    page.goto(gateway.url + "/static/history.html?lang=en&measurement=temperature#token=" + TOKEN)
    panel = page.locator("#history")
    expect(panel).to_have_attribute("data-state", "ready")
    expect(panel.locator(".history-measurement")).to_have_value("temperature")
    panel.locator(".history-measurement").select_option("ph")
    expect(panel).to_have_attribute("data-state", "ready")
    expect(page.locator("h1")).to_have_text("History")
    expect(panel.locator(".history-measurement")).to_have_value("ph")
    expect(panel.locator('[data-range="24h"]')).to_have_attribute("aria-pressed", "true")
    points_24h = int(panel.locator("svg").get_attribute("data-points") or 0)
    assert 280 <= points_24h <= 290  # 5 min buckets over 24 h
    panel.locator('[data-range="7d"]').click()
    expect(panel.locator('[data-range="7d"]')).to_have_attribute("aria-pressed", "true")
    expect(panel).to_have_attribute("data-state", "ready")
    points_7d = int(panel.locator("svg").get_attribute("data-points") or 0)
    assert points_7d in (336, 337)  # 30 min buckets over 7 days, and a partial one
    expect(panel.locator(".history-band")).not_to_have_count(0)
    expect(panel.locator(".history-avg")).not_to_have_count(0)
    expect(panel.locator(".history-summary")).to_contain_text("readings")
    page.screenshot(path=screenshot_path("history-view.png", tmp_path), full_page=True)
    href = panel.locator(".csv-link").get_attribute("href") or ""
    assert "bucket=1800" in href
    assert href.endswith("format=csv")
    answer = page.request.get(
        gateway.url + "/" + href, headers={"Authorization": "Bearer " + TOKEN}
    )
    table = list(csv.DictReader(io.StringIO(answer.text())))
    assert len(table) == points_7d
    assert all(float(r["min"]) <= float(r["avg"]) <= float(r["max"]) for r in table)


def test_alert_log_shows_who_dismissed_and_filters(
    page: Page, gateway: GatewayProcess, tmp_path: Path
) -> None:
    page.goto(gateway.url + "/static/history.html?lang=en#token=" + TOKEN)
    log = page.locator("#alert-log")
    expect(log).to_have_attribute("data-state", "ready")
    dismissed = log.locator('.log-row[data-event="dismissed"]')
    expect(dismissed).to_have_count(1)
    expect(dismissed.locator(".log-by")).to_have_text("ana")  # the token's sub
    expect(dismissed.locator(".log-severity")).to_have_text("Critical")
    page.screenshot(path=screenshot_path("alert-log.png", tmp_path), full_page=True)
    with page.expect_download() as download:  # fetched with the token, saved from memory
        log.locator(".csv-link").click()
    saved = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(saved)))
    assert [(r["event"], r["by"]) for r in rows if r["event"] == "dismissed"] == [
        ("dismissed", "ana")
    ]
    assert download.value.suggested_filename == "EMBALSE_01-alerts.csv"
    log.locator('select[name="event"]').select_option("raised")
    expect(log.locator(".log-row")).to_have_count(1)
    expect(log.locator('.log-row[data-event="raised"]')).to_have_count(1)
    assert "event=raised" in (log.locator(".csv-link").get_attribute("href") or "")
    log.locator('select[name="severity"]').select_option("info")
    expect(log.locator(".log-row")).to_have_count(0)
    expect(log.locator(".log-count")).to_have_text("No events with these filters")


def test_spanish_by_default_and_the_dashboard_links_in_its_language(
    page: Page, gateway: GatewayProcess
) -> None:
    page.goto(gateway.url + "/static/history.html#token=" + TOKEN)
    expect(page.locator("h1")).to_have_text("Historial")
    expect(page.locator("#alert-log .log-heading")).to_have_text("Registro de alertas")
    page.goto(gateway.url + "/?lang=en#token=" + TOKEN)
    expect(page.locator("#connection")).to_have_text("Connected")
    expect(page.locator("h1")).to_have_text("Reservoir dashboard")
    page.locator("#history-link").click()
    expect(page.locator("h1")).to_have_text("History")
    assert page.url.endswith("/static/history.html?lang=en")
    page.locator("#back").click()
    expect(page.locator("#history-link")).to_have_text("History and alert log")


def test_english_has_every_key_of_spanish(page: Page, gateway: GatewayProcess) -> None:
    page.goto(gateway.url + "/static/history.html")
    missing = page.evaluate(
        """async () => {
          const es = (await import("./static/i18n/es.js")).default;
          const en = (await import("./static/i18n/en.js")).default;
          const pages = (await import("./static/i18n/history.js")).default;
          const gaps = [];
          const walk = (a, b, where) => {
            for (const [key, value] of Object.entries(a)) {
              if (!(key in b) || typeof b[key] !== typeof value) gaps.push(where + key);
              else if (typeof value === "object") walk(value, b[key], `${where}${key}.`);
            }
          };
          walk(es, en, "en.js: ");
          walk(en, es, "es.js: ");
          walk(pages.es, pages.en, "history.js en: ");
          walk(pages.en, pages.es, "history.js es: ");
          return gaps;
        }"""
    )
    assert missing == []
