"""HarmonyOS NEXT Push Kit: scenario-specific messages through the v3 REST API.

Endpoint: ``POST https://push-api.cloud.huawei.com/v3/{project_id}/messages:send`` with headers
``Authorization: Bearer <jwt>``, ``push-type: <n>`` and ``Content-Type: application/json``; body
``{"payload": {...}, "target": {"token": [...]}, "pushOptions": {...}}``, up to 1000 tokens
(``max_batch``). Answers ``{"code", "msg", "requestId"}``.

Auth: a service-account key file (``project_id``, ``key_id``, ``sub_account``, ``private_key``,
``token_uri``). HarmonyOS 5+ takes no OAuth: the client signs a JWT with PS256 (SHA256withRSA/PSS;
header ``kid`` = ``key_id``, ``typ`` JWT; claims ``iss`` = ``sub_account``, ``aud`` = ``token_uri``
(``https://oauth-login.cloud.huawei.com/oauth2/v3/token``), ``iat``, ``exp`` = ``iat`` + 3600)
and sends it itself as the bearer token, reused until 60 s before ``exp``
(``vendors.tokens.TokenCache``); nothing is exchanged.

push-type (the scenario), from ``Message``: ``voip`` (every kind ``call``) -> 10 (in-app call,
``VoIPCallPayload``);
kind ``data`` or ``push_type`` background -> 6 (background message, ``BackgroundPayload``);
otherwise 0 (alert: notification, ``AlertPayload``). Push Kit's other scenarios (1 widget update,
2 text-to-speech extension, 7 live view) have no counterpart in ``Message`` and are not sent.

Mapping for push-type 0, ``payload.notification``:

===============  ============================================================================
Message          Push Kit
===============  ============================================================================
category         ``category`` (IM, VOIP, WORK, ...); empty -> ``MARKETING``, the class Push Kit
                 gives apps without self-classification rights
title, body      ``title``, ``body`` (both required by Push Kit: a missing one is sent empty)
large_icon,      ``image``: Push Kit's image is the large icon at the right, so large_icon is
image            taken first and image is the fallback; HTTPS only (another scheme is dropped)
click app        ``clickAction {"actionType": 0}`` (open the app's home ability)
click intent     ``clickAction {"actionType": 1, "action": target}`` (an ability's action)
click deeplink,  ``clickAction {"actionType": 1, "uri": target}`` (the ability whose skills
url              match the URI; HarmonyOS has no "open a browser" action)
data, sender,    ``clickAction.data`` (handed to the app when the notification is tapped);
conversation     a chat's ``conversation`` and ``sender`` under those keys, so that the tap
                 opens the conversation
badge            ``badge {"setNum": n}``
badge_add        ``badge {"addNum": n}``
collapse_id      ``notifyId``: CRC-32 of the id (31 bits), so that a newer notification with the
                 same id replaces the shown one; without a collapse id, CRC-32 of the msg_id,
                 which ``revoke`` names again
expires_at_ms    ``pushOptions.ttl`` seconds, at most 15 days; absent when 0 (default 1 day)
===============  ============================================================================

Kind chat is an alert (category ``IM`` unless given); kind call is push-type 10.
For push-type 6 and 10 the payload is ``{"extraData": <data as a JSON string>}`` (with a
message's ``conversation`` and ``sender``).
``test_message`` = ``true`` in the credentials sets ``pushOptions.testMessage`` (Huawei's
test quota, for apps under development; a test request takes at most 10 tokens, more is refused
with 80300030).

Revoke (``HarmonyClient.revoke``, ``can_revoke``): ``POST /v1/{client_id}/messages:revoke``
(v1 and the app's client id, unlike sends), the same JWT, ``push-type: 0`` and
``{"notifyId", "token": [...]}``: Push Kit withdraws the alert where it is not delivered yet or
shown and not tapped. Credentials then need the optional ``client_id``.

Drop rules: sound, small_icon, channel_id, priority and environment have no Push Kit field
(the category decides how a notification alerts) and are dropped; for push-types 6 and 10
every notification field (title, body, images, click, badge, category, collapse_id) is
dropped and only ``data`` travels. A body over 4096 bytes, tokens excluded (``target``),
raises ``PayloadTooLargeError`` before sending (Push Kit's limit, code 80300008).

Answers (business ``code``, whatever the HTTP status):

- 80000000: every token sent.
- 80100000 (partial success) / 80300007 (all tokens invalid): ``msg`` is JSON
  ``{"success", "failure", "illegalTokens": {<reason>: [tokens]}}``; exactly the listed tokens
  fail with their reason. ``tokenFormatError`` and ``tokenPlatformNotSupport`` mark the token
  invalid; ``noRight`` (the token is of another project, or of a device upgraded from
  HarmonyOS 4) does so only when another token of the request went through, since a wrong
  project id would otherwise wipe every token of the app. Other reasons (entitlements,
  penalties, country) fail the device and keep the token.
- 80200001 / 80200005 (auth error, JWT expired) or HTTP 401: a new JWT, retried once, then
  ``AuthError``; 80300002 (push not enabled for the project) and 80300036 (JWT lifetime over a
  day): ``AuthError``.
- 80300029 (test message quota): ``RateLimitedError``. HTTP 503 is Push Kit's flow control;
  ``vendors.http.call`` raises it as ``TransientError`` (retriable, with any ``Retry-After``).
- 81000001 (inner error), HTTP 5xx, timeouts: ``TransientError``.
- 80300008 (body too large): ``PayloadTooLargeError``.
- any other code (80100001 bad parameter, 80100003 bad payload, 80300010 token count, ...):
  ``RejectedError`` with the code and message.

Documents used:
- "Request Body Structure" (push-scenariozed-api-request-struct),
  https://developer.huawei.com/consumer/en/doc/harmonyos-references/push-scenariozed-api-request-struct
- "Request Body Parameters" (push-scenariozed-api-request-param),
  https://developer.huawei.com/consumer/cn/doc/harmonyos-references/push-scenariozed-api-request-param
- "Response Parameters" (push-scenariozed-api-response),
  https://developer.huawei.com/consumer/cn/doc/harmonyos-references/push-scenariozed-api-response
- "Scenario-specific messaging: overview" (push-scenariozed-api-intro, push-type values and the
  4096-byte limit), https://developer.huawei.com/consumer/cn/doc/harmonyos-references/push-scenariozed-api-intro
- "Generating a JWT Based on a Service Account" (push-jwt-token),
  https://developer.huawei.com/consumer/cn/doc/harmonyos-guides/push-jwt-token
- "Message frequency control" (push-msg-freq-control: HTTP 503 flow control),
  https://developer.huawei.com/consumer/cn/doc/harmonyos-references/push-msg-freq-control
- Huawei's Push Kit server demo (Java), push-kit sample code, server demo, for field shapes.
- "Message Revocation" (push-msg-revoke) and "Recalling a Notification Message"
  (push-revoke-alert), https://developer.huawei.com/consumer/en/doc/harmonyos-references/push-msg-revoke
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import httpx
import msgspec

from proto.envelopes import VendorJob, VendorTarget
from proto.message import Message
from vendors.client import TargetResult
from vendors.common import crc31, parse_credentials, required
from vendors.errors import (
    AuthError,
    NotSupportedError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
    VendorError,
)
from vendors.http import call
from vendors.oauth import ServiceAccountClient, check_pem, sign_jwt
from vendors.tokens import Token, TokenRefused

DEFAULT_BASE_URL = "https://push-api.cloud.huawei.com"
DEFAULT_TOKEN_URI = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
#: Huawei advises JWTs valid for an hour, reused meanwhile.
JWT_LIFETIME_S = 3600
#: Largest body, tokens excluded, in bytes of JSON.
MAX_BODY_BYTES = 4096
#: Push Kit caches a message at most 15 days.
MAX_TTL_S = 1_296_000
DEFAULT_CATEGORY = "MARKETING"

SUCCESS = "80000000"
PARTIAL_SUCCESS = "80100000"
ALL_INVALID = "80300007"
#: Codes after which a new JWT may pass.
_AUTH_REFUSED = frozenset({"80200001", "80200005"})
_ERRORS: dict[str, type[VendorError]] = {
    "80300002": AuthError,
    "80300036": AuthError,
    "80300029": RateLimitedError,
    "80300008": PayloadTooLargeError,
    "81000001": TransientError,
}
#: Illegal-token reasons that say the token itself is dead.
_TOKEN_DEAD = frozenset({"tokenFormatError", "tokenPlatformNotSupport"})
#: Dead token, or a misconfigured app: believed only when another token went through.
_TOKEN_ELSEWHERE = "noRight"


class PushType(IntEnum):
    """The ``push-type`` header values Herald sends."""

    ALERT = 0
    BACKGROUND = 6
    VOIP_CALL = 10


@dataclass(frozen=True, slots=True)
class Credentials:
    """A Push Kit service-account key, as in its JSON file, plus Herald's test switch."""

    project_id: str
    key_id: str
    sub_account: str
    private_key: str = field(repr=False)
    token_uri: str = DEFAULT_TOKEN_URI
    test_message: bool = False
    #: The app's client id, which only the revoke endpoint names (optional for sending).
    client_id: str = ""

    @classmethod
    def from_mapping(cls, m: Mapping[str, str]) -> Credentials:
        """Parse the app's stored credentials; ``ValueError`` names a missing or bad field."""
        project_id, key_id, sub_account, private_key = required(
            m, "HarmonyOS", "project_id", "key_id", "sub_account", "private_key")
        test = m.get("test_message", "false").lower()
        if test not in ("true", "false"):
            raise ValueError("credentials field 'test_message' must be 'true' or 'false'")
        return cls(project_id=project_id, key_id=key_id, sub_account=sub_account,
                   private_key=check_pem(private_key, "private_key"),
                   token_uri=m.get("token_uri") or DEFAULT_TOKEN_URI, test_message=test == "true",
                   client_id=m.get("client_id", "").strip())

    @property
    def identity(self) -> str:
        """What JWTs are cached under: the service account and its key."""
        return f"{self.sub_account}/{self.key_id}"


