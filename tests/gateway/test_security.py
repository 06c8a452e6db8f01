"""Tokens and Origins: every refusal is an HTTP status before the upgrade."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from aiohttp import WSMsgType, WSServerHandshakeError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.gateway.conftest import Client

SECRET = "correct horse battery staple, twice over"


def token(
    secret: str = SECRET, *, ttl: float = 300.0, sub: str = "operator-7", **extra: Any
) -> str:
    claims = {"sub": sub, "exp": int(time.time() + ttl), **extra}
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture
async def secure(make_client: Callable[..., Any]) -> Client:
    client: Client = await make_client(
        extra=f'[auth]\njwt_secret = "{SECRET}"',
        server_extra='allowed_origins = ["https://scada.example.org"]',
    )
    return client


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.mark.parametrize(
    ("credentials", "reason"),
    [
        ({}, "no token"),
        (bearer(token(ttl=-10)), "expired"),
        (bearer(token("another secret, of the same good length")), "signature"),
        (bearer("not-a-jwt"), "well-formed"),
        (bearer(jwt.encode({"sub": "x"}, SECRET + " and more", algorithm="HS384")), "algorithm"),
        (bearer(jwt.encode({"sub": "forever"}, SECRET, algorithm="HS256")), "no exp"),
    ],
)
async def test_refused_before_the_upgrade(
    secure: Client, credentials: dict[str, str], reason: str
) -> None:
    for path in ("/ws/alerts", "/ws/sensors", "/ws"):
        with pytest.raises(WSServerHandshakeError) as refused:
            await secure.ws_connect(path, headers=credentials)
        assert refused.value.status == 401
    response = await secure.get("/api/alerts/summary", headers=credentials)
    assert response.status == 401
    assert reason in (await response.json())["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_each_way_of_presenting_a_token(secure: Client) -> None:
    good = token()
    async with secure.ws_connect("/ws/alerts", headers=bearer(good)) as ws:
        assert (await ws.receive_json(timeout=2))["type"] == "initial"
    async with secure.ws_connect(f"/ws/alerts?token={good}") as ws:
        assert (await ws.receive_json(timeout=2))["type"] == "initial"
    async with secure.ws_connect("/ws/alerts", protocols=("gateway.v1", f"bearer.{good}")) as ws:
        assert ws.protocol == "gateway.v1"  # the server answers gateway.v1, never the token
        assert (await ws.receive_json(timeout=2))["type"] == "initial"
    response = await secure.get("/api/sensors/latest", headers=bearer(good))
    assert response.status == 200


async def test_browser_style_handshake_never_echoes_the_token(secure: Client) -> None:
    good = token()
    reader, writer = await asyncio.open_connection("127.0.0.1", secure.server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws/sensors HTTP/1.1\r\nHost: 127.0.0.1:{secure.server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{secure.server.port}\r\n"
            f"Sec-WebSocket-Protocol: gateway.v1, bearer.{good}\r\n\r\n"
        ).encode()
    )
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)).decode()
    writer.close()
    await writer.wait_closed()
    assert head.startswith("HTTP/1.1 101")
    assert "Sec-WebSocket-Protocol: gateway.v1\r\n" in head
    assert good not in head


async def test_public_paths_need_no_token(secure: Client) -> None:
    assert (await secure.get("/healthz")).status == 200
    assert (await secure.get("/")).status == 200
    assert (await secure.get("/metrics")).status == 401


async def test_token_expiring_while_connected_closes_4001(secure: Client) -> None:
    async with secure.ws_connect("/ws/alerts", headers=bearer(token(ttl=1.2))) as ws:
        await ws.receive_json(timeout=2)
        async with asyncio.timeout(5):
            while (message := await ws.receive()).type is not WSMsgType.CLOSE:
                pass
    assert message.data == 4001


async def test_token_never_reaches_the_log(
    secure: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    good = token()
    async with secure.ws_connect(f"/ws/alerts?token={good}") as ws:
        await ws.receive_json(timeout=2)
    await secure.get(f"/api/alerts?token={good}")
    await secure.get("/api/alerts?token=forged.token.value")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "token=[redacted]" in text
    assert good not in text
    assert "forged.token.value" not in text


async def test_token_is_redacted_from_every_logger_and_handler(
    secure: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Child loggers of ``gateway`` and aiohttp's loggers too, whatever handler writes them."""
    import io
    import logging

    caplog.set_level("DEBUG")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logging.getLogger().addHandler(handler)
    try:
        for name in ("gateway.websocket", "gateway.hub", "aiohttp.access", "aiohttp.server"):
            logging.getLogger(name).warning("GET /ws/alerts?reservoir=A&token=%s", "SECRET-1")
        await secure.get(f"/api/alerts?token={token()}&x=1")
    finally:
        logging.getLogger().removeHandler(handler)
    written = out.getvalue() + caplog.text
    assert written.count("token=[redacted]") >= 5
    assert "SECRET-1" not in written
    assert "eyJ" not in written  # no JWT at all


