"""Huawei Push Kit (HMS Core, Android): the v1 downlink message API with an app-level
OAuth 2.0 access token.

Endpoints (``base_url`` and ``auth_url`` point elsewhere for tests):

- token: ``POST https://oauth-login.cloud.huawei.com/oauth2/v3/token``, form
  ``grant_type=client_credentials&client_id=..&client_secret=..``; answer ``access_token``,
  ``expires_in`` (seconds, an hour today). Cached per client id, renewed a minute early.
- send: ``POST https://push-api.cloud.huawei.com/v1/{client_id}/messages:send`` with
  ``Authorization: Bearer <access_token>`` and ``{"validate_only": false, "message": {...}}``;
  at most 1000 tokens per request, the message at most 4096 bytes not counting the tokens
  (checked before sending: ``PayloadTooLargeError``).
- revoke: ``POST https://push-api.cloud.huawei.com/v1/{client_id}/messages:revoke``, header
  ``push-type: 0``, body ``{"notifyId": <int>, "token": [...]}`` (``HuaweiClient.revoke``,
  ``can_revoke``).

Credentials: ``client_id`` (the OAuth 2.0 client id of the app in AppGallery Connect, which is
also the path segment), ``client_secret``, and optionally ``badge_class`` (the app's launcher
activity, which Huawei's badge needs). For delivery receipts, all optional: ``receipt_id``
(the receipt configuration in AppGallery Connect that messages are to use, sent as
``android.receipt_id``; without it Huawei uses the app's or the project's default one), and
``receipt_user`` and ``receipt_secret`` (that configuration's callback user name and key,
which ``herald receipts`` checks Huawei's signature with: it takes no Huawei receipt of an app
without them; ``vendors.receipts.huawei``). The receipt URL is set in AppGallery Connect, not
per message: ``https://<receipts host>/receipts/huawei/<app id>``.

Mapping from ``proto.message.Message`` into ``message`` (``android.*`` unless noted):

=================  ==========================================================================
Message            Huawei
=================  ==========================================================================
kind=notify, chat, ``android.notification`` is present: a notification message (a chat has
call               category IM and a call VOIP unless they name one; a call's urgency is HIGH)
kind=data          no notification: a pass-through (data) message delivered to the app
data, sender,      ``message.data``, the JSON object as a string (every kind), with
conversation       ``sender`` and ``conversation`` under those keys
title, body        ``notification.title``, ``notification.body``
click              ``notification.click_action``: app -> type 3; url -> type 2 + ``url``;
                   intent and deeplink -> type 1 + ``intent`` (an intent or scheme URI)
small_icon         ``notification.icon`` (a local resource such as ``/raw/ic_push``)
large_icon, image  ``notification.image``, the picture on the right of the notification;
                   ``large_icon`` wins when both are set (Huawei has one picture slot)
sound              ``notification.sound`` with ``default_sound: false``; without it
                   ``default_sound: true``
channel_id         ``notification.channel_id``
badge, badge_add   ``notification.badge`` ``{set_num | add_num, class: badge_class}``
category           ``category`` (IM, VOIP, SUBSCRIPTION, ..., MARKETING; passed as given)
push_type=voip     ``category: VOIP`` when no category is given
priority           ``urgency``: high -> HIGH, normal -> NORMAL
collapse_id        ``notification.tag`` (a newer notification replaces the shown one);
                   also ``collapse_key`` when it is an integer from -1 to 100
(job) task_id      ``bi_tag``, so delivery receipts name the task
(cred) receipt_id  ``receipt_id``, the receipt configuration to post receipts by
(job) msg_id       ``notification.notify_id``, a 31-bit hash, which ``revoke`` names again
(job) expiry       ``ttl`` as ``"<seconds>s"``; Huawei's default (one day) when none
=================  ==========================================================================

Drop rules:

- badge, badge_add: dropped unless the credentials give ``badge_class``.
- large_icon and image together: ``image`` is dropped (one picture slot, ``large_icon`` kept).
- collapse_id: sent as ``collapse_key`` only when it is an integer from -1 to 100 (Huawei's
  offline cache groups); any other value only sets the notification ``tag``.
- push_type alert and background: not sent; ``kind`` decides notification or pass-through.
- environment: Push Kit has one environment; dropped.
- For kind=data the notification-only fields (title, body, click, icons, image, sound,
  channel_id, badge) are not sent: Huawei delivers a data message to the app alone.

Results: ``code`` in the JSON answer, whatever the HTTP status. 80000000 success; 80100000
partial success, ``msg`` is a JSON string whose ``illegal_tokens`` are the refused tokens
(those, and only those, are ``token_invalid``); 80300007 all tokens invalid; 80200001 and
80200003 (access token refused or expired) and 80600003 (OAuth check failed) refresh the token
once, then ``AuthError``; 80300008 ``PayloadTooLargeError``; 81000001 ``TransientError``; any
other code (80100001/3/4/13/16 bad request, 80300002 no permission, 80300010 too many tokens)
``RejectedError``. HTTP 429 is ``RateLimitedError`` and 5xx (503 is Huawei's flow control)
``TransientError``, through ``vendors.http.call``.

Sources:
- "Downlink Message Sending", https://developer.huawei.com/consumer/en/doc/HMSCore-Guides/
  android-server-dev-0000001050040110
- "Sending Downlink Messages" (restrictions, message structure, result codes),
  https://developer.huawei.com/consumer/en/doc/HMSCore-References/
  https-send-api-0000001050986197
- "Client Credentials" (OAuth 2.0, oauth2/v3/token), https://developer.huawei.com/consumer/
  cn/doc/HMSCore-Guides/oauth2-0000001212610981
- "开发消息回执" (receipt configuration, ``receipt_id``), https://developer.huawei.com/consumer/
  cn/doc/harmonyos-guides/push-msg-receipt; the receipts themselves: ``vendors.receipts.huawei``.
- "Message Revocation", https://developer.huawei.com/consumer/en/doc/harmonyos-references/
  push-msg-revoke (documented in the HarmonyOS reference, where Huawei describes a
  service-account JWT as the bearer; this client sends its app-level OAuth token there too,
  which is not verified against Huawei).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from proto.envelopes import VendorJob
from proto.message import Message
from vendors import hms
from vendors.client import TargetResult
from vendors.common import every_target, parse_credentials, required
from vendors.errors import PayloadTooLargeError, TransientError
from vendors.hms import OAuthPushClient

NAME = "huawei"
SUCCESS, PARTIAL, ALL_INVALID = "80000000", "80100000", "80300007"
#: Codes meaning "this access token is refused": refresh once and retry.
AUTH_CODES = frozenset({"80200001", "80200003", "80600003"})
#: Failure codes that are not a plain refusal (``RejectedError`` is the default).
ERRORS = {"80300008": PayloadTooLargeError, "81000001": TransientError}


@dataclass(frozen=True, slots=True)
class Credentials:
    """An app's Push Kit credentials; the secret stays out of ``repr``."""

    client_id: str
    client_secret: str = field(repr=False)
    badge_class: str = ""
    receipt_id: str = ""
    receipt_user: str = ""
    receipt_secret: str = field(default="", repr=False)

    @classmethod
    def from_mapping(cls, m: Mapping[str, str]) -> Credentials:
        """Parse stored credentials; ``ValueError`` names a missing field."""
        client_id, client_secret = required(m, NAME, "client_id", "client_secret")
        return cls(client_id, client_secret, m.get("badge_class", ""),
                   m.get("receipt_id", "").strip(), m.get("receipt_user", "").strip(),
                   m.get("receipt_secret", "").strip())


