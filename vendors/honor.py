"""Honor Push (HONOR devices, Magic UI): the cloud ``sendMessage`` API with an OAuth 2.0
client-credentials access token. Honor modelled it on Huawei Push Kit: shared parts are in
``vendors.hms``.

Endpoints (``base_url`` and ``auth_url`` point elsewhere for tests):

- token: ``POST https://iam.developer.honor.com/auth/realms/developer/protocol/openid-connect/
  token``, form ``grant_type=client_credentials&client_id=..&client_secret=..``; answer
  ``access_token``, ``expires_in``. Cached per client id, renewed a minute early. (Some public
  clients post to the shorter ``/auth/token`` on the same host; the guide's path is used.)
- send: ``POST https://push-api.cloud.honor.com/api/v1/{app_id}/sendMessage`` with
  ``Authorization: Bearer <access_token>``, ``timestamp: <epoch milliseconds>`` and the
  message as the body (no ``message`` wrapper, camelCase keys).

Credentials: ``app_id`` (the path segment), ``client_id`` and ``client_secret`` (the push
service's OAuth client in the Honor developer console; unlike Huawei they differ from the app
id), and optionally ``badge_class`` (the launcher activity the badge needs) and
``receipt_key``: a secret of the app's choosing (any string) under which Herald signs the task
id it sends as ``biTag``, since Honor's receipts carry no signature Herald can check; without
it ``herald receipts`` takes no Honor receipt of the app (``vendors.receipts.honor``). The
receipt URL is set in the Honor console: ``https://<receipts host>/receipts/honor/<app id>``.

Mapping from ``proto.message.Message``:

=================  ==========================================================================
Message            Honor
=================  ==========================================================================
kind=notify, chat, ``android.notification`` is present: a notification message
call
kind=data          no notification: a pass-through (data) message
data, sender,      ``data``, the JSON object as a string (every kind), with ``sender`` and
conversation       ``conversation`` under those keys
title, body        ``android.notification.title``, ``.body``
click              ``android.notification.clickAction``: app -> type 3; url -> type 2 +
                   ``url``; intent and deeplink -> type 1 + ``intent``
large_icon, image  ``android.notification.image``; ``large_icon`` wins when both are set
badge, badge_add   ``android.notification.badge`` ``{setNum | addNum, badgeClass}``
category           ``android.notification.importance``: MARKETING -> LOW (news and
                   marketing), any other category -> NORMAL (service and communication),
                   so a chat's IM and a call's VOIP are NORMAL
collapse_id        ``android.notification.tag`` (a newer notification replaces the shown one)
(job) task_id      ``android.biTag``, so delivery receipts name the task; with a
                   ``receipt_key``, its signed tag ``<task id>~<mac>``
                   (``vendors.receipts.tags``)
(job) msg_id       ``android.notification.notifyId``, a 31-bit hash of it
(job) expiry       ``android.ttl`` as ``"<seconds>s"``; Honor's default when none
=================  ==========================================================================

Drop rules:

- sound, small_icon, channel_id: Honor's notification has no such field; dropped.
- priority and push_type: Honor has no delivery urgency or call category; dropped (``kind``
  decides notification or pass-through). A call is a NORMAL-importance notification.
- environment: Honor has one environment; dropped.
- category: only its marketing / not-marketing meaning is kept (as ``importance``); without a
  category no importance is sent and Honor classifies the message itself.
- badge, badge_add: dropped unless the credentials give ``badge_class``.
- large_icon and image together: ``image`` is dropped.
- collapse_id: sets the notification ``tag`` only (Honor has no offline ``collapse_key``).
- For kind=data the notification-only fields are not sent.

Results: ``{"code", "message", "data": {"sendResult", "requestId", "failTokens",
"expireTokens"}}``. ``code`` 200 is success, per token: ``expireTokens`` are unregistered
(``token_invalid``), ``failTokens`` failed for a reason Honor does not name (an error, token
kept). Honor's response-code table could not be retrieved; the failure codes follow Huawei's
scheme, which Honor's API mirrors: 80200001/80200003 and HTTP 401 (token refused or expired)
refresh once, then ``AuthError``; 80300007 all tokens invalid; 80300008
``PayloadTooLargeError``; 81000001 ``TransientError``; any other ``RejectedError``. The
4096-byte and 1000-token limits and the ``"<seconds>s"`` ttl format are Huawei's too.
HTTP 429 is ``RateLimitedError`` and 5xx ``TransientError``, through ``vendors.http.call``.

Recall: Honor's published send API has no revoke counterpart that could be retrieved
(``can_revoke`` is False), unlike Huawei's, which it otherwise mirrors.

Sources:
- Honor Developers, "发送下行消息" (sending downlink messages: token request, send URL,
  ``timestamp`` header, body examples), from the developer.honor.com push service guide, read
  as republished on 2023-11-01 at https://my.oschina.net/u/5873522/blog/10140231 (a copy at
  https://xie.infoq.cn/article/575b0e405029cfdd8652288fa names the older hosts
  iam.developer.hihonor.com and push-api.cloud.hihonor.com).
- Honor Developers, "荣耀推送服务消息分类标准" (service and communication vs. news and
  marketing), read as republished at http://www.coreui.cn/news/209029.html
- Field names of ``android.notification`` and of the answer's ``data`` as used by a public
  Go client of this API (``failTokens``, ``expireTokens``, ``badgeClass``, ``notifyId``).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from proto.envelopes import VendorJob
from proto.message import Message
from vendors import hms
from vendors.client import TargetResult
from vendors.common import every_target, parse_credentials, required
from vendors.errors import PayloadTooLargeError, TransientError
from vendors.hms import OAuthPushClient
from vendors.receipts import tags

NAME = "honor"
SUCCESS, ALL_INVALID = "200", "80300007"
#: Codes meaning "this access token is refused": refresh once and retry.
AUTH_CODES = frozenset({"80200001", "80200003"})
#: Failure codes that are not a plain refusal (``RejectedError`` is the default).
ERRORS = {"80300008": PayloadTooLargeError, "81000001": TransientError}


@dataclass(frozen=True, slots=True)
class Credentials:
    """An app's Honor Push credentials; the secret stays out of ``repr``."""

    app_id: str
    client_id: str
    client_secret: str = field(repr=False)
    badge_class: str = ""
    receipt_key: str = field(default="", repr=False)

    @classmethod
    def from_mapping(cls, m: Mapping[str, str]) -> Credentials:
        """Parse stored credentials; ``ValueError`` names a missing field."""
        app_id, client_id, client_secret = required(m, NAME, "app_id", "client_id",
                                                    "client_secret")
        return cls(app_id, client_id, client_secret, m.get("badge_class", ""),
                   m.get(tags.KEY_FIELD, "").strip())


