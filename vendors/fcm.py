"""Firebase Cloud Messaging through the HTTP v1 API, for Android devices.

Endpoint: ``POST https://fcm.googleapis.com/v1/projects/{project_id}/messages:send`` with
``{"message": {...}}``, one registration token per request; 200 answers ``{"name": ...}``.

Auth: a service account (``project_id``, ``client_email``, ``private_key_id``, ``private_key``,
``token_uri``). The client signs an RS256 JWT (header ``kid`` = ``private_key_id``; claims
``iss`` = ``client_email``, ``scope`` = the firebase.messaging scope, ``aud`` = ``token_uri``,
``iat``, ``exp`` = ``iat`` + 3600), posts it to ``token_uri`` as
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>`` and sends with the
``access_token`` it gets back as ``Authorization: Bearer``, reused until 60 s before its
``expires_in`` (``vendors.tokens.TokenCache``). The exchange goes to the credential's
``token_uri``, which is also the audience Google checks; tests point it at a fake.

Batching: FCM v1 has no multi-token send. A job of up to ``max_batch`` (500) targets becomes one
request per token, at most ``MAX_IN_FLIGHT`` (100) in flight per client, as streams of one
HTTP/2 connection (``vendors.h2``); the token exchange is one HTTP/1.1 form post an hour, on
httpx.

Mapping from ``proto.message.Message``:

=================  ==========================================================================
Message            FCM v1 ``message``
=================  ==========================================================================
kind               notify, chat, call: a notification message; data: a data message
title, body        ``notification.title``, ``notification.body`` (not for kind ``data``)
image              ``notification.image``
data, sender,      ``data``; FCM takes strings only: a string as is, any other scalar as its
conversation       JSON text (``1``, ``1.5``, ``true``, ``null``); ``sender`` and
                   ``conversation`` under those keys
badge              ``android.notification.notification_count``
sound              ``android.notification.sound``
small_icon         ``android.notification.icon``
channel_id         ``android.notification.channel_id``
click intent       ``android.notification.click_action`` (the intent action to start)
collapse_id        ``android.collapse_key`` (pending messages collapse) and
                   ``android.notification.tag`` (a shown notification is replaced)
priority           ``android.priority`` ``HIGH`` | ``NORMAL``; ``push_type`` voip (every call)
                   forces HIGH
expires_at_ms      ``android.ttl`` ``"<seconds>s"``, at most 28 days; absent when 0 (FCM's
                   default, 28 days)
=================  ==========================================================================

Drop rules (what FCM cannot carry):

- large_icon: AndroidNotification has no large icon; dropped.
- click ``url`` / ``deeplink``: an FCM notification can only start an intent action, not open a
  URI; the target is dropped and a tap opens the app's launcher activity. ``app`` is the default.
- badge_add: FCM can set a count but not add to one; dropped (``badge`` is carried).
- category: no FCM field; dropped (so are a chat's ``IM`` and a call's ``VOIP``).
- badge_add of a chat (1 by default): dropped like any badge_add.
- environment: FCM has one environment; dropped.
- push_type background: Android has no such notion (a data message is already silent); ignored.
- kind ``data``: a data message (``data`` and ``android`` options only): title, body, image and
  the ``android.notification`` fields are dropped.
- apns / webpush: Herald sends only Android devices through this channel; no ``apns`` block.

Refused before sending: data keys FCM reserves (``from``, ``gcm``, any ``google`` prefix) raise
``RejectedError``; a message whose JSON, token excluded, exceeds 4096 bytes raises
``PayloadTooLargeError`` (FCM's 4 KB payload limit, read conservatively).

Answers, per token (google.rpc error body ``{"error": {code, message, status, details}}`` with an
``FcmError`` ``errorCode`` in ``details``):

- 200: sent.
- 404 ``NOT_FOUND`` / ``UNREGISTERED``: ``token_invalid``.
- 400 ``INVALID_ARGUMENT`` about the token (a field violation on ``message.token`` or a message
  naming the registration token): ``token_invalid``; about anything else: ``RejectedError``.
- 403 ``SENDER_ID_MISMATCH``: the token belongs to another Firebase project. It is marked
  ``token_invalid`` only when another token of the same job went through (proof that the app's
  credentials are right); otherwise it is reported as an error and kept, so that a misconfigured
  app does not lose all its tokens. Any other 403 (``PERMISSION_DENIED``): ``AuthError``.
- 401 ``UNAUTHENTICATED``: new access token, retried once, then ``AuthError``.
- 429 ``RESOURCE_EXHAUSTED`` / ``QUOTA_EXCEEDED``: ``RateLimitedError`` with ``Retry-After``.
- 5xx ``INTERNAL`` / ``UNAVAILABLE``, timeouts: ``TransientError``.
- anything else: ``RejectedError`` with the status, error code and message.

A job in which no token went through raises the most telling of its request failures (so the
sender retries it whole); once some token went through, a failed request is reported for its
device instead (retrying the job would deliver the others twice), marked ``retriable`` when its
error was (a 429, a 5xx, a timeout), so that the sender sends again to that device alone.

Recall: FCM has no API to withdraw a sent message (``can_revoke`` is False); a later
message with the same ``collapse_id`` replaces a shown one (``can_replace``), so a recall with
replacement content replaces the notification of a push that had a collapse id.

Documents used:
- "Firebase Cloud Messaging API: projects.messages.send",
  https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send
- "REST Resource: projects.messages" (Message, AndroidConfig, AndroidNotification),
  https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages
- "ErrorCode", https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
- "FCM Error Codes", https://firebase.google.com/docs/cloud-messaging/error-codes
- "Authorize send requests", https://firebase.google.com/docs/cloud-messaging/auth-server
- "Migrate from legacy FCM APIs to HTTP v1", https://firebase.google.com/docs/cloud-messaging/migrate-v1
- "Using OAuth 2.0 for Server to Server Applications",
  https://developers.google.com/identity/protocols/oauth2/service-account
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from proto.envelopes import VendorJob, VendorTarget
from proto.message import Message, Scalar
from vendors.client import TargetResult
from vendors.common import parse_credentials, required
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    VendorError,
)
from vendors.h2 import H2Client, Response
from vendors.http import call
from vendors.oauth import ServiceAccountClient, check_pem, sign_jwt
from vendors.tokens import Token, TokenRefused

DEFAULT_BASE_URL = "https://fcm.googleapis.com"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Lifetime of the signed assertion; Google accepts at most one hour.
ASSERTION_LIFETIME_S = 3600
#: Largest message, token excluded, in bytes of JSON.
MAX_MESSAGE_BYTES = 4096
#: FCM keeps a message at most four weeks.
MAX_TTL_S = 2_419_200
#: Single-token requests one client keeps in flight.
MAX_IN_FLIGHT = 100
_RESERVED_KEYS = ("from", "gcm")
_RESERVED_PREFIX = "google"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A Firebase service account, as in its JSON key file."""

    project_id: str
    client_email: str
    private_key_id: str
    private_key: str = field(repr=False)
    token_uri: str = DEFAULT_TOKEN_URI

    @classmethod
    def from_mapping(cls, m: Mapping[str, str]) -> Credentials:
        """Parse the app's stored credentials; ``ValueError`` names a missing or bad field."""
        project_id, client_email, private_key_id, private_key = required(
            m, "FCM", "project_id", "client_email", "private_key_id", "private_key")
        return cls(project_id=project_id, client_email=client_email,
                   private_key_id=private_key_id,
                   private_key=check_pem(private_key, "private_key"),
                   token_uri=m.get("token_uri") or DEFAULT_TOKEN_URI)

    @property
    def identity(self) -> str:
        """What access tokens are cached under: the account and its key."""
        return f"{self.client_email}/{self.private_key_id}"


