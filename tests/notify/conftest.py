"""The simulated in-process gateway of tests/gateway, and the receivers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.gateway.conftest import make_client  # noqa: F401 - a fixture, shared
from tests.notify.servers import SmtpSink, Webhook


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()
    await hook.start()
    yield hook
    await hook.stop()
