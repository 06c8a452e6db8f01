"""docs/seed-walkthrough.md in Chromium: the DevTools snippet and the Vue block, verbatim."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.browser.support import GatewayProcess, new_page, require_browser
from tests.walkthrough import snippet

require_browser()

from playwright.sync_api import Browser, ConsoleMessage, expect  # noqa: E402

VUE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<script type="importmap">{"imports": {"vue": "/static/vendor/vue.esm-browser.prod.js"}}</script>
</head><body><div id="app"></div>
<script type="module">
%s
</script></body></html>
"""


def localhost(gateway: GatewayProcess) -> str:
    """The gateway as the walkthrough names it: localhost (Chromium tries ::1 too)."""
    return f"localhost:{urlsplit(gateway.url).port}"


def test_the_devtools_snippet(browser: Browser, gateway: GatewayProcess) -> None:
    page = new_page(browser)
    logged: list[ConsoleMessage] = []
    page.on("console", lambda message: logged.append(message))
    page.goto(f"http://{localhost(gateway)}/")
    # As typed into the console: a script run as is (page.evaluate would call the
    # arrow function that is the snippet's last value).
    page.add_script_tag(content=snippet("devtools").replace("localhost:8000", localhost(gateway)))
    page.wait_for_function("window.__ws.frames.filter(f => f.includes('pong')).length >= 1")
    # Events come in order: the pong's console line came before the answer above.
    received = [m.args[1].json_value() for m in logged if m.text.startswith("Received:")]
    page.context.close()
    types = [m["type"] for m in received if m["type"] != "heartbeat"]  # type: ignore[index]
    assert types[:2] == ["initial", "pong"], received


def test_the_vue_block_shows_the_counts(browser: Browser, gateway: GatewayProcess) -> None:
    page = new_page(browser)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"http://{localhost(gateway)}/static/vendor/vue.LICENSE.txt")
    page.set_content(VUE_PAGE % snippet("vue"))
    shown = page.locator("#seed-alerts")
    try:
        expect(shown).to_have_text("Conectado: 0 alertas (0 críticas)")
        gateway.simulate("ph", value=9.5)
        expect(shown).to_have_text("Conectado: 1 alertas (1 críticas)")
    finally:
        gateway.simulate("ph", value=7.2)
    expect(shown).to_have_text("Conectado: 0 alertas (0 críticas)")
    errors = page.page_errors  # type: ignore[attr-defined]
    page.context.close()
    assert not errors
    assert f"[WebSocket] Connected: ws://{localhost(gateway)}/ws/alerts" in console, console
    assert "[WebSocket] Message received: update" in console
