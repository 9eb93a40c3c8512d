"""A fake APNs provider API: what Apple checks, answered the way Apple answers.

Serve it with ``serve(app, tls=True)``: it refuses requests that are not HTTP/2. It verifies
the provider token (ES256 signature against the configured public key, ``kid``, ``iss``,
``iat`` at most an hour old, no renewal sooner than 20 minutes after the previous token unless
it had refused that one as expired), the topic against the bundle id (``.voip`` for VoIP),
push type, priority (background must be 5), expiration, collapse id and apns-id formats, the
device token (64 hex digits) and the payload size, and records every request and every
distinct JWT. Tests steer it per device token (``answers``), for the next requests
(``statuses``, with ``retry_after``), by expiring tokens (``expired_jwts``,
``every_token_expired``), and can hold each request (``holding``) until the test releases it
from ``held``, to observe how many the client keeps in flight.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PUSH_TYPES = frozenset({"alert", "background", "voip", "complication", "fileprovider", "mdm",
                        "location", "liveactivity", "pushtotalk", "widgets", "controls"})
APNS_HEADERS = ("authorization", "apns-topic", "apns-push-type", "apns-priority",
                "apns-expiration", "apns-collapse-id", "apns-id")
_DEVICE_TOKEN = re.compile(r"[0-9a-fA-F]{64}\Z")
_APNS_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_STATUS_REASONS = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}


@dataclass
class Recorded:
    """One request as the server saw it, and what it answered."""

    device_token: str
    headers: dict[str, str]
    payload: Any
    http_version: str
    peer: tuple[str, int]
    status: int
    reason: str


@dataclass
class ApnsState:
    """The fake's configuration, its steering knobs and what it recorded."""

    team_id: str
    key_id: str
    bundle_id: str
    public_key: ec.EllipticCurvePublicKey
    clock: Callable[[], float] = time.time
    requests: list[Recorded] = field(default_factory=list)
    jwts: list[str] = field(default_factory=list)
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)
    retry_after: str = ""
    expired_jwts: set[str] = field(default_factory=set)
    every_token_expired: bool = False
    holding: bool = False
    held: list[asyncio.Event] = field(default_factory=list)
    peak: int = 0
    _last_iat: int | None = None
    _renewal_due: bool = False

    def delivered(self) -> list[Recorded]:
        """The requests answered 200."""
        return [r for r in self.requests if r.status == 200]


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def fake_apns(*, team_id: str, key_id: str, bundle_id: str,
              public_key: ec.EllipticCurvePublicKey,
              clock: Callable[[], float] = time.time) -> tuple[ApnsState, Starlette]:
    """A fake APNs for one team's key and one app; returns its state and the ASGI app."""
    state = ApnsState(team_id, key_id, bundle_id, public_key, clock)

    async def endpoint(request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items()}
        body = await request.body()
        path = request.url.path
        device_token = path.removeprefix("/3/device/") if path.startswith("/3/device/") else ""
        apns_id = headers.get("apns-id", "")
        record = Recorded(device_token, headers, _json(body), request.scope["http_version"],
                          tuple(request.scope["client"]), 200, "")
        state.requests.append(record)
        try:
            _check(state, request, device_token, body)
        except _Refusal as refusal:
            record.status, record.reason = refusal.status, refusal.reason
            return _answer(refusal.status, refusal.reason, apns_id, state)
        await _hold(state)
        return _answer(200, "", apns_id, state)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return state, Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])