def data_value(value: Scalar) -> str:
    """An FCM data value: strings as they are, other scalars as their JSON text."""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def build_payload(message: Message, *, token: str, ttl_s: int | None) -> dict[str, Any]:
    """The ``messages:send`` body for one token; see the module docstring for the mapping.

    Raises ``RejectedError`` for a data key FCM reserves.
    """
    data = message.vendor_data()
    for key in data:
        if key in _RESERVED_KEYS or key.startswith(_RESERVED_PREFIX):
            raise RejectedError(f"data key {key!r} is reserved by FCM")
    high = message.priority == "high" or message.push_type == "voip"
    android: dict[str, Any] = {"priority": "HIGH" if high else "NORMAL"}
    if ttl_s is not None:
        android["ttl"] = f"{ttl_s}s"
    if message.collapse_id:
        android["collapse_key"] = message.collapse_id
    body: dict[str, Any] = {"token": token}
    if data:
        body["data"] = {key: data_value(value) for key, value in data.items()}
    if message.shows:
        body["notification"] = _present(title=message.title, body=message.body,
                                        image=message.image)
        shown = _present(
            channel_id=message.channel_id, sound=message.sound, icon=message.small_icon,
            tag=message.collapse_id,
            click_action=message.click.target if message.click.type == "intent" else "",
            notification_count=message.badge)
        if shown:
            android["notification"] = shown
    body["android"] = android
    return {"message": body}


