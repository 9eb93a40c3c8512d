"""Apple Push Notification service (APNs): the HTTP/2 provider API with token-based auth.

Request: ``POST /3/device/<device token>`` over HTTP/2 and TLS to ``api.push.apple.com``
(``production``) or ``api.sandbox.push.apple.com`` (``development``): the message's
``environment`` when it names one, else the credentials' ``environment``. One request per
device: APNs has no batch send, so ``send`` issues a job's requests concurrently as streams
of ONE connection per (team, key, environment). APNs refuses provider tokens of several
teams on one connection; keeping each key on its own connection also keeps two keys of a
team from looking like token updates. The HTTP/2 client (``vendors.h2``) honours the
server's SETTINGS_MAX_CONCURRENT_STREAMS (APNs grants one stream until a valid token was seen,
then more); ``max_streams`` (default 1000) caps the streams of a connection at once.

Auth: ``authorization: bearer <JWT>``, ES256-signed with the team's .p8 key, header
``{alg: ES256, kid: key_id}``, claims ``{iss: team_id, iat: now}``. APNs refuses a token whose
``iat`` is over an hour old (403 ExpiredProviderToken) and one renewed more often than every
20 minutes (429 TooManyProviderTokenUpdates): one token per (team, key) is reused by every
request and renewed once it is 50 minutes old. On ExpiredProviderToken the token is renewed
once (by the first request refused with it; the others pick up the new one) and the request
retried once; any 403 after that, or InvalidProviderToken at once, raises ``AuthError``.

Headers: ``apns-topic`` (bundle id, ``<bundle id>.voip`` for VoIP), ``apns-push-type``,
``apns-priority``, ``apns-expiration``, ``apns-collapse-id``, ``apns-id`` (a lower-case UUID
per notification). Payload ``{"aps": {...}, <custom keys>}``, at most 4096 bytes (5120 for
VoIP), checked before sending (``PayloadTooLargeError``).

Mapping from ``proto.message.Message`` (push type: voip if ``push_type`` is voip; else
background if ``kind`` is data or ``push_type`` is background; else alert):

==================  ==========================================================================
Message             APNs
==================  ==========================================================================
kind=data           background push: ``aps`` is ``{"content-available": 1}`` only, no alert;
                    with push_type voip, a VoIP push whose ``aps`` is empty
kind=chat           an alert push (``badge_add`` dropped, see below); ``conversation`` and
                    ``sender`` as custom top-level keys
kind=call           a VoIP push (the message's push_type is voip): topic ``<bundle id>.voip``,
                    priority 10; PushKit hands the app the whole payload
environment         the host (production or development); the credentials' when empty
title, body         ``aps.alert.{title,body}`` (alert, voip: PushKit hands the app the whole
                    payload); dropped from background pushes, which must carry no alert, sound
                    or badge
data, sender,       custom top-level keys beside ``aps`` (all push types); the keys ``aps``
conversation        and ``herald`` are reserved: such a message is refused (RejectedError)
badge               ``aps.badge`` (alert only)
badge_add           dropped: APNs sets an absolute badge and cannot add to the device's count
sound               ``aps.sound`` (alert only)
click               app: nothing (a tap opens the app); url, deeplink: ``herald.click``
                    ``{type, target}`` for the app to open on tap (alert only); intent:
                    dropped (Android only)
image               ``herald.image`` plus ``aps.mutable-content: 1``, so the app's
                    notification service extension downloads and attaches it (alert only)
category            ``aps.category`` (alert only): the UNNotificationCategory identifier whose
                    actions iOS shows; an identifier the app did not register shows no
                    actions, so an Android vendor classification sent here is harmless
small_icon,         dropped: iOS always shows the app icon
large_icon
channel_id          dropped: Android notification channels have no iOS counterpart
collapse_id         ``apns-collapse-id`` (at most 64 UTF-8 bytes, else RejectedError); without
                    one, the msg_id: a job retried after a partial failure then replaces the
                    notification on devices that got it, instead of showing it twice
priority            ``apns-priority`` 10 for high, 5 for normal; background pushes always 5
push_type           ``apns-push-type``; voip also switches the topic to ``<bundle id>.voip``
(thread-id)         not set: Message has no grouping field, and collapse_id replaces, it does
                    not group
(expires_at_ms)     ``apns-expiration``: unix seconds, rounded up; 0 (deliver at most once,
                    do not store) when the job has no expiry or it has passed
==================  ==========================================================================

Responses: 200 delivered. 410 (Unregistered, ExpiredToken) and 400 BadDeviceToken,
DeviceTokenNotForTopic, MissingDeviceToken mark that token invalid. Reasons every request of
the job would get (provider token, topic, headers, payload) raise for the whole job, as do 429
(RateLimitedError, Retry-After honoured) and 5xx or transport failures (TransientError, via
``vendors.h2.H2Client.call``); a reason new to us on another status fails that device only. When
requests fail as a whole and no device of the job got the notification, the job raises, most
severe first: AuthError, RejectedError, RateLimitedError, TransientError. Once some device got
it, each failed device is reported with its error instead (``retriable`` for 429 and transient
failures, so that the sender retries those devices alone and nobody sees it twice).

Recall: APNs has no API to withdraw a delivered notification (``can_revoke`` is False); an app
can only replace one through ``apns-collapse-id`` (``can_replace``): a recall with replacement
content is sent as a push whose collapse id is the recalled one's (its msg_id by default).

Documents (Apple Developer, User Notifications):
- Sending notification requests to APNs, https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
- Establishing a token-based connection to APNs, https://developer.apple.com/documentation/usernotifications/establishing-a-token-based-connection-to-apns
- Generating a remote notification, https://developer.apple.com/documentation/usernotifications/generating-a-remote-notification
- Establishing a connection to Apple Push Notification service (APNs), https://developer.apple.com/documentation/usernotifications/establishing-a-connection-to-apns
- Handling notification responses from APNs, https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns
- Pushing background updates to your App, https://developer.apple.com/documentation/usernotifications/pushing-background-updates-to-your-app
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import jwt
import msgspec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from proto.envelopes import VendorJob, VendorTarget
from proto.message import Message
from vendors.client import BaseClient, TargetResult
from vendors.common import parse_credentials, required
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
    VendorError,
)
from vendors.h2 import H2Client

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120
MAX_COLLAPSE_ID = 64
#: APNs refuses a token older than 60 minutes and renewals closer than 20 minutes apart;
#: renewing at 50 keeps both bounds with 10 minutes to spare for clock skew.
TOKEN_RENEW_S = 50 * 60
#: Top-level payload keys Herald fills itself; a message's data may not use them.
RESERVED_KEYS = frozenset({"aps", "herald"})
#: APNs asks providers to keep connections open rather than reconnect per burst.
_KEEPALIVE_S = 600.0

Environment = Literal["production", "development"]
PushType = Literal["alert", "background", "voip"]
_ENVIRONMENTS: dict[str, Environment] = {"production": "production",
                                         "development": "development"}

#: Reasons that condemn one device token: the sender forgets it.
_TOKEN_REASONS = frozenset(
    {"BadDeviceToken", "DeviceTokenNotForTopic", "MissingDeviceToken", "Unregistered",
     "ExpiredToken"})
#: Reasons every request of a job would get (same provider token, headers and payload).
_JOB_REASONS: dict[str, type[VendorError]] = {
    "ExpiredProviderToken": AuthError, "InvalidProviderToken": AuthError,
    "MissingProviderToken": AuthError, "Forbidden": AuthError, "BadCertificate": AuthError,
    "BadCertificateEnvironment": AuthError,
    "BadCollapseId": RejectedError, "BadExpirationDate": RejectedError,
    "BadMessageId": RejectedError, "BadPriority": RejectedError, "BadTopic": RejectedError,
    "DuplicateHeaders": RejectedError, "InvalidPushType": RejectedError,
    "MissingTopic": RejectedError, "PayloadEmpty": RejectedError,
    "TopicDisallowed": RejectedError, "BadPath": RejectedError,
    "MethodNotAllowed": RejectedError, "PayloadTooLarge": PayloadTooLargeError,
    "IdleTimeout": TransientError,
}
#: The same by status, for a reason new to us.
_JOB_STATUSES: dict[int, type[VendorError]] = {
    403: AuthError, 404: RejectedError, 405: RejectedError, 413: PayloadTooLargeError}
#: Which error a job raises when its requests failed differently: the first that matches.
_SEVERITY: tuple[type[VendorError], ...] = (
    AuthError, RejectedError, RateLimitedError, TransientError, VendorError)


@dataclass(frozen=True, slots=True)
class Credentials:
    """An app's APNs token-auth credentials; ``private_key`` is the .p8 file's PEM text."""

    team_id: str
    key_id: str
    bundle_id: str
    environment: Environment
    private_key: str = field(repr=False)

    @classmethod
    def from_mapping(cls, m: Mapping[str, str]) -> Credentials:
        """Parse stored credentials; ``ValueError`` names a missing or bad field, never a value."""
        team_id, key_id, bundle_id, environment_name, private_key = required(
            m, "APNs", "team_id", "key_id", "bundle_id", "environment", "private_key")
        environment = _ENVIRONMENTS.get(environment_name)
        if environment is None:
            raise ValueError("APNs credentials: environment must be production or development")
        _check_signing_key(private_key)
        return cls(team_id, key_id, bundle_id, environment, private_key)


def _check_signing_key(pem: str) -> None:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("APNs credentials: private_key is not a PEM private key") from None
    if not (isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)):
        raise ValueError("APNs credentials: private_key is not a P-256 (ES256) key")


def push_type(message: Message) -> PushType:
    """The APNs push type of ``message`` (see the module docstring)."""
    if message.push_type == "voip":
        return "voip"
    if message.kind == "data" or message.push_type == "background":
        return "background"
    return "alert"


def build_payload(message: Message) -> dict[str, Any]:
    """The JSON payload for ``message``; ``RejectedError`` if its data uses a reserved key."""
    data = message.vendor_data()
    reserved = RESERVED_KEYS.intersection(data)
    if reserved:
        raise RejectedError(f"data keys {sorted(reserved)} are reserved in APNs payloads")
    kind = push_type(message)
    if kind == "background":
        return {"aps": {"content-available": 1}, **data}
    aps: dict[str, Any] = {}
    alert = {k: v for k, v in (("title", message.title), ("body", message.body)) if v}
    if alert:
        aps["alert"] = alert
    extras: dict[str, Any] = {}
    if kind == "alert":
        if message.badge is not None:
            aps["badge"] = message.badge
        if message.sound:
            aps["sound"] = message.sound
        if message.category:
            aps["category"] = message.category
        if message.image:
            aps["mutable-content"] = 1
            extras["image"] = message.image
        if message.click.type in ("url", "deeplink"):
            extras["click"] = {"type": message.click.type, "target": message.click.target}
    payload = {"aps": aps, **data}
    if extras:
        payload["herald"] = extras
    return payload


def build_headers(message: Message, *, bundle_id: str, msg_id: str, expires_at_ms: int,
                  now_s: float) -> dict[str, str]:
    """The APNs request headers for ``message``, but ``authorization`` and ``apns-id``."""
    kind = push_type(message)
    collapse_id = message.collapse_id or msg_id
    if len(collapse_id.encode()) > MAX_COLLAPSE_ID:
        raise RejectedError(f"collapse_id exceeds {MAX_COLLAPSE_ID} bytes in UTF-8")
    high = message.priority == "high" and kind != "background"
    expired = not expires_at_ms or expires_at_ms <= now_s * 1000
    return {
        "apns-topic": f"{bundle_id}.voip" if kind == "voip" else bundle_id,
        "apns-push-type": kind,
        "apns-priority": "10" if high else "5",
        "apns-expiration": "0" if expired else str(math.ceil(expires_at_ms / 1000)),
        "apns-collapse-id": collapse_id,
    }


class _ErrorBody(msgspec.Struct):
    reason: str = ""


_error_body = msgspec.json.Decoder(_ErrorBody)


@dataclass(slots=True)
class _Token:
    value: str
    issued_at: float


class ApnsClient(BaseClient):
    """``VendorClient`` for APNs."""

    name = "apns"
    max_batch = 500
    can_replace = True

    def __init__(self, *, base_url: str = PRODUCTION_URL, sandbox_url: str = SANDBOX_URL,
                 timeout_s: float = 10.0, verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.time, max_streams: int = 1000) -> None:
        self._urls: dict[Environment, str] = {"production": base_url,
                                              "development": sandbox_url}
        self._timeout_s = timeout_s
        self._verify = verify
        self._clock = clock
        self._max_streams = max_streams
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._connections: dict[tuple[str, str, Environment], H2Client] = {}

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        headers = build_headers(job.message, bundle_id=creds.bundle_id, msg_id=job.msg_id,
                                expires_at_ms=job.expires_at_ms, now_s=self._clock())
        body = msgspec.json.encode(build_payload(job.message))
        limit = MAX_VOIP_PAYLOAD if headers["apns-push-type"] == "voip" else MAX_PAYLOAD
        if len(body) > limit:
            raise PayloadTooLargeError(f"APNs payload is {len(body)} bytes, over {limit}")
        connection = self._connection(creds, job.message.environment or creds.environment)
        outcomes = await asyncio.gather(
            *(self._deliver(connection, creds, target, headers, body) for target in job.targets),
            return_exceptions=True)
        return _job_results(outcomes, job)

    async def close(self) -> None:
        """See ``VendorClient.close``."""
        for connection in self._connections.values():
            await connection.close()
        self._connections.clear()

    def _connection(self, creds: Credentials, environment: Environment) -> H2Client:
        key = (creds.team_id, creds.key_id, environment)
        connection = self._connections.get(key)
        if connection is None:
            connection = H2Client(self._urls[environment], timeout_s=self._timeout_s,
                                  verify=self._verify, max_streams=self._max_streams,
                                  keepalive_s=_KEEPALIVE_S)
            self._connections[key] = connection
        return connection

    def _provider_token(self, creds: Credentials, refused: str = "") -> str:
        """The cached JWT, renewed when 50 minutes old or when it is the one APNs ``refused``.

        Signing does not await, so concurrent requests cannot both renew the same token.
        """
        key = (creds.team_id, creds.key_id)
        now = self._clock()
        token = self._tokens.get(key)
        if token is None or token.value == refused or now - token.issued_at >= TOKEN_RENEW_S:
            value = jwt.encode({"iss": creds.team_id, "iat": int(now)}, creds.private_key,
                               algorithm="ES256", headers={"kid": creds.key_id, "typ": None})
            token = self._tokens[key] = _Token(value, now)
        return token.value

    async def _deliver(self, connection: H2Client, creds: Credentials, target: VendorTarget,
                       headers: dict[str, str], body: bytes) -> TargetResult:
        # Quoting keeps a malformed token a per-device BadDeviceToken, not a job-wide BadPath.
        path = "/3/device/" + quote(target.token, safe="")
        headers = {**headers, "apns-id": str(uuid.uuid4())}
        token = self._provider_token(creds)
        status, reason = await _post(connection, path, headers, token, body)
        if status == 403 and reason == "ExpiredProviderToken":
            token = self._provider_token(creds, refused=token)
            status, reason = await _post(connection, path, headers, token, body)
        return _target_result(target.registration_id, status, reason)


#: What changes with every request: the device's path and the notification's id.
_UNIQUE = frozenset({":path", "apns-id"})


async def _post(http: H2Client, path: str, headers: dict[str, str], token: str,
                body: bytes) -> tuple[int, str]:
    response = await http.call("POST", path, {**headers, "authorization": f"bearer {token}"},
                               body, unique=_UNIQUE)
    if response.status == 200:
        return 200, ""
    try:
        reason = _error_body.decode(response.body).reason
    except (msgspec.DecodeError, msgspec.ValidationError):
        reason = ""
    return response.status, reason


def _target_result(registration_id: str, status: int, reason: str) -> TargetResult:
    """One device's outcome; raises when the reason would fail every request of the job."""
    if status == 200:
        return TargetResult(registration_id)
    if status == 410 or reason in _TOKEN_REASONS:
        return TargetResult(registration_id, error=reason or f"HTTP {status}",
                            token_invalid=True)
    error = _JOB_REASONS.get(reason) or _JOB_STATUSES.get(status)
    if error is not None:
        raise error(f"APNs {status} {reason}".rstrip())
    return TargetResult(registration_id, error=reason or f"HTTP {status}")


def _job_results(outcomes: list[TargetResult | BaseException],
                 job: VendorJob) -> list[TargetResult]:
    """The per-device results; when no request went through, the most severe error instead.

    Once a device got the notification, raising would make the sender send the whole job
    again and show it twice there: each failed device is reported instead, ``retriable`` when
    its error was (the sender then sends to that device alone).
    """
    results: list[TargetResult] = []
    errors: list[VendorError] = []
    for outcome, target in zip(outcomes, job.targets, strict=True):
        if isinstance(outcome, TargetResult):
            results.append(outcome)
        elif isinstance(outcome, VendorError):
            errors.append(outcome)
            results.append(TargetResult(target.registration_id, error=outcome.reason,
                                        retriable=outcome.retriable))
        else:
            raise outcome
    delivered = any(isinstance(o, TargetResult) and not o.error for o in outcomes)
    if errors and not delivered:
        raise min(errors, key=lambda err: next(
            rank for rank, kind in enumerate(_SEVERITY) if isinstance(err, kind)))
    return results
