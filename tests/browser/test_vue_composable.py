"""``useWebSocket`` / ``useAlertsWebSocket`` in Chromium, with the vendored Vue ESM build.

The test page is written into a document loaded from the gateway (``set_content``), so
it has the gateway's origin and address space: the WebSocket Origin check passes,
Chromium's local-network checks do not apply (a page Playwright fulfils itself
counts as public, and may not open sockets to 127.0.0.1), and the modules load
from /static/.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator

import pytest

from tests.browser.support import TIMER_TRACKER, GatewayProcess, new_page, require_browser

require_browser()

from playwright.sync_api import Browser, Page, expect  # noqa: E402

TEST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<script type="importmap">{"imports": {"vue": "/static/vendor/vue.esm-browser.prod.js"}}</script>
<script type="module">
import { createApp } from "vue";
import { useAlertsWebSocket, useWebSocket } from "/static/use-websocket.js";

window.probe = { messages: [] };
window.mountProbe = (kind, options) => {
  const app = createApp({
    setup() {
      const onMessage = (message) => window.probe.messages.push(message);
      const ws = kind === "alerts"
        ? useAlertsWebSocket({ onMessage, ...options })
        : useWebSocket({ onMessage, ...options });
      window.probe.api = ws;
      return ws;
    },
    // The seed's header.
    template: `<header id="seed-status">{{ isConnected
      ? "Conectado" : "Reconectando... (intento " + reconnectAttempts + ")" }}</header>`,
  });
  app.mount("#app");
  window.probe.app = app;
  const header = document.getElementById("seed-status");
  window.probe.headers = [header.textContent];
  new MutationObserver(() => window.probe.headers.push(header.textContent)).observe(
    header, { childList: true, characterData: true, subtree: true });
};
// The seed's way: useAlertsWebSocket(handleAlertUpdate), the handler given the counts.
window.mountSeed = (options) => {
  window.probe.counts = [];
  const app = createApp({
    setup() {
      const handleAlertUpdate = (data, message) =>
        window.probe.counts.push({ data, type: message.type });
      const ws = useAlertsWebSocket(handleAlertUpdate, options);
      window.probe.api = ws;
      return ws;
    },
    template: `<header id="seed-status">{{ isConnected ? "Conectado" : "..." }}</header>`,
  });
  app.mount("#app");
  window.probe.app = app;
};
window.unmountProbe = () => window.probe.app.unmount();
window.probeReady = true;
</script></head>
<body><div id="app"></div></body></html>
"""


@pytest.fixture
def vue_page(browser: Browser, gateway: GatewayProcess) -> Iterator[Page]:
    page = new_page(browser, TIMER_TRACKER)
    page.goto(f"{gateway.url}/static/vendor/vue.LICENSE.txt")  # any page of the gateway's
    page.set_content(TEST_PAGE)
    page.wait_for_function("window.probeReady === true")
    yield page
    errors = page.page_errors  # type: ignore[attr-defined]
    page.context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def mount(page: Page, kind: str, **options: object) -> None:
    page.evaluate(f"window.mountProbe({json.dumps(kind)}, {json.dumps(options)})")