def message_size(payload: dict[str, Any]) -> int:
    """Bytes of the payload's message as JSON, its token excluded."""
    return len(msgspec.json.encode(
        {key: value for key, value in payload["message"].items() if key != "token"}))


class FcmClient(ServiceAccountClient):
    """``VendorClient`` for FCM HTTP v1."""

    name = "fcm"
    max_batch = 500
    can_replace = True

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 10.0,
                 verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s, verify=verify, clock=clock)
        self._h2 = H2Client(self._base_url, timeout_s=timeout_s, verify=verify,
                            max_streams=MAX_IN_FLIGHT)

    async def close(self) -> None:
        """See ``VendorClient.close``."""
        await self._h2.close()
        await super().close()

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        template = build_payload(job.message, token="",
                                 ttl_s=self._ttl_s(job.expires_at_ms, MAX_TTL_S))
        size = message_size(template)
        if size > MAX_MESSAGE_BYTES:
            raise PayloadTooLargeError(f"FCM message is {size} bytes, limit {MAX_MESSAGE_BYTES}")
        path = f"/v1/projects/{creds.project_id}/messages:send"
        # Before fanning out: a credential or token endpoint failure fails the job once, whole.
        await self._tokens.get(creds.identity, lambda: self._mint(creds))
        outcomes = await asyncio.gather(
            *(self._send_one(creds, path, template["message"], t) for t in job.targets))
        return _settle(outcomes)

    async def _send_one(self, creds: Credentials, path: str, message: dict[str, Any],
                        target: VendorTarget) -> TargetResult | _Failed:
        content = msgspec.json.encode({"message": {**message, "token": target.token}})

        async def attempt(access_token: str) -> Response:
            response = await self._h2.call("POST", path, {
                "authorization": f"Bearer {access_token}",
                "content-type": "application/json; charset=UTF-8"}, content)
            if response.status == 401:
                raise TokenRefused(_GoogleError.read(response.body).describe())
            return response

        try:
            response = await self._tokens.call(creds.identity, lambda: self._mint(creds),
                                               attempt)
            return _classify(target.registration_id, response)
        except VendorError as err:
            return _Failed(target.registration_id, err)

    async def _mint(self, creds: Credentials) -> Token:
        """Exchange a signed assertion for an access token at the credential's token_uri."""
        now = int(self._clock())
        assertion = sign_jwt(creds.private_key, algorithm="RS256", kid=creds.private_key_id,
                             claims={"iss": creds.client_email, "scope": SCOPE,
                                     "aud": creds.token_uri, "iat": now,
                                     "exp": now + ASSERTION_LIFETIME_S})
        response = await call(self._http, "POST", creds.token_uri,
                              data={"grant_type": JWT_BEARER, "assertion": assertion})
        try:
            answer = _token_answer.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            answer = _TokenAnswer()
        if response.status_code != 200 or not answer.access_token:
            raise AuthError(f"token endpoint refused {creds.client_email}: HTTP "
                            f"{response.status_code} {answer.error} "
                            f"{answer.error_description[:200]}".rstrip())
        return Token(answer.access_token, now + answer.expires_in)