async def test_token_command_refuses_a_token_without_a_real_expiry(tmp_path: Any) -> None:
    import sys

    env = {**os.environ, "GATEWAY_AUTH__JWT_SECRET": SECRET}
    for days in ("nan", "inf", "0"):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "token", "--sub", "x", "--days", days,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 9)
        assert (process.returncode, out) == (1, b"")
        assert err.decode().startswith("--days:"), err


async def test_dismiss_records_who(secure: Client) -> None:
    from simulators.control import RIG
    from tests.gateway.conftest import gateway_of
    from tests.helpers import until

    gateway = gateway_of(secure)
    secure.app[RIG].set_value("ph", 8.7)
    await until(lambda: gateway.summary["total"] == 1)
    [alert] = await (await secure.get("/api/alerts", headers=bearer(token()))).json()
    response = await secure.post(
        "/alerts/dismiss",
        json={"alert_id": alert["id"]},
        headers=bearer(token(sub="ana", role="operator")),
    )
    assert response.status == 200
    history = await (await secure.get("/api/alerts/history", headers=bearer(token()))).json()
    assert [(e["event"], e["by"]) for e in history][-1] == ("dismissed", "ana")


async def test_rs256_tokens_from_a_public_key(make_client: Callable[..., Any]) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    client: Client = await make_client(extra=f"[auth]\njwt_public_key = '''{pem}'''")
    signed = jwt.encode({"sub": "scada", "exp": int(time.time()) + 60}, private, algorithm="RS256")
    assert (await client.get("/api/alerts", headers=bearer(signed))).status == 200
    forged = jwt.encode(
        {"sub": "scada"}, "a guess at the key, long enough to sign", algorithm="HS256"
    )
    assert (await client.get("/api/alerts", headers=bearer(forged))).status == 401


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://evil.example.com", 403),
        ("https://scada.example.org", 101),
        (None, 101),
        ("SELF", 101),
    ],
)
async def test_origin(secure: Client, origin: str | None, status: int) -> None:
    headers = bearer(token())
    if origin == "SELF":
        headers["Origin"] = f"http://127.0.0.1:{secure.server.port}"
    elif origin is not None:
        headers["Origin"] = origin
    if status == 403:
        with pytest.raises(WSServerHandshakeError) as refused:
            await secure.ws_connect("/ws/alerts", headers=headers)
        assert refused.value.status == 403
    else:
        async with secure.ws_connect("/ws/alerts", headers=headers) as ws:
            assert (await ws.receive_json(timeout=2))["type"] == "initial"


async def test_cors_for_allowed_origins_only(secure: Client) -> None:
    allowed = {"Origin": "https://scada.example.org", **bearer(token())}
    response = await secure.get("/api/alerts/summary", headers=allowed)
    assert response.headers["Access-Control-Allow-Origin"] == "https://scada.example.org"
    preflight = await secure.options(
        "/api/alerts/summary",
        headers={"Origin": "https://scada.example.org", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status == 204
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    other = await secure.get(
        "/api/alerts/summary", headers={"Origin": "https://evil.example.com", **bearer(token())}
    )
    assert "Access-Control-Allow-Origin" not in other.headers


def test_a_short_secret_is_refused_at_configuration(tmp_path: Any) -> None:
    from gateway.config import ConfigError
    from tests.gateway.conftest import fast_config

    with pytest.raises(ConfigError) as refused:
        fast_config(tmp_path, extra='[auth]\njwt_secret = "hunter2"')
    assert any(
        p.startswith("auth.jwt_secret: must be at least 32 bytes") for p in refused.value.problems
    )


async def test_token_command_mints_what_the_gateway_accepts(tmp_path: Any) -> None:
    import sys

    env = {**os.environ, "GATEWAY_AUTH__JWT_SECRET": SECRET}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "token", "--sub", "wall-screen-1", "--days", "2",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 9)
    assert process.returncode == 0
    claims = jwt.decode(out.decode().strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "wall-screen-1"
    assert 1.9 * 86400 < claims["exp"] - time.time() <= 2 * 86400