def messages(page: Page, kind: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = page.evaluate(
        f"window.probe.messages.filter(m => m.type === {json.dumps(kind)})"
    )
    return found


def connections(gateway: GatewayProcess) -> int:
    return int(gateway.request("GET", "/healthz")["connections"])


def test_use_alerts_websocket_connects_receives_and_pings(
    vue_page: Page, gateway: GatewayProcess
) -> None:
    mount(vue_page, "alerts")
    expect(vue_page.locator("#seed-status")).to_have_text("Conectado")
    vue_page.wait_for_function("window.probe.messages.some(m => m.type === 'initial')")
    initial = messages(vue_page, "initial")[0]
    assert set(initial["data"]) >= {"total", "critical", "warning", "info"}  # type: ignore[arg-type]
    assert vue_page.evaluate("window.probe.api.ping()") is True
    vue_page.wait_for_function("window.probe.messages.some(m => m.type === 'pong')")
    assert vue_page.evaluate("window.probe.api.send({action: 'refresh'})") is True
    vue_page.wait_for_function("window.probe.messages.some(m => m.type === 'refresh')")
    state = vue_page.evaluate(
        "({connected: window.probe.api.isConnected.value,"
        " attempts: window.probe.api.reconnectAttempts.value})"
    )
    assert state == {"connected": True, "attempts": 0}
    opened = vue_page.evaluate("window.__ws.opened")
    assert [o["url"] for o in opened] == [gateway.url.replace("http", "ws") + "/ws/alerts"]
    assert opened[0]["protocols"] == ["gateway.v1"]  # no token: no bearer protocol


def test_reconnects_on_the_seed_schedule_and_unmount_leaves_no_timer_or_socket(
    vue_page: Page,
) -> None:
    vue_page.evaluate("window.__ws.refuse = true")
    mount(vue_page, "plain", url="/ws/alerts", reconnectInterval=100, maxReconnectAttempts=10)
    vue_page.wait_for_function("window.__ws.opened.length >= 4")
    headers = vue_page.evaluate("window.probe.headers")
    assert [f"Reconectando... (intento {n})" for n in (1, 2, 3)] == headers[1:4], headers
    at = [o["at"] for o in vue_page.evaluate("window.__ws.opened")]
    waits = [b - a for a, b in itertools.pairwise(at)][:3]
    for n, waited in enumerate(waits, start=1):  # 100, 200, 300 ms, each +-20 %
        assert 0.8 * 100 * n - 5 <= waited <= 1.2 * 100 * n + 250, waits

    vue_page.evaluate("window.unmountProbe()")
    assert vue_page.evaluate("window.__timers.size") == 0
    opened = vue_page.evaluate("window.__ws.opened.length")
    time.sleep(0.8)  # longer than the next retry would have waited
    assert vue_page.evaluate("window.__ws.opened.length") == opened
    assert vue_page.evaluate("window.__ws.sockets.size") == 0
    assert vue_page.evaluate("window.__timers.size") == 0


def test_unmount_closes_an_open_socket(vue_page: Page, gateway: GatewayProcess) -> None:
    before = connections(gateway)
    mount(vue_page, "alerts", reconnectInterval=100)
    expect(vue_page.locator("#seed-status")).to_have_text("Conectado")
    assert connections(gateway) >= 1
    vue_page.evaluate("window.unmountProbe()")
    vue_page.wait_for_function("window.__ws.sockets.size === 0")
    assert vue_page.evaluate("window.__timers.size") == 0
    deadline = time.monotonic() + 3
    while connections(gateway) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert connections(gateway) <= before  # the gateway saw it go
    time.sleep(0.5)
    assert len(vue_page.evaluate("window.__ws.opened")) == 1  # and nothing reconnected


def test_falls_back_to_polling_and_unmount_stops_it(vue_page: Page) -> None:
    polls: list[str] = []
    vue_page.on(
        "request", lambda r: polls.append(r.url) if "/api/alerts/summary" in r.url else None
    )
    vue_page.evaluate("window.__ws.refuse = true")
    mount(vue_page, "alerts", reconnectInterval=50, maxReconnectAttempts=1, pollWait=2)
    vue_page.wait_for_function("window.probe.api.status.value === 'polling'")
    vue_page.wait_for_function("window.probe.messages.some(m => m.type === 'update')")
    update = messages(vue_page, "update")[0]
    assert isinstance(update["seq"], int)
    assert "total" in update["data"]  # type: ignore[operator]
    assert vue_page.evaluate("window.probe.api.isConnected.value") is False
    assert vue_page.evaluate("window.probe.api.reconnectAttempts.value") == 1
    assert polls, "no poll went out"

    vue_page.evaluate("window.unmountProbe()")
    assert vue_page.evaluate("window.__timers.size") == 0
    sent = len(polls)
    time.sleep(1.0)
    assert len(polls) == sent  # no poll after unmount
    assert vue_page.evaluate("window.probe.api.status.value") == "closed"


def console_of(page: Page) -> list[str]:
    lines: list[str] = []
    page.on("console", lambda message: lines.append(message.text))
    return lines


def counted(page: Page, kind: str) -> str:
    return f"window.probe.counts.some(c => c.type === {json.dumps(kind)})"


def test_the_seeds_handler_gets_the_counts_only_and_the_console_says_so(
    vue_page: Page, gateway: GatewayProcess
) -> None:
    console = console_of(vue_page)
    vue_page.evaluate("window.mountSeed({})")
    vue_page.wait_for_function(counted(vue_page, "initial"))
    assert vue_page.evaluate("window.probe.api.ping()") is True
    vue_page.wait_for_function("window.__ws.count('pong') === 1")
    assert vue_page.evaluate("window.probe.api.send({action: 'refresh'})") is True
    vue_page.wait_for_function(counted(vue_page, "refresh"))
    gateway.simulate("ph", value=9.5)  # critical
    vue_page.wait_for_function("window.probe.counts.some(c => c.data.critical === 1)")
    [alert] = gateway.request("GET", "/api/alerts")
    gateway.request("POST", "/alerts/dismiss", {"alert_id": alert["id"]})
    vue_page.wait_for_function("window.probe.counts.at(-1).data.total === 0")
    gateway.simulate("ph", value=7.2)  # back to normal for the next tests
    vue_page.wait_for_function("window.__ws.count('dismissed') === 1")

    counts = vue_page.evaluate("window.probe.counts")
    assert {c["type"] for c in counts} == {"initial", "refresh", "update"}  # no pong, dismissed
    for c in counts:
        assert set(c["data"]) == {"total", "critical", "warning", "info"}
        assert isinstance(c["data"]["total"], int)
    assert [c["data"]["total"] for c in counts if c["type"] == "update"][-2:] == [1, 0]
    url = gateway.url.replace("http", "ws") + "/ws/alerts"
    assert f"[WebSocket] Connected: {url}" in console
    for kind in ("initial", "pong", "refresh", "update", "dismissed"):
        assert f"[WebSocket] Message received: {kind}" in console, console


def test_quiet_keeps_the_console_clean(vue_page: Page) -> None:
    console = console_of(vue_page)
    vue_page.evaluate("window.mountSeed({quiet: true})")
    vue_page.wait_for_function(counted(vue_page, "initial"))
    assert vue_page.evaluate("window.probe.api.ping()") is True
    vue_page.wait_for_function("window.__ws.count('pong') === 1")
    vue_page.evaluate("window.unmountProbe()")
    mount(vue_page, "plain", url="/ws/alerts", logging=False)
    vue_page.wait_for_function("window.probe.messages.some(m => m.type === 'initial')")
    assert [line for line in console if "[WebSocket]" in line] == []


def test_the_console_tells_of_a_drop_and_the_reconnect(vue_page: Page) -> None:
    console = console_of(vue_page)
    vue_page.evaluate("window.__ws.refuse = true")
    mount(vue_page, "plain", url="/ws/alerts", reconnectInterval=100, maxReconnectAttempts=10)
    vue_page.wait_for_function("window.__ws.opened.length >= 3")
    vue_page.evaluate("window.unmountProbe()")
    lines = [line for line in console if "[WebSocket]" in line]
    assert "[WebSocket] Disconnected: 1006" in lines, lines
    assert any(
        re.fullmatch(r"\[WebSocket\] Reconnecting in 0\.\d+s \(attempt 1 of 10\)", line)
        for line in lines
    ), lines
