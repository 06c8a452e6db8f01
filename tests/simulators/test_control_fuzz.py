"""The simulator control API, fuzzed: any body gets a 4xx naming the fault, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.control import control_app
from simulators.rig import Rig

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
bodies = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["value", "fault"]) | st.text(max_size=5), inner, max_size=3
        )
    ),
    max_leaves=8,
).map(lambda v: json.dumps(v).encode())
raw = st.binary(max_size=100) | st.sampled_from(
    [b"[" * 50_000, b'{"value": 1e400}', b'{"value": NaN}', b'{"fault": "\\ud800"}', b"\xff"]
)
#: Names the route can carry (aiohttp's own 404 answers a '{' or a '/' in the name).
names = st.text(st.characters(exclude_characters="{}/\\", exclude_categories=["Cs"]), min_size=1)
targets = st.sampled_from(["ph", "water_level", "ezo-ph", "modbus-2"]) | names.filter(
    lambda t: t.strip(".")
)


@pytest.fixture
async def client(rig: Rig) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(control_app(rig), host="127.0.0.1")) as test_client:
        yield test_client


@FUZZ
@given(target=targets, body=bodies | raw)
async def test_any_body_gets_a_4xx_with_a_reason_or_a_200(
    client: TestClient[Any, Any], target: str, body: bytes
) -> None:
    response = await client.put(f"/api/simulator/{quote(target, safe='')}", data=body)
    if response.status == 200:
        return
    assert 400 <= response.status < 500, (target, body[:80], await response.text())
    answer = await response.json()
    assert answer["error"] in ("invalid_body", "unknown_target")
    assert answer["detail"]
