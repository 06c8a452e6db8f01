"""The gateway stops and comes back (same port, same data): the dashboard says so, and
picks up again without skipping a reading."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.support import GatewayProcess, gaps, require_browser, runs, sensor_seqs

require_browser()

from playwright.sync_api import Page, expect  # noqa: E402

RECONNECTING = re.compile(r"^Reconectando\.\.\. \(intento (\d+)\)$")


@pytest.fixture
def own_gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway of this test's own, on a port picked up front so a restart can reuse it."""
    running = GatewayProcess(tmp_path)
    running.start()
    yield running
    running.stop()


def attempts_shown(page: Page) -> list[int]:
    texts: list[str] = page.evaluate("window.__statusLog")
    return [int(m.group(1)) for t in texts if (m := RECONNECTING.match(t))]


def test_stopped_it_counts_attempts_restarted_it_resumes_without_a_gap(
    page: Page, own_gateway: GatewayProcess
) -> None:
    port = own_gateway.port
    page.goto(f"{own_gateway.url}/?reconnect=200")
    status = page.locator("#connection")
    expect(status).to_have_text("Conectado")
    page.wait_for_function("window.__ws.count('sensor_update') >= 3")

    own_gateway.stop()  # SIGTERM: the page gets a 1001 close, then nothing answers
    expect(status).to_have_text(RECONNECTING)
    page.wait_for_function(
        "window.__statusLog.filter(t => t.startsWith('Reconectando')).length >= 3", timeout=5000
    )
    before = sensor_seqs(page.evaluate("window.__ws.frames"))

    own_gateway.start()
    assert own_gateway.url.endswith(f":{port}")
    started = time.monotonic()
    expect(status).to_have_text("Conectado", timeout=5000)
    print(f"reconnected {time.monotonic() - started:.2f} s after the restart")
    page.wait_for_function(f"window.__ws.count('sensor_update') >= {len(before) + 3}")

    shown = attempts_shown(page)
    assert shown[:3] == [1, 2, 3], shown  # N counts up, one by one
    assert shown == sorted(shown)
    seqs = sensor_seqs(page.evaluate("window.__ws.frames"))
    # The restarted gateway counts from 1 again (a second run of seqs, unless the page
    # resumed from a seq the new gateway had not yet reached); none skipped in either.
    assert len(runs(seqs)) <= 2, seqs
    assert gaps(seqs) == [], seqs
    expect(page.locator('.tile[data-measurement="ph"] .tile-value')).to_have_text(
        re.compile(r"^\d+,\d+$")
    )
