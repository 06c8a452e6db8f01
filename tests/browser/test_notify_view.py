"""The dashboard's notification panel: hidden with no [[notify]] targets, and each
target's state (queued, last error) from GET /api/notify when there are some."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.support import GatewayProcess, free_port, require_browser

require_browser()

from playwright.sync_api import Page, expect  # noqa: E402


@pytest.fixture(scope="module")
def notifying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway whose one webhook target points at a port nobody listens on."""
    running = GatewayProcess(tmp_path_factory.mktemp("notifying"))
    dead = free_port()
    with running.config.open("a") as config:
        config.write(f'\n[[notify]]\nurl = "json://127.0.0.1:{dead}/hook"\n')
    running.start()
    yield running
    running.stop()


def until(condition: Any, timeout: float = 8.0) -> Any:
    """Poll the gateway's REST state (it announces nothing) until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_no_targets_no_panel(page: Page, gateway: GatewayProcess) -> None:
    assert gateway.request("GET", "/api/notify") == {"targets": []}
    page.goto(gateway.url + "/")
    expect(page.locator("#connection")).to_have_text("Conectado")
    expect(page.locator("#notify")).to_be_hidden()


def test_a_failing_target_shows_its_error(page: Page, notifying: GatewayProcess) -> None:
    notifying.simulate("ph", value=9.6)  # critical: one notification for the webhook
    [target] = until(
        lambda: [t for t in notifying.request("GET", "/api/notify")["targets"] if t["last_error"]]
    )
    page.goto(notifying.url + "/")
    item = page.locator("#notify .notify-target")
    expect(item).to_have_count(1)
    expect(item.locator(".notify-name")).to_have_text(target["name"])
    expect(item.locator(".notify-error")).to_contain_text("último error")
    expect(page.locator("#notify")).to_be_visible()
    assert "hook" not in item.inner_text()  # the URL is shown as scheme and host only
    notifying.simulate("ph", value=7.4)
