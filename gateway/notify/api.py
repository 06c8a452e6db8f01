"""``GET /api/notify``: each target's state, last success, last error, queued count."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.notify.sender import Notifier


def notify_status(notifier: Notifier) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler, bound to the gateway's notifier (URLs shown as scheme and host only)."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"targets": await notifier.status()})

    return handler
