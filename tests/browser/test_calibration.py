"""The calibration screen in Chromium: from the pH tile, the guided sequence mid -> low ->
high against the simulated circuit; the slope it reports changes, on screen and in
GET /api/probes; a value the circuit refuses shows as an error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.support import GatewayProcess, require_browser

require_browser()

from playwright.sync_api import Page, expect  # noqa: E402


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The circuits answer at once: a calibration step takes the real one 0.9 s, waiting
    its turn behind a reading, and this screen's timing is not what is tested here."""
    running = GatewayProcess(tmp_path_factory.mktemp("gateway"), fast=True)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def aged(gateway: GatewayProcess) -> GatewayProcess:
    """The pH probe has aged since the factory: 14 mV of offset, weaker slopes."""
    gateway.simulate("ph", probe={"offset_mv": 14.0, "acid": 93.0, "base": 96.0})
    return gateway


def ph_probe(gateway: GatewayProcess) -> dict[str, object]:
    probes = gateway.request("GET", "/api/probes")
    return next(p for p in probes if p["measurement"] == "ph")


def test_the_ph_sequence_changes_the_slope(page: Page, aged: GatewayProcess) -> None:
    page.goto(aged.url + "/")
    tile = page.locator('.tile[data-measurement="ph"]')
    expect(page.locator('.tile[data-measurement="water_level"] .tile-calibrate')).to_be_hidden()
    tile.locator(".tile-calibrate").click()
    dialog = page.locator("#calibration")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#calibration-title")).to_have_text("Calibración: pH")
    steps = dialog.locator(".calibration-step")
    expect(steps).to_have_count(3)
    expect(dialog.locator(".calibration-state")).to_contain_text("pendiente ácida 100.0 %")

    high = steps.nth(2)
    high.locator(".calibration-value").fill("3")  # below the mid point: refused
    high.locator(".calibration-run").click()
    expect(dialog.locator(".calibration-error")).to_contain_text("rechazó")
    high.locator(".calibration-value").fill("10")

    steps.nth(0).locator(".calibration-run").click()
    expect(dialog.locator(".calibration-answer")).to_contain_text("Cal,mid,7.00: hecho. 1 punto")
    steps.nth(1).locator(".calibration-run").click()
    expect(dialog.locator(".calibration-answer")).to_contain_text("Cal,low,4.00: hecho. 2 puntos")
    high.locator(".calibration-run").click()
    expect(dialog.locator(".calibration-answer")).to_contain_text(
        "Cal,high,10.00: hecho. 3 puntos · pendiente ácida 93.0 %, básica 96.0 %, "
        "desplazamiento 14.00 mV"
    )
    expect(dialog.locator(".calibration-error")).to_have_text("")

    probe = ph_probe(aged)
    assert probe["calibration"] == {
        "points": 3, "slope": {"acid": 93.0, "base": 96.0, "offset_mv": 14.0},
    }  # fmt: skip
    assert probe["last_calibration"]["by"] == "local"  # type: ignore[index]
    dialog.locator(".calibration-close").click()
    expect(dialog).to_be_hidden()