def push_type_of(message: Message) -> PushType:
    """The scenario ``message`` is sent as."""
    if message.push_type == "voip":
        return PushType.VOIP_CALL
    if message.kind == "data" or message.push_type == "background":
        return PushType.BACKGROUND
    return PushType.ALERT


def notify_id(message: Message, msg_id: str) -> int | None:
    """The alert's ``notifyId``: from its collapse id, else its msg_id (what revoke names)."""
    key = message.collapse_id or msg_id
    return crc31(key) if key else None


def build_payload(message: Message, tokens: list[str], *, ttl_s: int | None,
                  test_message: bool = False, msg_id: str = "") -> dict[str, Any]:
    """The request body for ``tokens``; see the module docstring for the mapping."""
    if push_type_of(message) is PushType.ALERT:
        payload: dict[str, Any] = {"notification": _notification(message, msg_id)}
    else:
        payload = {"extraData": msgspec.json.encode(message.vendor_data()).decode()}
    body: dict[str, Any] = {"payload": payload, "target": {"token": tokens}}
    options: dict[str, Any] = {}
    if ttl_s is not None:
        options["ttl"] = ttl_s
    if test_message:
        options["testMessage"] = True
    if options:
        body["pushOptions"] = options
    return body


def body_size(body: dict[str, Any]) -> int:
    """Bytes of the body as JSON without its tokens, as Push Kit counts against 4096."""
    return len(msgspec.json.encode({k: v for k, v in body.items() if k != "target"}))


