"""``gateway-client.js`` in Chromium against a relay: heartbeats, channels, the fallback.

A relay serves no pages, so the page and the client's modules are served at the
relay's origin by Playwright from gateway/static (the very files a gateway serves):
the client then talks to the relay as a dashboard talks to its gateway.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.loopback import Broker, mosquitto_installed
from tests.browser.support import REPO, GatewayProcess, gaps, new_page, require_browser
from tests.configs import table

require_browser()

from playwright.sync_api import Browser, Page, Route  # noqa: E402

if not mosquitto_installed():
    pytest.skip("mosquitto is not installed (.ci/run installs it)", allow_module_level=True)

STATIC = REPO / "gateway" / "static"
HEARTBEAT = 0.3  # s, the relay's
START_CLIENT = """async (options) => {
  const { GatewayClient } = await import("/static/gateway-client.js");
  window.clientMessages = [];
  window.clientStates = [];
  window.client = new GatewayClient({
    onMessage: (m) => window.clientMessages.push(m),
    onStatus: (s) => window.clientStates.push(s),
    ...options,
  }).connect();
}"""


def _listening(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {port}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    broker = Broker(tmp_path_factory.mktemp("broker"))
    process = subprocess.Popen(broker.argv)  # the sync API's thread: no event loop here
    try:
        _listening(broker.port)
        yield broker.url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(5)


class RelayProcess(GatewayProcess):
    """``sensor-gateway relay`` on its own port, heartbeats every HEARTBEAT s."""

    kind = "relay"

    def __init__(self, directory: Path, broker: str) -> None:
        super().__init__(directory)
        self.log = directory / "relay.log"
        server = table("server", port=self.port, heartbeat_interval=HEARTBEAT)
        self.config.write_text(server + table("mqtt", url=broker))

    def arguments(self) -> list[str]:
        return ["relay", "-c", str(self.config)]


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, broker: str) -> Iterator[RelayProcess]:
    """A relay, and the simulated gateway (EMBALSE_01) it relays."""
    gateway = GatewayProcess(tmp_path_factory.mktemp("gateway"))
    with gateway.config.open("a") as config:
        config.write(f'\n[mqtt]\nurl = "{broker}"\n')
    running = RelayProcess(tmp_path_factory.mktemp("relay"), broker)
    gateway.start()
    running.start()
    try:
        deadline = time.monotonic() + 8
        while not running.request("GET", "/api/sites"):
            assert time.monotonic() < deadline, running.log_tail()
            time.sleep(0.1)
        yield running
    finally:
        running.stop()
        gateway.stop()


def _static(route: Route) -> None:
    name = route.request.url.split("/static/", 1)[1].split("?")[0]
    route.fulfill(path=STATIC / name)


@pytest.fixture
def at_relay(browser: Browser, relay: RelayProcess) -> Iterator[Page]:
    """A page of the relay's origin with the client's modules loaded (from /static/)."""
    page = new_page(browser)
    page.goto(f"{relay.url}/healthz")
    page.route(f"{relay.url}/static/**", _static)
    page.evaluate('import("/static/gateway-client.js")')  # and the modules it imports
    page.unroute_all()  # while a route is set, Chromium's WebSockets to the origin fail
    yield page
    page.evaluate("window.client?.close()")
    errors = page.page_errors  # type: ignore[attr-defined]
    page.context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def test_heartbeats_keep_an_idle_stream_open(at_relay: Page) -> None:
    """Alert counts rarely change: only the relay's heartbeats beat the idle timeout."""
    idle_ms = int(HEARTBEAT * 1000 * 4)
    options = {"url": "/ws/alerts?reservoir=EMBALSE_01", "idleTimeout": idle_ms}
    at_relay.evaluate(START_CLIENT, options)
    at_relay.wait_for_function("window.__ws.count('heartbeat') >= 8")  # > 2 idle timeouts
    assert len(at_relay.evaluate("window.__ws.opened")) == 1
    assert at_relay.evaluate("window.client.isConnected") is True
    first = at_relay.evaluate("window.clientMessages[0]")
    assert first["type"] == "initial"


def test_channels_on_one_socket(at_relay: Page) -> None:
    at_relay.evaluate(START_CLIENT, {"url": "/ws", "channels": ["alerts", "sensors"]})
    at_relay.wait_for_function(
        "window.clientMessages.filter(m => m.type === 'sensor_update').length >= 2"
    )
    messages = at_relay.evaluate("window.clientMessages")
    assert {m["channel"] for m in messages if m["type"] == "initial"} == {"alerts:EMBALSE_01"}
    updates = [m for m in messages if m["type"] == "sensor_update"]
    assert {m["data"]["reservoir_id"] for m in updates} == {"EMBALSE_01"}


def test_the_fallback_long_polls_a_relay(at_relay: Page) -> None:
    at_relay.evaluate("""() => {
      window.WebSocket = class { constructor() { throw new Error("blocked"); } };
    }""")
    options = {"url": "/ws/sensors", "reconnectInterval": 50, "maxReconnectAttempts": 2}
    at_relay.evaluate(START_CLIENT, {**options, "pollWait": 2})
    at_relay.wait_for_function("window.client.status === 'polling'")
    at_relay.wait_for_function(
        "window.clientMessages.filter(m => m.type === 'sensor_update').length >= 3", timeout=5000
    )
    polled = at_relay.evaluate("window.clientMessages.filter(m => m.type === 'sensor_update')")
    assert all(m["data"]["reservoir_id"] == "EMBALSE_01" for m in polled)
    assert gaps([m["seq"] for m in polled]) == []  # long polls: one answer per reading
