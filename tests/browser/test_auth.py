"""With auth on: the dashboard takes its token from the URL fragment, sends it as the
WebSocket subprotocol and as ``Authorization`` on fetches, and never in a URL."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import jwt
import pytest

from tests.browser.support import GatewayProcess, require_browser

require_browser()

from playwright.sync_api import Page, expect  # noqa: E402

SECRET = "browser-tests-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    running = GatewayProcess(tmp_path_factory.mktemp("auth-gateway"), jwt_secret=SECRET)
    running.start()
    yield running
    running.stop()


def token() -> str:
    return jwt.encode({"sub": "wall-1", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")


def test_the_token_travels_in_the_subprotocol_and_headers_never_in_a_url(
    page: Page, gateway: GatewayProcess
) -> None:
    secret = token()
    requests: list[str] = []
    authorized: list[str] = []

    def seen(request) -> None:  # type: ignore[no-untyped-def]
        requests.append(request.url)
        if request.headers.get("authorization") == f"Bearer {secret}":
            authorized.append(request.url)

    page.on("request", seen)
    page.goto(f"{gateway.url}/#token={secret}")
    expect(page.locator("#connection")).to_have_text("Conectado")
    expect(page.locator('.tile[data-measurement="ph"]')).to_have_attribute("data-quality", "good")
    expect(page.locator("#reservoir")).to_have_text("Embalse EMBALSE_01")  # /api/info, with it

    assert secret not in page.url  # taken out of the address bar...
    assert page.evaluate("sessionStorage.getItem('sensor-gateway.token')") == secret  # ...kept
    opened = page.evaluate("window.__ws.opened")
    assert opened[0]["protocols"] == ["gateway.v1", f"bearer.{secret}"]
    assert all(secret not in url for url in requests + [o["url"] for o in opened])
    assert any("/api/info" in url for url in authorized)

    page.reload()  # no fragment now: the tab still has its token
    expect(page.locator("#connection")).to_have_text("Conectado")
    assert page.locator("#notice").inner_text() == ""


def test_without_a_token_the_page_says_access_is_denied(
    page: Page, gateway: GatewayProcess
) -> None:
    page.goto(f"{gateway.url}/?reconnect=100")
    expect(page.locator("#notice")).to_contain_text("Acceso denegado")
    expect(page.locator("#connection")).to_have_text(
        re.compile(r"Reconectando\.\.\. \(intento \d+\)")
    )
