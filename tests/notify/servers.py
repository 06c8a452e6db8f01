"""Real receivers on 127.0.0.1 for the notification tests: an SMTP server (aiosmtpd)
and a webhook (aiohttp). Each keeps what it got and wakes the test that waits."""

from __future__ import annotations

import asyncio
import email
import email.policy
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.processes import free_port


class SmtpSink:
    """An SMTP server that can go down and come back on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[EmailMessage] = []
        self._arrived = asyncio.Condition()
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        async with self._arrived:
            self.mails.append(message)
            self._arrived.notify_all()
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="sink.test"), "127.0.0.1", self.port
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def wait_for(self, count: int, timeout: float = 8.0) -> list[EmailMessage]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.mails) >= count)
        return list(self.mails)

    def url(self, **extra: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"from": "gw@example.com", **extra}.items())
        return f"mailto://127.0.0.1:{self.port}/ops@example.com?{query}"


class Webhook:
    """An aiohttp endpoint that keeps every JSON body posted to /hook."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self._arrived:
            self.bodies.append(body)
            self._arrived.notify_all()
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, timeout: float = 8.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.bodies) >= count)
        return list(self.bodies)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"