class _TokenAnswer(msgspec.Struct):
    access_token: str = ""
    expires_in: int = 0
    error: str = ""
    error_description: str = ""


class _Violation(msgspec.Struct):
    field: str = ""


class _Detail(msgspec.Struct, rename={"type": "@type", "error_code": "errorCode",
                                      "violations": "fieldViolations"}):
    type: str = ""
    error_code: str = ""
    violations: list[_Violation] = []


class _Status(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""
    details: list[_Detail] = []


class _GoogleError(msgspec.Struct):
    """A google.rpc error body; an unreadable one reads as empty."""

    error: _Status = msgspec.field(default_factory=_Status)

    @classmethod
    def read(cls, body: bytes) -> _GoogleError:
        try:
            return _google_error.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return cls()

    @property
    def fcm_code(self) -> str:
        """The ``FcmError`` error code, else the canonical status."""
        codes = [d.error_code for d in self.error.details if d.type.endswith("FcmError")]
        return next((c for c in codes if c), self.error.status)

    @property
    def about_token(self) -> bool:
        fields = {v.field for d in self.error.details for v in d.violations}
        return "message.token" in fields or "registration token" in self.error.message.lower()

    def describe(self) -> str:
        return f"{self.fcm_code or 'no error code'}: {self.error.message[:200]}"


@dataclass(frozen=True, slots=True)
class _Failed:
    """A device whose request failed as a whole."""

    registration_id: str
    error: VendorError


_token_answer = msgspec.json.Decoder(_TokenAnswer)
_google_error = msgspec.json.Decoder(_GoogleError)


def _present(**fields: str | int | None) -> dict[str, str | int]:
    """The fields that carry a value."""
    return {key: value for key, value in fields.items() if value is not None and value != ""}


def _classify(registration_id: str, response: Response) -> TargetResult:
    """The device's outcome of a 2xx/4xx answer; raises for a refusal of the whole request."""
    if response.status == 200:
        return TargetResult(registration_id)
    answer = _GoogleError.read(response.body)
    code = answer.fcm_code
    if response.status == 404 or code == "UNREGISTERED":
        return TargetResult(registration_id, error="UNREGISTERED", token_invalid=True)
    if code == "INVALID_ARGUMENT" and answer.about_token:
        return TargetResult(registration_id, error="INVALID_ARGUMENT", token_invalid=True)
    if code == "SENDER_ID_MISMATCH":
        return TargetResult(registration_id, error=code)
    if response.status == 403:
        raise AuthError(f"HTTP 403 {answer.describe()}")
    raise RejectedError(f"HTTP {response.status} {answer.describe()}")


def _settle(outcomes: list[TargetResult | _Failed]) -> list[TargetResult]:
    """Per-device results of a fanned-out job, or the job's error if nothing went through."""
    delivered = any(isinstance(o, TargetResult) and not o.error for o in outcomes)
    failures = [o.error for o in outcomes if isinstance(o, _Failed)]
    if failures and not delivered:
        final = [f for f in failures if not f.retriable]
        raise final[0] if final else max(failures, key=_retry_weight)
    return [_final(o, delivered) for o in outcomes]


def _final(outcome: TargetResult | _Failed, delivered: bool) -> TargetResult:
    if isinstance(outcome, _Failed):
        # Others went through: retrying the whole job would send them twice, but this device
        # alone may be sent again when its request failed for a passing reason.
        return TargetResult(outcome.registration_id, error=outcome.error.reason,
                            retriable=outcome.error.retriable)
    if outcome.error == "SENDER_ID_MISMATCH" and delivered:
        return TargetResult(outcome.registration_id, error=outcome.error, token_invalid=True)
    return outcome


def _retry_weight(error: VendorError) -> tuple[bool, float]:
    """Prefer a rate limit and its longest Retry-After: retrying sooner would be refused."""
    return isinstance(error, RateLimitedError), error.retry_after_s or 0.0