def _check(state: ApnsState, request: Request, device_token: str, body: bytes) -> None:
    if request.scope["http_version"] != "2":
        raise _Refusal(505, "HTTP2Required")
    if request.method != "POST":
        raise _Refusal(405, "MethodNotAllowed")
    if not request.url.path.startswith("/3/device/"):
        raise _Refusal(404, "BadPath")
    if any(len(request.headers.getlist(name)) > 1 for name in APNS_HEADERS):
        raise _Refusal(400, "DuplicateHeaders")
    _check_provider_token(state, request.headers.get("authorization", ""))
    if state.statuses:
        status = state.statuses.pop(0)
        raise _Refusal(status, _STATUS_REASONS.get(status, "Unknown"))
    push_type = _check_headers(state, request)
    if not device_token:
        raise _Refusal(400, "MissingDeviceToken")
    if not _DEVICE_TOKEN.match(device_token):
        raise _Refusal(400, "BadDeviceToken")
    if not body:
        raise _Refusal(400, "PayloadEmpty")
    if len(body) > (5120 if push_type == "voip" else 4096):
        raise _Refusal(413, "PayloadTooLarge")
    if device_token in state.answers:
        raise _Refusal(*state.answers[device_token])


def _check_provider_token(state: ApnsState, authorization: str) -> None:
    scheme, _, token = authorization.partition(" ")
    if scheme != "bearer" or not token:
        raise _Refusal(403, "MissingProviderToken")
    new = token not in state.jwts
    if new:
        state.jwts.append(token)
    try:
        header = jwt.get_unverified_header(token)
        # iat is checked below against the injected clock, not pyjwt's wall clock.
        claims = jwt.decode(token, state.public_key, algorithms=["ES256"],
                            options={"verify_iat": False, "require": ["iss", "iat"]})
    except jwt.PyJWTError:
        raise _Refusal(403, "InvalidProviderToken") from None
    iat = claims["iat"]
    if (header.get("alg") != "ES256" or header.get("kid") != state.key_id
            or claims["iss"] != state.team_id or not isinstance(iat, int)):
        raise _Refusal(403, "InvalidProviderToken")
    if (iat < state.clock() - 3600 or token in state.expired_jwts
            or state.every_token_expired):
        state._renewal_due = True
        raise _Refusal(403, "ExpiredProviderToken")
    if new:
        if state._last_iat is not None and iat - state._last_iat < 20 * 60 \
                and not state._renewal_due:
            raise _Refusal(429, "TooManyProviderTokenUpdates")
        state._last_iat, state._renewal_due = iat, False


def _check_headers(state: ApnsState, request: Request) -> str:
    """Validate the apns-* headers; returns the push type."""
    h = request.headers
    topic, push_type, priority = h.get("apns-topic"), h.get("apns-push-type", ""), \
        h.get("apns-priority", "10")
    if not topic:
        raise _Refusal(400, "MissingTopic")
    if push_type not in PUSH_TYPES:
        raise _Refusal(400, "InvalidPushType")
    if topic != (f"{state.bundle_id}.voip" if push_type == "voip" else state.bundle_id):
        raise _Refusal(400, "BadTopic")
    if priority not in ("1", "5", "10") or (push_type == "background" and priority != "5"):
        raise _Refusal(400, "BadPriority")
    if not h.get("apns-expiration", "0").isdigit():
        raise _Refusal(400, "BadExpirationDate")
    if len(h.get("apns-collapse-id", "").encode()) > 64:
        raise _Refusal(400, "BadCollapseId")
    if "apns-id" in h and not _APNS_ID.match(h["apns-id"]):
        raise _Refusal(400, "BadMessageId")
    return push_type


async def _hold(state: ApnsState) -> None:
    """While ``holding``, wait until the test sets this request's event in ``held``."""
    if state.holding:
        release = asyncio.Event()
        state.held.append(release)
        state.peak = max(state.peak, len(state.held))
        await release.wait()


def _answer(status: int, reason: str, apns_id: str, state: ApnsState) -> Response:
    headers = {"apns-id": apns_id or "00000000-0000-0000-0000-000000000000"}
    if status == 200:
        return Response(status_code=200, headers=headers)
    if status == 429 and state.retry_after:
        headers["retry-after"] = state.retry_after
    error: dict[str, Any] = {"reason": reason}
    if status == 410:
        error["timestamp"] = int(state.clock() * 1000)
    return Response(json.dumps(error), status_code=status, headers=headers,
                    media_type="application/json")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