def build_payload(message: Message, tokens: list[str],
                  extras: hms.Extras = hms.NO_EXTRAS) -> dict[str, Any]:
    """The send request body for ``tokens`` (see the module docstring for the mapping)."""
    android = hms.compact({
        "collapse_key": _collapse_group(message.collapse_id),
        "urgency": "HIGH" if message.priority == "high" else "NORMAL",
        "category": message.category or ("VOIP" if message.push_type == "voip" else ""),
        "ttl": extras.ttl,
        "bi_tag": extras.bi_tag,
        "receipt_id": extras.receipt_id,
        "notification": _notification(message, extras) if message.shows else None,
    })
    message_body = hms.compact({"data": hms.data_string(message), "android": android,
                                "token": tokens})
    return {"validate_only": False, "message": message_body}


def _notification(message: Message, extras: hms.Extras) -> dict[str, Any]:
    return hms.compact({
        "title": message.title,
        "body": message.body,
        "icon": message.small_icon,
        "image": message.large_icon or message.image,
        "sound": message.sound,
        "default_sound": not message.sound,
        "channel_id": message.channel_id,
        "tag": message.collapse_id,
        "notify_id": extras.notify_id,
        "badge": hms.badge(message, extras.badge_class, add="add_num", set_="set_num",
                           cls="class"),
        "click_action": hms.click_action(message.click),
    })


