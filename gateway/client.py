"""A Python client for bench scripts and terminals: ``async for msg in client``.

    async with GatewayClient("http://127.0.0.1:8000", channels=["alerts", "sensors"]) as client:
        async for message in client:
            print(message)

It behaves like the dashboard: it reconnects on the seed's schedule (3, 6, 9,
12, 15 s, with jitter), resumes with ``since`` so nothing is missed, and after
``max_reconnect_attempts`` falls back to long-polling the REST endpoints while
it keeps probing the WebSocket. Besides the server's messages (typed, see
:mod:`gateway.messages`) it yields :class:`Status` items when the connection
changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp
from pydantic import ValidationError

from gateway.backoff import seed_schedule
from gateway.messages import Message, SensorUpdate, Update, parse_message
from gateway.timestamps import utc_timestamp

log = logging.getLogger(__name__)
STREAM_PATHS = {"alerts": "/ws/alerts", "sensors": "/ws/sensors"}
POLL_PATHS = {"alerts": "/api/alerts/summary", "sensors": "/api/sensors/latest"}
LONG_POLL = 25.0


@dataclass(frozen=True)
class Status:
    """The connection changed: ``connected``, ``reconnecting`` (attempt N), ``polling``."""

    state: Literal["connected", "reconnecting", "polling", "closed"]
    attempt: int = 0
    detail: str = ""


Item = Message | Status


class GatewayClient:
    def __init__(
        self,
        url: str,
        *,
        channels: Sequence[str] | None = None,
        token: str | None = None,
        reconnect_interval: float = 3.0,
        max_reconnect_attempts: int = 10,
        queue: int = 1000,
    ) -> None:
        """``url``: the gateway (``http://host:8000``: both streams over ``/ws``) or one
        stream's WebSocket (``ws://host:8000/ws/alerts``). Against a relay, name the site
        with ``?reservoir=`` in the URL or with channels such as ``alerts:EMBALSE_02``;
        ``sites`` follows every site's status and counts (not polled: WebSocket only)."""
        parts = urlsplit(url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        path = parts.path.rstrip("/")
        fixed = next((s for s, p in STREAM_PATHS.items() if path.endswith(p)), None)
        self.base = path[: -len(STREAM_PATHS[fixed])] if fixed else path.removesuffix("/ws")
        self.host = parts.netloc
        self.reservoir = parse_qs(parts.query).get("reservoir", [""])[0]
        self.scheme = scheme
        self.fixed = fixed
        self.channels = [fixed] if fixed else list(channels or STREAM_PATHS)
        self.token = token
        self.reconnect_interval = reconnect_interval
        self._backoff = seed_schedule(reconnect_interval)
        self.max_reconnect_attempts = max_reconnect_attempts
        self.seq: dict[str, int] = {}
        self.reconnect_attempts = 0
        self.is_connected = False
        self._items: asyncio.Queue[Item] = asyncio.Queue(maxsize=queue)
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None

    # context manager and iteration -------------------------------------------------

    async def __aenter__(self) -> GatewayClient:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._session = aiohttp.ClientSession(headers=headers)
        self._task = asyncio.create_task(self._run(), name="gateway.client")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Item]:
        while True:
            item = await self._items.get()
            if isinstance(item, Status) and item.state == "closed":
                return
            yield item

    async def send(self, message: dict[str, Any]) -> None:
        if self._ws is None or self._ws.closed:
            raise ConnectionError("not connected")
        await self._ws.send_str(json.dumps(message))

    async def ping(self) -> None:
        await self.send({"action": "ping"})

    # the connection ------------------------------------------------------------------

    def _ws_url(self) -> str:
        path = self.base + (STREAM_PATHS[self.fixed] if self.fixed else "/ws")
        query = {"reservoir": self.reservoir} if self.reservoir else {}
        if self.fixed and self.fixed in self.seq:
            query["since"] = str(self.seq[self.fixed])
        return urlunsplit((self.scheme, self.host, path, urlencode(query), ""))

    def _http_url(self, path: str) -> str:
        scheme = "https" if self.scheme == "wss" else "http"
        return urlunsplit((scheme, self.host, self.base + path, "", ""))

    async def _run(self) -> None:
        """Connect, read, reconnect for ever; should anything else break, say ``closed``
        (the iteration ends) rather than leave the caller waiting for ever."""
        try:
            await self._keep_connected()
        except Exception as exc:
            log.exception("client stopped")
            await self._emit(Status("closed", detail=f"{type(exc).__name__}: {exc}"))

    async def _keep_connected(self) -> None:
        while True:
            await self._connect_and_read()
            self.reconnect_attempts += 1
            if self.reconnect_attempts > self.max_reconnect_attempts:
                await self._poll_until_websocket_returns()
                continue
            await self._emit(Status("reconnecting", self.reconnect_attempts))
            await asyncio.sleep(self._backoff.next())

    async def _connect_and_read(self) -> None:
        """One connection, read until it ends."""
        assert self._session is not None
        try:
            ws = await self._session.ws_connect(self._ws_url(), heartbeat=30.0)
        except (aiohttp.ClientError, OSError) as exc:
            log.debug("connect failed: %s", exc)
            return
        self._ws, self.is_connected = ws, True
        self.reconnect_attempts = 0
        self._backoff.reset()
        await self._emit(Status("connected"))
        try:
            if not self.fixed:
                for channel in self.channels:
                    subscribe: dict[str, Any] = {"action": "subscribe", "channel": channel}
                    if channel in self.seq:
                        subscribe["since"] = self.seq[channel]
                    await ws.send_str(json.dumps(subscribe))
            async for frame in ws:
                if frame.type is aiohttp.WSMsgType.TEXT:
                    await self._deliver(frame.data)
        except (aiohttp.ClientError, ConnectionError) as exc:  # a send to a dropped socket
            log.debug("connection lost: %s", exc)
        finally:
            self._ws, self.is_connected = None, False
            await ws.close()

    async def _deliver(self, text: str) -> None:
        try:
            message = parse_message(text)
        except ValidationError as exc:
            log.warning("unexpected message %.80s: %s", text, exc.errors()[0]["msg"])
            return
        seq = getattr(message, "seq", None)
        stream = message.channel or self.fixed
        if stream and stream not in self.channels and stream.partition(":")[0] in self.channels:
            stream = stream.partition(":")[0]  # a relay's alerts:<id> for the alerts we asked
        if isinstance(seq, int) and stream and message.type != "refresh":
            # In order on one connection; lower only when the gateway restarted its count.
            self.seq[stream] = seq
        await self._emit(message)

    async def _emit(self, item: Item) -> None:
        await self._items.put(item)

    # polling fallback ------------------------------------------------------------------

    async def _poll_until_websocket_returns(self) -> None:
        await self._emit(Status("polling", self.reconnect_attempts, "WebSocket unavailable"))
        pollers = [
            asyncio.create_task(self._poll(channel), name=f"gateway.client.poll.{channel}")
            for channel in self.channels
        ]
        try:
            while not await self._probe():  # noqa: ASYNC110 - probing on a schedule is the point
                await asyncio.sleep(self.reconnect_interval * 5)
        finally:
            for task in pollers:
                task.cancel()
            for task in pollers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.reconnect_attempts = 0
        self._backoff.reset()

    async def _probe(self) -> bool:
        assert self._session is not None
        try:
            ws = await self._session.ws_connect(self._ws_url())
        except (aiohttp.ClientError, OSError):
            return False
        await ws.close()
        return True

    async def _poll(self, channel: str) -> None:
        """Long-poll one stream, turning each answer into the message the socket would send.

        ``alerts:<reservoir_id>`` (a relay's channel) polls that site's endpoint."""
        assert self._session is not None
        kind, _, site = channel.partition(":")
        if kind not in POLL_PATHS:
            return  # ``sites`` has no polling endpoint: it waits for the WebSocket
        site = site or self.reservoir
        etag = ""
        while True:
            params = {"wait": str(LONG_POLL), "since": str(self.seq.get(channel, 0))}
            if site:
                params["reservoir"] = site
            headers = {"If-None-Match": etag} if etag else {}
            try:
                async with self._session.get(
                    self._http_url(POLL_PATHS[kind]), params=params, headers=headers
                ) as response:
                    if response.status == 200:
                        etag = response.headers.get("ETag", "")
                        await self._polled(
                            channel, int(response.headers["X-Seq"]), await response.json()
                        )
                    elif response.status != 304:
                        await asyncio.sleep(self.reconnect_interval)
            except (aiohttp.ClientError, OSError, KeyError, ValueError):
                await asyncio.sleep(self.reconnect_interval)

    async def _polled(self, channel: str, seq: int, data: dict[str, Any]) -> None:
        if seq == self.seq.get(channel):
            return
        self.seq[channel] = seq
        alerts = channel.partition(":")[0] == "alerts"
        kind = Update if alerts else SensorUpdate
        name = "update" if alerts else "sensor_update"
        message = kind.model_validate(
            {
                "type": name,
                "timestamp": utc_timestamp(),
                "seq": seq,
                "data": data,
                "channel": channel,
            }
        )
        await self._emit(message)