class HarmonyClient(ServiceAccountClient):
    """``VendorClient`` for HarmonyOS NEXT Push Kit."""

    name = "harmony"
    max_batch = 1000
    can_revoke = True

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 10.0,
                 verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s, verify=verify, clock=clock)

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        body = build_payload(job.message, [t.token for t in job.targets],
                             ttl_s=self._ttl_s(job.expires_at_ms, MAX_TTL_S),
                             test_message=creds.test_message, msg_id=job.msg_id)
        size = body_size(body)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"Push Kit body is {size} bytes, limit {MAX_BODY_BYTES}")
        url = f"{self._base_url}/v3/{creds.project_id}/messages:send"
        answer = await self._post(creds, url, body, push_type_of(job.message))
        return _results(job.targets, answer)

    async def revoke(self, job: VendorJob, credentials: Mapping[str, str]) -> None:
        """See ``VendorClient.revoke``: ``POST /v1/{client_id}/messages:revoke`` with the
        ``notifyId`` the alert was sent with (collapse id, else msg_id). Only alerts (push-type
        0) can be revoked; the credentials must then carry ``client_id``."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        if not creds.client_id:
            raise AuthError("HarmonyOS credentials lack 'client_id', which revoke needs")
        if push_type_of(job.message) is not PushType.ALERT:
            raise NotSupportedError("Push Kit revokes notifications only, not background or "
                                    "call messages")
        body = {"notifyId": notify_id(job.message, job.msg_id),
                "token": [t.token for t in job.targets]}
        url = f"{self._base_url}/v1/{creds.client_id}/messages:revoke"
        answer = await self._post(creds, url, body, PushType.ALERT)
        if answer.code not in (SUCCESS, PARTIAL_SUCCESS):
            raise _ERRORS.get(answer.code, RejectedError)(answer.describe())

    async def _post(self, creds: Credentials, url: str, body: dict[str, Any],
                    push_type: PushType) -> _Answer:
        """POST ``body`` with the service account's JWT, renewed once if Push Kit refuses it."""
        content = msgspec.json.encode(body)

        async def attempt(bearer: str) -> _Answer:
            response = await call(self._http, "POST", url, content=content, headers={
                "authorization": f"Bearer {bearer}", "push-type": str(int(push_type)),
                "content-type": "application/json; charset=UTF-8"})
            answer = _Answer.read(response)
            if response.status_code == 401 or answer.code in _AUTH_REFUSED:
                raise TokenRefused(answer.describe())
            return answer

        return await self._tokens.call(creds.identity, lambda: self._mint(creds), attempt)

    async def _mint(self, creds: Credentials) -> Token:
        """Sign a fresh JWT: Push Kit takes it as the bearer token itself."""
        now = int(self._clock())
        value = sign_jwt(creds.private_key, algorithm="PS256", kid=creds.key_id,
                         claims={"aud": creds.token_uri, "iss": creds.sub_account,
                                 "iat": now, "exp": now + JWT_LIFETIME_S})
        return Token(value, now + JWT_LIFETIME_S)


