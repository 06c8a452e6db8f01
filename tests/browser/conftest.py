"""Browser-test fixtures: a headless Chromium per test, a gateway per module, a page per test.

The Playwright sync API is used, in plain test functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, GatewayProcess, new_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Chromium for one test.

    Per test, not per session: while the sync API is active, its event loop counts as
    running in this thread, and pytest-asyncio's loop (the autouse task-leak guard of
    tests/conftest.py) cannot run beside it. So it starts after that guard's set-up and
    is gone before its teardown. A launch costs well under a second.
    """
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=5000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway on the simulated devices, for the whole module."""
    running = GatewayProcess(tmp_path_factory.mktemp("gateway"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; the test fails if a script on it threw."""
    page = new_page(browser)
    yield page
    errors = page.page_errors  # type: ignore[attr-defined]
    page.context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
