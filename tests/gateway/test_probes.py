"""Any probe on any line, and probe care, on the simulated devices of the full example site:
DO, ORP, a Modbus TCP turbidity transmitter and pump coil, two level transmitters; the
calibration of a pH circuit through REST, recorded, changing what the circuit reports."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.api.server import build_app
from gateway.config import load_config
from simulators.control import RIG
from simulators.rig import Rig
from tests.gateway.conftest import Client, gateway_of

EXAMPLE = Path(__file__).parents[2] / "examples" / "full-site.toml"
SEED_KEYS = ("temperature", "ph", "conductivity", "water_level", "reservoir_id")
VALUES = {
    "ph": 7.25, "temperature": 18.0, "conductivity": 450.0, "dissolved_oxygen": 8.2,
    "orp": -35.5, "turbidity": 3.25, "pump": 1.0, "water_level": 12.5,
    "level_downstream": 3.4,
}  # fmt: skip


def fast_site(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text()
    text = text.replace('data_dir = "./data"', f'data_dir = "{tmp_path / "data"}"')
    text = text.replace("sensor_interval = 10.0", "sensor_interval = 0.1")
    text = re.sub(r'(protocol = "[a-z-]+")', r"\1\ntimeout = 0.3\npoll_interval = 0.05", text)
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


@pytest.fixture
async def site(aiohttp_client: Callable[..., Any], tmp_path: Path) -> Client:
    config = load_config(fast_site(tmp_path))
    app = build_app(config, simulate=True, sim_time_scale=0.0)
    client: Client = await aiohttp_client(app)
    for name, value in VALUES.items():
        app[RIG].world.signals[name].set(value)
    return client


async def update_where(client: Client, want: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async with client.ws_connect("/ws/sensors") as ws:
        for _ in range(100):
            message = await ws.receive_json(timeout=2)
            if message["type"] == "sensor_update" and want(message["data"]):
                return dict(message["data"])
    raise AssertionError("no sensor_update with the wanted values in 100 messages")


def rig_of(client: Client) -> Rig:
    return client.app[RIG]


async def test_every_probe_of_the_site_streams(site: Client) -> None:
    expected = {
        "dissolved_oxygen": 8.2, "orp": -35.5, "turbidity": 3.25, "pump": 1,
        "level_upstream": 12.5, "level_downstream": 3.4, "ph": 7.25,
        "temperature": 18.0, "conductivity": 450.0,
    }  # fmt: skip
    data = await update_where(
        site, lambda d: all(d.get(k) == v for k, v in expected.items())
    )  # DO is right only once the circuit got the water's temperature and salinity
    assert all(key in data for key in SEED_KEYS)
    assert data["water_level"] is None  # the seed's key, not configured here: null
    dissolved = rig_of(site).ezo("ezo-do")
    assert dissolved.compensation == 18.0
    assert dissolved.salinity == 450.0
    assert any(c.startswith("S,450") for c in dissolved.commands)
    assert not any(c.startswith(("T,", "RT,")) for c in rig_of(site).ezo("ezo-orp").commands)

    info = await (await site.get("/api/info")).json()
    assert info["measurements"][:3] == ["temperature", "ph", "conductivity"]
    assert "level_downstream" in info["measurements"]
    assert info["labels"]["dissolved_oxygen"] == "Oxígeno disuelto"
    assert (info["units"]["orp"], info["decimals"]["orp"]) == ("mV", 0)
    assert info["circuits"] == {
        "ph": "pH", "conductivity": "EC", "temperature": "RTD",
        "dissolved_oxygen": "DO", "orp": "ORP",
    }  # fmt: skip


async def calibrate(client: Client, measurement: str, body: object) -> tuple[int, Any]:
    response = await client.post(f"/api/probes/{measurement}/calibrate", json=body)
    return response.status, await response.json()


async def probe(client: Client, measurement: str) -> dict[str, Any]:
    listing = await (await client.get("/api/probes")).json()
    return next(p for p in listing if p["measurement"] == measurement)


async def test_a_ph_calibration_changes_the_slope_and_the_reading(site: Client) -> None:
    before = await probe(site, "ph")
    assert before["circuit"] == "pH"
    assert before["firmware"]
    assert before["calibration"] == {
        "points": 3, "slope": {"acid": 100.0, "base": 100.0, "offset_mv": 0.0},
    }  # fmt: skip
    assert before["last_calibration"] is None
    assert before["calibration_overdue"] is True  # due every 30 days, none on record
    alerts = await (await site.get("/api/alerts")).json()
    assert [a["kind"] for a in alerts if a["measurement"] == "ph"] == ["calibration"]

    # The probe ages: 14 mV of offset, a weaker slope; the reading drifts off the truth.
    rig_of(site).set_probe("ph", {"offset_mv": 14.0, "acid": 93.0, "base": 96.0})
    drifted = await update_where(site, lambda d: d["ph"] is not None and d["ph"] < 7.1)
    assert drifted["ph"] == 7.003  # 14 mV read through the factory's curve

    status, low_first = await calibrate(site, "ph", {"point": "low", "value": 4.0})
    assert status == 200  # mid point first would be the datasheet's order...
    status, answer = await calibrate(site, "ph", {"point": "mid", "value": 7.0})
    assert status == 200
    assert answer["calibration"]["points"] == 1  # mid clears the others
    assert (answer["by"], answer["command"]) == ("local", "Cal,mid,7.00")
    for point, value in (("low", 4.0), ("high", 10.0)):
        status, answer = await calibrate(site, "ph", {"point": point, "value": value})
        assert status == 200, answer
    assert answer["calibration"] == {
        "points": 3, "slope": {"acid": 93.0, "base": 96.0, "offset_mv": 14.0},
    }  # fmt: skip
    after = await update_where(site, lambda d: d["ph"] == 7.25)
    assert after["ph"] == 7.25  # calibrated to the aged probe: the truth again

    listed = await probe(site, "ph")
    assert listed["calibration"]["slope"] == {"acid": 93.0, "base": 96.0, "offset_mv": 14.0}
    assert listed["last_calibration"]["point"] == "high"
    assert listed["last_calibration"]["by"] == "local"
    assert listed["calibration_overdue"] is False
    alerts = await (await site.get("/api/alerts")).json()
    assert [a for a in alerts if a["measurement"] == "ph"] == []  # the due alert cleared
    rows = await gateway_of(site).store._run(
        lambda db: db.execute("SELECT point, command, by FROM calibrations").fetchall()
    )
    assert [tuple(r) for r in rows][-3:] == [
        ("mid", "Cal,mid,7.00", "local"), ("low", "Cal,low,4.00", "local"),
        ("high", "Cal,high,10.00", "local"),
    ]  # fmt: skip
    assert low_first["calibration"]["points"] == 3


@pytest.mark.parametrize(
    ("measurement", "body", "status", "fragment"),
    [
        ("ph", {"point": "dry"}, 422, "takes no 'dry' point"),
        ("ph", {"point": "mid", "value": 15.0}, 409, "*ER"),
        ("ph", {"point": "boil"}, 422, "point"),
        ("ph", {"point": "mid", "value": "7"}, 422, "value"),
        ("ph", {"point": "mid", "colour": 1}, 422, "colour"),
        ("turbidity", {"point": "single", "value": 1.0}, 422, "not read by an EZO circuit"),
        ("chlorine", {"point": "mid"}, 404, "chlorine"),
        ("conductivity", {"point": "high", "value": 80000}, 200, ""),
    ],
)
async def test_calibrate_says_what_is_wrong(
    site: Client, measurement: str, body: object, status: int, fragment: str
) -> None:
    got, answer = await calibrate(site, measurement, body)
    assert got == status, answer
    if fragment:
        assert fragment in answer["detail"]


async def test_out_of_sequence_is_a_conflict_naming_the_reason(site: Client) -> None:
    assert (await calibrate(site, "conductivity", {"point": "clear"}))[0] == 200
    status, answer = await calibrate(site, "conductivity", {"point": "single", "value": 1413})
    assert status == 409  # dry first
    assert answer["error"] == "refused"
    assert "Cal,1413.00" in answer["detail"]
    for body in ({"point": "dry"}, {"point": "single", "value": 1413}):
        assert (await calibrate(site, "conductivity", body))[0] == 200
    for measurement, body in (
        ("dissolved_oxygen", {"point": "atm"}), ("dissolved_oxygen", {"point": "zero"}),
        ("orp", {"point": "single", "value": 225}),
    ):  # fmt: skip
        status, answer = await calibrate(site, measurement, body)
        assert status == 200, answer
    assert (await probe(site, "dissolved_oxygen"))["calibration"]["points"] == 2


bodies = st.one_of(
    st.dictionaries(
        st.sampled_from(["point", "value", "by", ""]),
        st.one_of(
            st.sampled_from(["mid", "low", "high", "dry", "single", "atm", "zero", "clear"]),
            st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=5),
            st.none(), st.booleans(), st.lists(st.integers(), max_size=2),
        ),
        max_size=3,
    ),
    st.binary(max_size=20),
    st.integers(),
)  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, measurement=st.sampled_from(["ph", "orp", "pump", "x"]))
async def test_any_calibrate_body_is_answered_never_a_500(
    site: Client, body: object, measurement: str
) -> None:
    if isinstance(body, bytes):
        response = await site.post(f"/api/probes/{measurement}/calibrate", data=body)
    else:
        response = await site.post(f"/api/probes/{measurement}/calibrate", json=body)
    assert response.status in (200, 404, 409, 422), await response.text()
    assert (await site.get("/healthz")).status == 200  # the gateway goes on


def test_check_config_accepts_the_example() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(EXAMPLE)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"circuit": "do"' in done.stdout
