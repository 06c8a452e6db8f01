"""Who may connect: JWT bearer tokens and browser Origins.

A token may come in an ``Authorization: Bearer`` header, in the WebSocket
subprotocol pair ``gateway.v1, bearer.<token>`` (browsers cannot set headers
on a WebSocket), or in ``?token=`` (for wscat; redacted from every log line).
Everything is decided before the WebSocket upgrade, as an HTTP status.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from aiohttp import web

from drivers.errors import GatewayError

SUBPROTOCOL = "gateway.v1"
BEARER = "bearer."
#: Reachable without a token: liveness, and the dashboard's own files (they hold no data).
PUBLIC_PATHS = ("/healthz", "/", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)
HMAC_ALGORITHMS = ["HS256"]
#: The verified token's claims, on a request that carried one.
CLAIMS = web.RequestKey("claims", dict[str, Any])
PUBLIC_KEY_ALGORITHMS = ["RS256", "ES256"]

log = logging.getLogger("gateway.auth")  # the name logs were filtered by


class AuthError(GatewayError):
    """A token that does not let its bearer in; the message says why (never the token)."""


class Authenticator:
    """Checks tokens against the configured HS256 secret and/or public key."""

    def __init__(self, secret: str = "", public_key: str = "") -> None:
        self._keys: list[tuple[Any, list[str]]] = []
        if secret:
            self._keys.append((secret, HMAC_ALGORITHMS))
        if public_key:
            self._keys.append((load_public_key(public_key), PUBLIC_KEY_ALGORITHMS))

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or AuthError: missing, malformed, forged, expired or
        without an ``exp`` (a token that never expires is refused)."""
        if not token:
            raise AuthError("no token: send Authorization: Bearer <token>")
        problem = "token not valid"
        for key, algorithms in self._keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token, key, algorithms=algorithms, options={"require": ["exp"]}
                )
                return claims
            except jwt.ExpiredSignatureError:
                raise AuthError("token expired") from None
            except jwt.MissingRequiredClaimError:
                raise AuthError("token has no exp: a token must expire") from None
            except jwt.InvalidSignatureError:
                problem = "token signature does not match"
            except jwt.InvalidAlgorithmError:
                problem = "token signed with an algorithm this gateway does not accept"
            except jwt.DecodeError:
                problem = "token is not a well-formed JWT"
            except jwt.InvalidTokenError as exc:
                problem = f"token not valid: {exc}"
        raise AuthError(problem)


def load_public_key(text: str) -> Any:
    """PEM text, or the path of a PEM file; raises ValueError if it is neither."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    pem = text if "-----BEGIN" in text else Path(text).read_text()
    return load_pem_public_key(pem.encode())


def token_of(request: web.Request) -> str:
    """The bearer token of a request, wherever the client could put it ('' if none)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    for offered in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        if offered.strip().startswith(BEARER):
            return offered.strip()[len(BEARER) :]
    return request.query.get("token", "")


def origin_allowed(request: web.Request, allowed: list[str]) -> bool:
    """No Origin (not a browser), the gateway's own, or one of ``allowed``."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if urlsplit(origin).netloc == request.host.lower():
        return True
    return origin in {o.rstrip("/").lower() for o in allowed}


def is_public(request: web.Request) -> bool:
    return request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def security_middleware(auth: Authenticator, allowed_origins: list[str]) -> Any:
    """Token check on every route but the public ones, and CORS for ``allowed_origins``
    (read at each request: a reload changes the list in place)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin", "").rstrip("/").lower()
        cors_origins = {o.rstrip("/").lower() for o in allowed_origins} if origin else set()
        if request.method == "OPTIONS" and origin in cors_origins:
            return _cors(web.Response(status=204), origin, preflight=True)
        if auth.enabled and not is_public(request):
            try:
                request[CLAIMS] = auth.verify(token_of(request))
            except AuthError as exc:
                raise _unauthorized(str(exc)) from None
        response = await handler(request)
        if origin in cors_origins and not response.prepared:
            _cors(response, origin)
        return response

    return middleware


def _unauthorized(reason: str) -> web.HTTPUnauthorized:
    challenge = f'Bearer error="invalid_token", error_description="{reason}"'
    return web.HTTPUnauthorized(
        text=json.dumps({"error": "unauthorized", "detail": reason}),
        content_type="application/json",
        headers={"WWW-Authenticate": challenge},
    )


def _cors(
    response: web.StreamResponse, origin: str, *, preflight: bool = False
) -> web.StreamResponse:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    response.headers["Access-Control-Expose-Headers"] = "ETag, X-Seq"
    if preflight:
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = (
            "Authorization, Content-Type, If-None-Match"
        )
        response.headers["Access-Control-Max-Age"] = "600"
    return response


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]*")


def redact(text: str) -> str:
    """``?token=...`` becomes ``?token=[redacted]``."""
    return _TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


def _redacting(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """A log record factory that rewrites any ``token=...`` as the record is made."""

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it as usual
            return record
        if "token=" in message:
            record.msg, record.args = redact(message), ()
        return record

    make.redacts_tokens = True  # type: ignore[attr-defined]
    return make


def install_redaction() -> None:
    """Redact ``?token=`` in every log record, from any logger (ours, aiohttp's, a
    library's), before any handler or filter sees it. Safe to call more than once."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacts_tokens", False):
        logging.setLogRecordFactory(_redacting(factory))


def claims_subject(claims: Mapping[str, Any] | None) -> str | None:
    """Who the token speaks for (its ``sub``), for the alert history."""
    if not claims:
        return None
    subject = claims.get("sub")
    return str(subject) if subject is not None else None


# roles -------------------------------------------------------------------------------


class Role(enum.IntEnum):
    """What a token's ``role`` claim lets its bearer do; each role may do what those
    below it may. No ``role`` claim (or one this gateway does not know): a viewer."""

    VIEWER = 1  # read
    OPERATOR = 2  # dismiss, shelve, unshelve
    TECHNICIAN = 3  # an operator who also calibrates probes

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def named(cls, name: str) -> Role:
        """The role called ``name`` (``viewer``, ``operator``, ``technician``)."""
        return cls[name.upper()]


ROLES = tuple(role.label for role in Role)
#: Who acts when the gateway has no auth (the bench, a closed LAN): everything is allowed.
LOCAL = "local"


def role_of(request: web.Request) -> Role | None:
    """The role of the request's token; None when auth is off (everything is allowed)."""
    claims = request.get(CLAIMS)
    if claims is None:
        return None
    claimed = claims.get("role")
    if isinstance(claimed, str) and claimed.upper() in Role.__members__:
        return Role.named(claimed)
    return Role.VIEWER


def require(request: web.Request, role: Role) -> None:
    """403 ``{"error": "forbidden", "detail": "needs operator"}`` unless the request's
    token carries ``role`` or a higher one. Call first thing in a handler that changes
    something a human answers for."""
    held = role_of(request)
    if held is not None and held < role:
        raise web.HTTPForbidden(
            text=json.dumps({"error": "forbidden", "detail": f"needs {role.label}"}),
            content_type="application/json",
        )


def actor(request: web.Request) -> str:
    """Who does what this request asks, for the history and the messages (``by``): the
    token's ``sub``, or ``"local"`` when auth is off."""
    claims = request.get(CLAIMS)
    if claims is None:
        return LOCAL
    return claims_subject(claims) or "unknown"
