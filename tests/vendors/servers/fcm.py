"""A fake FCM: Google's OAuth token endpoint and the HTTP v1 ``messages:send``, checked as Google
checks them.

``POST /token`` takes ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>``:
the assertion must be RS256 under the service account's key (``kid`` its key id) with ``iss`` the
account, the firebase.messaging scope, ``aud`` this endpoint, and ``exp`` at most an hour after
``iat``; it answers an access token good for ``token_lifetime_s``.
``POST /v1/projects/{project}/messages:send`` wants a live access token, the account's project and
a valid message (exactly one target, string data values, known fields, ``ttl`` as ``"<n>s"``, at
most 4096 bytes without the token). ``faults`` makes one token fail with an FCM error;
``refuse_next`` refuses that many sends with 401 and revokes every access token;
``token_statuses`` forces the next token endpoint answers.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_RE = re.compile(r"^[\w:-]{8,4096}$")
TTL_RE = re.compile(r"^\d+(\.\d{1,9})?s$")
MESSAGE_FIELDS = {"name", "token", "topic", "condition", "data", "notification", "android",
                  "apns", "webpush", "fcm_options"}
NOTIFICATION_FIELDS = {"title", "body", "image"}
ANDROID_FIELDS = {"collapse_key", "priority", "ttl", "restricted_package_name", "data",
                  "notification", "fcm_options", "direct_boot_ok"}
ANDROID_NOTIFICATION_FIELDS = {
    "title", "body", "icon", "color", "sound", "tag", "click_action", "body_loc_key",
    "body_loc_args", "title_loc_key", "title_loc_args", "channel_id", "ticker", "sticky",
    "event_time", "local_only", "notification_priority", "default_sound",
    "default_vibrate_timings", "default_light_settings", "vibrate_timings", "visibility",
    "notification_count", "light_settings", "image", "bypass_proxy_notification", "proxy"}

#: Fault name -> (HTTP status, canonical status, FcmError code, message, violated field).
FAULTS = {
    "UNREGISTERED": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.", ""),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                         "The registration token is not a valid FCM registration token", ""),
    "BAD_PAYLOAD": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                    "Request contains an invalid argument.", "message.android.ttl"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch",
                           ""),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED",
                       "Quota exceeded for quota metric.", ""),
    "INTERNAL": (500, "INTERNAL", "INTERNAL", "Internal error encountered.", ""),
    "UNAVAILABLE": (503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.",
                    ""),
    "PERMISSION_DENIED": (403, "PERMISSION_DENIED", "",
                          "Permission 'cloudmessaging.messages.create' denied", ""),
}


@dataclass
class ServiceAccount:
    """A service account the fake knows, and the credential mapping an app would store."""

    project_id: str
    client_email: str
    key_id: str
    private_key: rsa.RSAPrivateKey

    def credentials(self, token_uri: str) -> dict[str, str]:
        pem = self.private_key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        return {"project_id": self.project_id, "client_email": self.client_email,
                "private_key_id": self.key_id, "private_key": pem, "token_uri": token_uri}


@dataclass
class FcmState:
    """What the fake saw, and how it is told to answer."""

    account: ServiceAccount
    clock: Callable[[], float]
    token_lifetime_s: int = 3600
    #: token -> the fault (a key of FAULTS) to answer for it.
    faults: dict[str, str] = field(default_factory=dict)
    retry_after: str = ""
    #: Refuse this many sends with 401 UNAUTHENTICATED, revoking all access tokens.
    refuse_next: int = 0
    #: HTTP statuses (5xx) to answer the next token requests with.
    token_statuses: list[int] = field(default_factory=list)
    token_attempts: int = 0
    #: Verified assertion claims, one per token request.
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    #: Accepted sends: {"authorization": ..., "content_type": ..., "body": ...}.
    sends: list[dict[str, Any]] = field(default_factory=list)
    access_tokens: dict[str, float] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)


def _error(status: int, canonical: str, message: str, *details: dict[str, Any],
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message, "status": canonical,
                                   "details": list(details)}}, status, headers=headers)


def _fault(name: str, retry_after: str) -> JSONResponse:
    status, canonical, code, message, violated = FAULTS[name]
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": code}] if code else []
    if violated:
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": violated, "description": message}]})
    headers = {"retry-after": retry_after} if status == 429 and retry_after else None
    return _error(status, canonical, message, *details, headers=headers)


def _violations(message: dict[str, Any]) -> list[tuple[str, str]]:
    """What FCM would refuse in ``message``, as (field, description)."""
    found = [(f"message.{k}", "Unknown name") for k in set(message) - MESSAGE_FIELDS]
    if sum(k in message for k in ("token", "topic", "condition")) != 1:
        found.append(("message", "Exactly one of token, topic or condition is required"))
    for i, (key, value) in enumerate(message.get("data", {}).items()):
        if not isinstance(value, str):
            found.append((f"message.data[{i}].value", f"Invalid value (TYPE_STRING), {value}"))
        if key in ("from", "gcm") or key.startswith("google"):
            found.append((f"message.data[{i}].key", "Invalid data key"))
    found += [(f"message.notification.{k}", "Unknown name")
              for k in set(message.get("notification", {})) - NOTIFICATION_FIELDS]
    android = message.get("android", {})
    found += [(f"message.android.{k}", "Unknown name") for k in set(android) - ANDROID_FIELDS]
    if android.get("priority", "NORMAL") not in ("NORMAL", "HIGH"):
        found.append(("message.android.priority", "Invalid enum value"))
    ttl = android.get("ttl", "0s")
    if not TTL_RE.match(ttl) or float(ttl[:-1]) > 2_419_200:
        found.append(("message.android.ttl", "Invalid duration"))
    shown = android.get("notification", {})
    found += [(f"message.android.notification.{k}", "Unknown name")
              for k in set(shown) - ANDROID_NOTIFICATION_FIELDS]
    count = shown.get("notification_count", 0)
    if not isinstance(count, int) or count < 0:
        found.append(("message.android.notification.notification_count", "Invalid value"))
    return found


def fcm_app(state: FcmState) -> Starlette:
    """The fake FCM as an ASGI app."""
    account = state.account
    public_key = account.private_key.public_key()

    async def token(request: Request) -> Response:
        # starlette's form parser needs python-multipart; a urlencoded body is all Google takes.
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        state.token_attempts += 1
        if state.token_statuses:
            return Response(b"", state.token_statuses.pop(0))
        if form.get("grant_type") != JWT_BEARER:
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            if header.get("alg") != "RS256" or header.get("kid") != account.key_id:
                raise jwt.InvalidTokenError("wrong alg or kid")
            claims = jwt.decode(assertion, public_key, algorithms=["RS256"],
                                audience=str(request.url),
                                options={"verify_exp": False, "verify_iat": False,
                                         "require": ["iss", "scope", "aud", "iat", "exp"]})
        except jwt.InvalidTokenError:
            return JSONResponse({"error": "invalid_grant",
                                 "error_description": "Invalid JWT Signature."}, 400)
        now = state.clock()
        if (claims["iss"] != account.client_email or SCOPE not in claims["scope"].split()
                or not claims["iat"] - 60 <= now < claims["exp"]
                or claims["exp"] - claims["iat"] > 3600):
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid JWT."},
                                400)
        state.token_requests.append(claims)
        value = f"ya29.fake-{next(state._ids)}"
        state.access_tokens[value] = now + state.token_lifetime_s
        return JSONResponse({"access_token": value, "expires_in": state.token_lifetime_s,
                             "token_type": "Bearer"})

    async def send(request: Request) -> Response:
        # Read the body before answering: hypercorn's HTTP/2 stream breaks on data arriving
        # for a stream it already answered.
        raw = await request.body()
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if state.refuse_next and bearer in state.access_tokens:
            state.refuse_next -= 1
            state.access_tokens.clear()
        if state.access_tokens.get(bearer, 0) <= state.clock():
            return _error(401, "UNAUTHENTICATED",
                          "Request had invalid authentication credentials.")
        if request.path_params["project"] != account.project_id:
            return _error(403, "PERMISSION_DENIED", "Permission denied on resource project.")
        try:
            message = msgspec.json.decode(raw)["message"]
        except (msgspec.DecodeError, KeyError, TypeError):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        violations = _violations(message)
        if violations:
            return _error(400, "INVALID_ARGUMENT", violations[0][1], {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": f, "description": d} for f, d in violations]})
        size = len(msgspec.json.encode({k: v for k, v in message.items() if k != "token"}))
        if size > 4096:
            return _error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        target = message["token"]
        fault = state.faults.get(target, "" if TOKEN_RE.match(target) else "INVALID_ARGUMENT")
        if fault:
            return _fault(fault, state.retry_after)
        state.sends.append({"authorization": request.headers["authorization"],
                            "content_type": request.headers.get("content-type", ""),
                            "http_version": request.scope.get("http_version", ""),
                            "body": {"message": message}})
        return JSONResponse({"name": f"projects/{account.project_id}/messages/"
                                     f"0:{next(state._ids)}"})

    return Starlette(routes=[
        Route("/token", token, methods=["POST"]),
        Route("/v1/projects/{project}/messages:send", send, methods=["POST"]),
    ])