def build_payload(message: Message, tokens: list[str],
                  extras: hms.Extras = hms.NO_EXTRAS) -> dict[str, Any]:
    """The send request body for ``tokens`` (see the module docstring for the mapping)."""
    android = hms.compact({
        "ttl": extras.ttl,
        "biTag": extras.bi_tag,
        "notification": _notification(message, extras) if message.shows else None,
    })
    return hms.compact({"data": hms.data_string(message), "android": android, "token": tokens})


def _notification(message: Message, extras: hms.Extras) -> dict[str, Any]:
    importance = ""
    if message.category:
        importance = "LOW" if message.category.upper() == "MARKETING" else "NORMAL"
    return hms.compact({
        "title": message.title,
        "body": message.body,
        "image": message.large_icon or message.image,
        "importance": importance,
        "tag": message.collapse_id,
        "notifyId": extras.notify_id,
        "badge": hms.badge(message, extras.badge_class, add="addNum", set_="setNum",
                           cls="badgeClass"),
        "clickAction": hms.click_action(message.click),
    })


class HonorClient(OAuthPushClient):
    """``VendorClient`` for Honor Push."""

    name = NAME
    max_batch = hms.MAX_TOKENS

    def __init__(self, *, base_url: str = "https://push-api.cloud.honor.com",
                 auth_url: str = "https://iam.developer.honor.com/auth/realms/developer/"
                                 "protocol/openid-connect/token",
                 timeout_s: float = 10.0, verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(NAME, auth_url, timeout_s, verify, clock)
        self._base_url = base_url.rstrip("/")

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        bi_tag = (tags.tag(creds.receipt_key, NAME, job.app_id, job.task_id)
                  if creds.receipt_key else "")
        payload = build_payload(job.message, [t.token for t in job.targets],
                                hms.Extras.of(job, self._clock(), creds.badge_class,
                                              bi_tag=bi_tag))
        hms.check_size(NAME, {k: v for k, v in payload.items() if k != "token"})
        url = f"{self._base_url}/api/v1/{creds.app_id}/sendMessage"
        code, text, data = await self._post(creds.client_id, creds.client_secret, url,
                                            payload, self._timestamp, _read)
        if code == ALL_INVALID:
            return every_target(job, f"{code}: {text[:200]}", token_invalid=True)
        if code != SUCCESS:
            hms.raise_for_code(NAME, code, text, ERRORS)
        expired, failed = _tokens(data, "expireTokens"), _tokens(data, "failTokens")
        return [_outcome(t.registration_id, t.token, expired, failed) for t in job.targets]

    def _timestamp(self) -> dict[str, str]:
        return {"timestamp": str(int(self._clock() * 1000))}


def _read(response: httpx.Response) -> tuple[str, str, dict[str, Any]]:
    """Result code, message and ``data`` of an answer; ``TokenRefused`` for a refused token."""
    code, text, answer = hms.read_answer(NAME, response, "message", AUTH_CODES)
    data = answer.get("data")
    return code, text, data if isinstance(data, dict) else {}


def _tokens(data: Mapping[str, Any], key: str) -> set[str]:
    tokens = data.get(key)
    return set(tokens) if isinstance(tokens, list) else set()


def _outcome(registration_id: str, token: str, expired: set[str],
             failed: set[str]) -> TargetResult:
    if token in expired:
        return TargetResult(registration_id, error="expireToken", token_invalid=True)
    if token in failed:
        return TargetResult(registration_id, error="failToken")
    return TargetResult(registration_id)
