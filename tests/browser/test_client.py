"""``gateway-client.js`` on its own, in Chromium: the schedule, ``?since=``, the fallback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.support import GatewayProcess, gaps, new_page, require_browser

require_browser()

from playwright.sync_api import Browser, Page  # noqa: E402

#: A client on /ws/sensors whose messages and states are kept in window.client*.
START_CLIENT = """async (options) => {
  const { GatewayClient } = await import("/static/gateway-client.js");
  window.clientMessages = [];
  window.clientStates = [];
  window.client = new GatewayClient({
    url: "/ws/sensors",
    onMessage: (m) => window.clientMessages.push(m),
    onStatus: (s) => window.clientStates.push(s),
    ...options,
  }).connect();
}"""


@pytest.fixture
def blank(browser: Browser, gateway: GatewayProcess) -> Iterator[Page]:
    """A page of the gateway's origin with nothing running on it."""
    page = new_page(browser)
    page.goto(f"{gateway.url}/static/vendor/vue.LICENSE.txt")
    yield page
    page.evaluate("window.client?.close()")
    errors = page.page_errors  # type: ignore[attr-defined]
    page.context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def sensor_seqs_delivered(page: Page) -> list[int]:
    seqs: list[int] = page.evaluate(
        "window.clientMessages.filter(m => m.type === 'sensor_update').map(m => m.seq)"
    )
    return seqs


def test_the_seed_schedule_with_jitter(blank: Page) -> None:
    result = blank.evaluate("""async () => {
      const { backoffDelay } = await import("/static/gateway-client.js");
      const exact = [1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay(n, 3000, { jitter: 0 }));
      const spread = [];
      for (let n = 1; n <= 10; n++) {
        const samples = Array.from({ length: 200 }, () => backoffDelay(n, 3000));
        spread.push({ n, min: Math.min(...samples), max: Math.max(...samples),
                      distinct: new Set(samples).size });
      }
      return { exact, spread };
    }""")
    assert result["exact"] == [3000, 6000, 9000, 12000, 15000, 15000, 15000]
    for row in result["spread"]:
        base = 3000 * min(row["n"], 5)
        assert 0.8 * base <= row["min"] <= row["max"] <= 1.2 * base, row
        assert row["distinct"] > 50, row  # screens do not come back in lockstep


def test_a_single_stream_resumes_with_since_in_the_url(blank: Page) -> None:
    blank.evaluate(START_CLIENT, {"reconnectInterval": 100})
    blank.wait_for_function(
        "window.clientMessages.filter(m => m.type === 'sensor_update').length >= 3"
    )
    blank.evaluate("window.__ws.refuse = true; window.__cutSockets()")
    blank.wait_for_timeout(1200)  # readings go by
    last = sensor_seqs_delivered(blank)[-1]
    blank.evaluate("window.__ws.refuse = false")
    blank.wait_for_function("window.client.isConnected")
    blank.wait_for_function(
        f"window.clientMessages.filter(m => m.type === 'sensor_update').at(-1).seq >= {last + 3}"
    )
    urls = [o["url"] for o in blank.evaluate("window.__ws.opened") if not o["refused"]]
    assert urls[0].endswith("/ws/sensors")
    assert urls[-1].endswith(f"/ws/sensors?since={last}")
    seqs = sensor_seqs_delivered(blank)
    assert gaps(seqs) == [], seqs  # none missed
    assert len(set(seqs)) == len(seqs), seqs  # none twice
    assert blank.evaluate("window.client.reconnectAttempts") == 0


def test_a_websocket_that_throws_is_retried_then_polled_then_probed(blank: Page) -> None:
    blank.evaluate("""() => {
      window.RealWebSocket = window.WebSocket;
      window.WebSocket = class { constructor() { throw new Error("blocked"); } };
    }""")
    blank.evaluate(
        START_CLIENT, {"reconnectInterval": 50, "maxReconnectAttempts": 2, "pollWait": 2}
    )
    blank.wait_for_function("window.client.status === 'polling'")
    blank.wait_for_function(
        "window.clientMessages.filter(m => m.type === 'sensor_update').length >= 3", timeout=5000
    )
    states = blank.evaluate("window.clientStates.map(s => `${s.status}:${s.reconnectAttempts}`)")
    assert states[:4] == ["connecting:0", "reconnecting:1", "reconnecting:2", "polling:2"], states
    polled = blank.evaluate("window.clientMessages.filter(m => m.type === 'sensor_update')")
    assert all(isinstance(m["seq"], int) and "ph" in m["data"] for m in polled)
    assert gaps([m["seq"] for m in polled]) == []  # long polls: one answer per reading

    blank.evaluate("() => { window.WebSocket = window.RealWebSocket; }")  # the probe gets through
    blank.wait_for_function("window.client.isConnected", timeout=3000)
    assert blank.evaluate("window.client.isPolling") is False