def _collapse_group(collapse_id: str) -> int | None:
    try:
        group = int(collapse_id)
    except ValueError:
        return None
    return group if -1 <= group <= 100 else None


class HuaweiClient(OAuthPushClient):
    """``VendorClient`` for Huawei Push Kit; also revokes sent notifications."""

    name = NAME
    max_batch = hms.MAX_TOKENS
    can_revoke = True

    def __init__(self, *, base_url: str = "https://push-api.cloud.huawei.com",
                 auth_url: str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token",
                 timeout_s: float = 10.0, verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(NAME, auth_url, timeout_s, verify, clock)
        self._base_url = base_url.rstrip("/")

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        payload = build_payload(job.message, [t.token for t in job.targets],
                                hms.Extras.of(job, self._clock(), creds.badge_class,
                                              receipt_id=creds.receipt_id))
        hms.check_size(NAME, {k: v for k, v in payload["message"].items() if k != "token"})
        code, msg = await self._call(creds, "send", payload, {})
        if code == SUCCESS:
            return every_target(job)
        if code == ALL_INVALID:
            return every_target(job, f"{code}: {msg[:200]}", token_invalid=True)
        if code != PARTIAL:
            hms.raise_for_code(NAME, code, msg, ERRORS)
        illegal = _illegal_tokens(msg)
        if illegal is None:
            # Huawei took the request but did not say which tokens failed; do not guess.
            return every_target(job, f"{code}: unreadable token list")
        return [TargetResult(t.registration_id, error="illegal_token", token_invalid=True)
                if t.token in illegal else TargetResult(t.registration_id)
                for t in job.targets]

    async def revoke(self, job: VendorJob, credentials: Mapping[str, str]) -> None:
        """See ``VendorClient.revoke``: the job's msg_id names the ``notify_id`` it was sent
        with. Huawei withdraws the notification where it is not delivered yet, or shown but not
        tapped; a partial success (some tokens unknown) is a success."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        body = {"notifyId": hms.notify_id(job.msg_id), "token": [t.token for t in job.targets]}
        code, msg = await self._call(creds, "revoke", body, {"push-type": "0"})
        if code not in (SUCCESS, PARTIAL):
            hms.raise_for_code(NAME, code, msg, ERRORS)

    async def _call(self, creds: Credentials, method: str, body: Mapping[str, Any],
                    headers: dict[str, str]) -> tuple[str, str]:
        url = f"{self._base_url}/v1/{creds.client_id}/messages:{method}"
        return await self._post(creds.client_id, creds.client_secret, url, body,
                                lambda: headers, _read)


def _read(response: httpx.Response) -> tuple[str, str]:
    """The result code and message of an answer; ``TokenRefused`` for a refused token."""
    code, msg, _ = hms.read_answer(NAME, response, "msg", AUTH_CODES)
    return code, msg


def _illegal_tokens(msg: str) -> set[str] | None:
    try:
        detail = msgspec.json.decode(msg)
    except msgspec.DecodeError:
        return None
    tokens = detail.get("illegal_tokens") if isinstance(detail, dict) else None
    return set(tokens) if isinstance(tokens, list) else None