class _Illegal(msgspec.Struct, rename="camel"):
    illegal_tokens: dict[str, list[str]] = {}


class _Answer(msgspec.Struct, rename="camel"):
    """Push Kit's answer; an unreadable body reads as code "" with the HTTP status in msg."""

    code: str = ""
    msg: str = ""
    request_id: str = ""

    @classmethod
    def read(cls, response: httpx.Response) -> _Answer:
        try:
            return _answer.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return cls(msg=f"HTTP {response.status_code}: {response.text[:200]}")

    def describe(self) -> str:
        return f"{self.code or 'no code'} {self.msg[:200]} (request {self.request_id or '-'})"

    def illegal_tokens(self) -> dict[str, str] | None:
        """Token -> reason from ``msg``, or None when ``msg`` does not list them."""
        try:
            listed = _illegal.decode(self.msg).illegal_tokens
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        return {token: reason for reason, tokens in listed.items() for token in tokens}


_answer = msgspec.json.Decoder(_Answer)
_illegal = msgspec.json.Decoder(_Illegal)


def _notification(message: Message, msg_id: str) -> dict[str, Any]:
    notification: dict[str, Any] = {"category": message.category or DEFAULT_CATEGORY,
                                    "title": message.title, "body": message.body}
    image = message.large_icon or message.image
    if image.startswith("https://"):
        notification["image"] = image
    click: dict[str, Any] = {"actionType": 0}
    if message.click.type == "intent":
        click = {"actionType": 1, "action": message.click.target}
    elif message.click.type in ("deeplink", "url"):
        click = {"actionType": 1, "uri": message.click.target}
    data = message.vendor_data()
    if data:
        click["data"] = data
    notification["clickAction"] = click
    if message.badge is not None:
        notification["badge"] = {"setNum": message.badge}
    elif message.badge_add is not None:
        notification["badge"] = {"addNum": message.badge_add}
    notify = notify_id(message, msg_id)
    if notify is not None:
        notification["notifyId"] = notify
    return notification


def _results(targets: list[VendorTarget], answer: _Answer) -> list[TargetResult]:
    """Per-device results of an answer, or the error it means for the request as a whole."""
    if answer.code == SUCCESS:
        return [TargetResult(t.registration_id) for t in targets]
    if answer.code not in (PARTIAL_SUCCESS, ALL_INVALID):
        raise _ERRORS.get(answer.code, RejectedError)(answer.describe())
    illegal = answer.illegal_tokens()
    if illegal is None:
        return [TargetResult(t.registration_id, error=f"{answer.code} without a token list")
                for t in targets]
    delivered = any(t.token not in illegal for t in targets)
    return [_outcome(t, illegal.get(t.token, ""), delivered) for t in targets]


def _outcome(target: VendorTarget, reason: str, delivered: bool) -> TargetResult:
    if not reason:
        return TargetResult(target.registration_id)
    dead = reason in _TOKEN_DEAD or (reason == _TOKEN_ELSEWHERE and delivered)
    return TargetResult(target.registration_id, error=reason, token_invalid=dead)
