"""The overview in Chromium: a real Mosquitto, two gateways (EMBALSE_01, EMBALSE_02), a relay.

The processes are shared by the module; the tests run in file order (the last one
kills EMBALSE_01's gateway).
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.support import GatewayProcess, new_page, require_browser, screenshot_path

require_browser()

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.browser.test_relay_client import START_CLIENT, RelayProcess, broker  # noqa: E402

__all__ = ["broker"]  # the module-scoped Mosquitto fixture, shared


#: Counts the tones the page plays (WebAudio oscillators started) in ``window.__tones``.
AUDIO_RECORDER = """
window.__tones = 0;
window.AudioContext = class {
  constructor() { this.currentTime = 0; this.destination = {}; }
  createGain() { return { gain: {}, connect() {} }; }
  createOscillator() {
    return { frequency: {}, connect() {}, start() { window.__tones += 1; }, stop() {} };
  }
  close() {}
};
"""


class Fleet:
    def __init__(self, gateways: dict[str, GatewayProcess], relay: RelayProcess) -> None:
        self.gateways, self.relay = gateways, relay


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, broker: str) -> Iterator[Fleet]:
    gateways: dict[str, GatewayProcess] = {}
    for site in ("EMBALSE_01", "EMBALSE_02"):
        gateway = GatewayProcess(tmp_path_factory.mktemp(site))
        text = gateway.config.read_text().replace('"EMBALSE_01"', f'"{site}"')
        gateway.config.write_text(f'{text}\n[mqtt]\nurl = "{broker}"\n')
        gateways[site] = gateway
    relay = RelayProcess(tmp_path_factory.mktemp("relay"), broker)
    try:
        for process in (*gateways.values(), relay):
            process.start()
        deadline = time.monotonic() + 8
        while len(relay.request("GET", "/api/sites")) < 2:
            assert time.monotonic() < deadline, relay.log_tail()
            time.sleep(0.1)
        yield Fleet(gateways, relay)
    finally:
        relay.stop()
        for gateway in gateways.values():
            gateway.stop()


@pytest.fixture
def overview(browser: Browser, fleet: Fleet) -> Iterator[Page]:
    page = new_page(browser, AUDIO_RECORDER)
    page.goto(fleet.relay.url + "/")
    expect(page.locator(".site-card")).to_have_count(2)
    yield page
    errors = page.page_errors  # type: ignore[attr-defined]
    page.context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def test_the_overview_lists_both_sites_online_with_their_readings(overview: Page) -> None:
    for site in ("EMBALSE_01", "EMBALSE_02"):
        site_card = overview.locator(f'.site-card[data-site="{site}"]')
        expect(site_card.locator(".site-status")).to_have_attribute("data-status", "online")
        expect(site_card.locator('[data-measurement="ph"] dd')).to_have_text(re.compile(r"\d,\d\d"))
        expect(site_card.locator(".site-age")).to_contain_text("hace")
    expect(overview).to_have_title("Vista general")


def test_a_critical_puts_its_site_first_within_2_s(
    overview: Page, fleet: Fleet, tmp_path: Path
) -> None:
    first = overview.locator(".site-card").first
    sound = overview.locator("#sound")
    expect(sound).not_to_be_checked()  # off by default
    sound.check()
    fleet.gateways["EMBALSE_02"].simulate("ph", value=9.5)
    expect(first).to_have_attribute("data-site", "EMBALSE_02", timeout=2000)
    expect(first.locator('.site-count[data-severity="critical"]')).to_have_text(
        "1 críticas", timeout=2000
    )
    expect(first).to_have_class(re.compile("new-critical"), timeout=2000)
    expect(overview).to_have_title(re.compile(r"^\(1\) ⚠"), timeout=2000)
    listed = overview.locator('#all-alerts .alert[data-site="EMBALSE_02"]')
    expect(listed).to_have_attribute("data-severity", "critical")
    expect(first.locator('[data-measurement="ph"] dd')).to_have_text("9,50")
    overview.wait_for_function("window.__tones >= 2")  # the two-tone beep
    overview.screenshot(path=screenshot_path("overview.png", tmp_path))
    overview.reload()
    expect(overview.locator("#sound")).to_be_checked()  # kept in localStorage
    expect(overview.locator('.site-count[data-severity="critical"]').first).to_have_text(
        "1 críticas"
    )
    assert overview.evaluate("window.__tones") == 0  # a critical already there is not new


def test_the_alert_list_filters_by_site_and_severity(overview: Page) -> None:
    alerts = overview.locator("#all-alerts .alert")
    expect(alerts).to_have_count(1)
    overview.select_option("#filter-site", "EMBALSE_01")
    expect(alerts).to_have_count(0)
    overview.select_option("#filter-site", "EMBALSE_02")
    overview.select_option("#filter-severity", "warning")
    expect(alerts).to_have_count(0)
    overview.select_option("#filter-severity", "critical")
    expect(alerts).to_have_count(1)


def test_into_a_site_and_back(overview: Page) -> None:
    overview.locator('.site-card[data-site="EMBALSE_02"] .site-name').click()
    expect(overview).to_have_url(re.compile(r"/site\?reservoir=EMBALSE_02$"))
    expect(overview.locator("#reservoir")).to_contain_text("EMBALSE_02")
    expect(overview.locator('#counts [data-severity="critical"] .count-value')).to_have_text("1")
    expect(overview.locator("#alerts .alert")).to_have_count(1)
    opened = overview.evaluate("window.__ws.opened.map(o => o.url)")
    assert any("reservoir=EMBALSE_02" in url for url in opened)
    overview.locator("#back-to-overview").click()
    expect(overview.locator(".site-card")).to_have_count(2)


def test_a_dismissal_from_the_overview_reaches_the_owning_gateway(
    overview: Page, fleet: Fleet
) -> None:
    owner = fleet.gateways["EMBALSE_02"]
    assert len(owner.request("GET", "/api/alerts")) == 1
    overview.locator('#all-alerts .alert[data-site="EMBALSE_02"] .dismiss').click()
    site_card = overview.locator('.site-card[data-site="EMBALSE_02"]')
    expect(site_card.locator('.site-count[data-severity="critical"]')).to_have_text("0 críticas")
    expect(overview.locator("#all-alerts .alert")).to_have_count(0)
    assert owner.request("GET", "/api/alerts") == []  # dismissed at the gateway itself
    expect(overview).to_have_title("Vista general")


@pytest.fixture
def at_relay(browser: Browser, fleet: Fleet) -> Iterator[Page]:
    """A page of the relay's origin (which serves the client's modules now)."""
    page = new_page(browser)
    page.goto(fleet.relay.url + "/healthz")
    yield page
    page.evaluate("window.client?.close()")
    errors = page.page_errors  # type: ignore[attr-defined]
    page.context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def test_the_client_resumes_short_channels_of_a_relay_after_a_reconnect(at_relay: Page) -> None:
    """A relay answers ``alerts`` (with ``?reservoir=``) as ``alerts:EMBALSE_02``: the seq
    is kept under the name asked, so the resubscribe carries ``since``."""
    options = {"url": "/ws?reservoir=EMBALSE_02", "channels": ["alerts", "sensors"]}
    at_relay.evaluate(START_CLIENT, options)
    at_relay.wait_for_function(
        "window.client.lastSeq.sensors > 0 && 'alerts' in window.client.lastSeq"
    )
    assert set(at_relay.evaluate("Object.keys(window.client.lastSeq)")) == {"alerts", "sensors"}
    at_relay.evaluate("window.__cutSockets()")
    at_relay.wait_for_function("window.__ws.opened.length === 2 && window.client.isConnected")
    at_relay.wait_for_function("window.__ws.sent.length >= 4")
    resubscribed = [json.loads(m) for m in at_relay.evaluate("window.__ws.sent")[2:]]
    assert {m["channel"] for m in resubscribed} == {"alerts", "sensors"}
    assert all(isinstance(m.get("since"), int) for m in resubscribed)


def test_the_fallback_polls_one_site_of_a_relay_with_two(at_relay: Page) -> None:
    """``?reservoir=`` of the socket URL goes on every poll (a relay with two sites
    answers 404 without it)."""
    at_relay.evaluate("""() => {
      window.WebSocket = class { constructor() { throw new Error("blocked"); } };
    }""")
    options = {
        "url": "/ws?reservoir=EMBALSE_02",
        "channels": ["alerts", "sensors"],
        "reconnectInterval": 50,
        "maxReconnectAttempts": 1,
        "pollWait": 2,
    }
    at_relay.evaluate(START_CLIENT, options)
    at_relay.wait_for_function(
        "window.clientMessages.filter(m => m.type === 'sensor_update').length >= 2"
    )
    polled = at_relay.evaluate("window.clientMessages.filter(m => m.type === 'sensor_update')")
    assert {m["data"]["reservoir_id"] for m in polled} == {"EMBALSE_02"}


def test_a_killed_gateway_shows_offline_within_5_s(overview: Page, fleet: Fleet) -> None:
    killed = fleet.gateways["EMBALSE_01"]
    assert killed.process is not None
    killed.process.send_signal(signal.SIGKILL)  # no goodbye: the broker sends its last will
    site_card = overview.locator('.site-card[data-site="EMBALSE_01"]')
    expect(site_card.locator(".site-status")).to_have_attribute(
        "data-status", "offline", timeout=5000
    )
    expect(site_card.locator(".site-status")).to_contain_text("Fuera de línea desde")
    expect(overview.locator(".site-card").first).to_have_attribute("data-site", "EMBALSE_01")
