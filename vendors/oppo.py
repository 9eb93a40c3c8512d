"""OPPO Push (HeyTap): notification-bar messages through OPPO's batch unicast API.

Endpoints, on ``https://api.push.oppomobile.com`` (devices outside China are served by
``https://api-intl.push.oppomobile.com``: pass it as ``base_url``):

- ``POST /server/v1/auth``, form ``app_key``, ``timestamp`` (unix ms, within 10 minutes of
  OPPO's clock) and ``sign``, the hex SHA-256 of ``app_key + timestamp + master_secret``.
  Answer ``{"code": 0, "data": {"auth_token", "create_time"}}``; the token lives 24 hours.
- ``POST /server/v1/message/notification/unicast_batch``, form ``auth_token`` (the documents
  carry it in the body; it also goes in an ``auth_token`` header, which OPPO accepts too) and
  ``messages``: a JSON array of at most 1000 ``{"target_type": 2, "target_value": <registration
  id>, "notification": {...}}``. Answer ``{"code": 0, "data": [{"messageId", "registrationId",
  "errorCode"?, "errorMessage"?}]}``: one entry per registration id, so a batch partly succeeds.

Result codes (``code``), from the common return-code table: 0 success; 11 invalid auth token
(refresh once and retry once, then ``AuthError``); -1 service unavailable (``TransientError``);
-2 flow control, 13 app call limit, 55 app call frequency (``RateLimitedError``); 33 daily message
quota (``RateLimitedError`` until midnight China time, when the quota resets); any other code
``RejectedError`` with OPPO's code and message (on the auth endpoint: ``AuthError``). Per
registration id, ``errorCode`` 10000 (invalid registration id) marks the token invalid; another
per-id code is that device's error.

``Message`` to ``notification``:

============== ====================== =====================================================
Message        OPPO                   rule
============== ====================== =====================================================
title          title                  at most 50 characters, a longer one is cut and ends in
                                      "…"; OPPO requires it, so an empty title takes the body
body           content                at most 200 characters (style 1, the standard style),
                                      cut likewise; an empty body takes the title
kind           (notification)         notify, chat and call: a notification; data: below
data, sender,  action_parameters      the data as a JSON object, handed to the app when the
conversation                          notification is tapped, with ``sender`` and
                                      ``conversation`` under those keys; over 4000
                                      characters it raises ``PayloadTooLargeError`` before
                                      anything is sent
click          click_action_type      app 0; url 2, intent 5 and deeplink 5 (intent scheme
               click_action_url       URL), with the target in click_action_url
channel_id     channel_id             as given (Android 8+ needs it); omitted when empty
category       category               as given (OPPO's IM, ACCOUNT, ...); VOIP (a call's)
                                      as IM, whose class covers calls
priority       notify_level           only with a category: high 16 (bar, lock screen,
                                      banner, sound, vibration), normal 2 (bar, lock screen)
collapse_id    notify_id              CRC-32 of the id: a newer notification with the same
                                      id replaces the older one
job msg_id     app_message_id         OPPO shows one app_message_id once per device, so a
                                      batch sent again does not show twice
job expiry     off_line, off_line_ttl off_line true; the seconds left, at most 10 days;
                                      OPPO's default when the job has no expiry
receipts       call_back_url          with the credentials' ``receipt_url`` (at most 200
               call_back_parameter    characters): the URL, and the signed tag of the task
                                      (``vendors.receipts.tags``); a task id whose tag would
                                      pass 50 characters (over 39) asks for none
============== ====================== =====================================================

Credentials: ``app_key`` and ``master_secret``; for delivery receipts, optionally
``receipt_url`` (where OPPO is to post them: ``https://<receipts host>/receipts/oppo/<app
id>``) and ``receipt_key`` (the key of the receipt tag; ``master_secret`` when not set, which a
rotation of the secret then invalidates for messages in flight). See
``vendors.receipts.oppo``.

Drop rules:

- kind "data": OPPO has no pass-through message. A data message is refused with
  ``RejectedError`` before anything is sent: showing it would surprise an app that expects a
  silent delivery.
- sound: OPPO offers no choice of alert (the channel decides); dropped.
- badge, badge_add: not among OPPO's notification fields; dropped.
- small_icon, large_icon, image: OPPO takes only ids of pictures uploaded beforehand through its
  media API, and big pictures only in broadcasts; dropped.
- push_type: an APNs notion; dropped (a call is an IM notification at notify_level 16).
- environment: OPPO has one environment; dropped.

Recall: the OPPO PUSH server API cited has no revoke endpoint (``can_revoke`` is False).

Documents: OPPO Open Platform, "OPPO PUSH 服务端API": 调用地址、公共参数和返回码
(https://open.oppomobile.com/new/developmentDoc/info?id=11235), 鉴权
(https://open.oppomobile.com/new/developmentDoc/info?id=11234), 通知栏消息 / 消息体内容定义
(https://open.oppomobile.com/new/developmentDoc/info?id=11236) and 单点推送
(https://open.oppomobile.com/new/developmentDoc/info?id=11238); OPPO's Java server SDK
opush-server-sdk 1.1.0 (``Notification.validate``: title 50, content 200, off_line_ttl 864000).

The day-long auth token and its refresh are shared with vivo (``vendors.daytoken``).
"""

from __future__ import annotations

import hashlib
import json
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from proto.envelopes import VendorJob
from proto.message import Message
from vendors.client import TargetResult
from vendors.common import (
    crc31,
    decode_answer,
    fit,
    parse_credentials,
    required,
    seconds_left,
    until_midnight,
)
from vendors.daytoken import DayTokenClient
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
    VendorError,
)
from vendors.http import call
from vendors.receipts import tags
from vendors.tokens import Token, TokenRefused

DEFAULT_BASE_URL = "https://api.push.oppomobile.com"
AUTH_PATH = "/server/v1/auth"
UNICAST_BATCH_PATH = "/server/v1/message/notification/unicast_batch"

MAX_BATCH = 1000
TITLE_MAX = 50
CONTENT_MAX = 200
ACTION_PARAMETERS_MAX = 4000
OFF_LINE_TTL_MAX_S = 10 * 24 * 3600
CALL_BACK_URL_MAX = 200
CALL_BACK_PARAMETER_MAX = 50

SUCCESS = 0
INVALID_AUTH_TOKEN = 11
DAILY_QUOTA = 33
INVALID_REGISTRATION_ID = 10000
#: Codes that are not a refusal of the request itself; any other code rejects it.
_ERRORS: dict[int, type[VendorError]] = {
    -1: TransientError,  # service currently unavailable
    -2: RateLimitedError,  # service in flow control
    13: RateLimitedError,  # app call limited
    DAILY_QUOTA: RateLimitedError,  # messages exceed the daily limit
    55: RateLimitedError,  # app call frequency limit
}
CLICK_ACTION_TYPES = {"app": 0, "url": 2, "intent": 5, "deeplink": 5}
NOTIFY_LEVELS = {"high": 16, "normal": 2}
#: OPPO has no call category: its IM class (instant chat) covers voice and video calls.
CATEGORY_ALIASES = {"VOIP": "IM"}


def notify_id(collapse_id: str) -> int:
    """A positive 31-bit notification id standing for ``collapse_id`` (OPPO refuses 0)."""
    return crc31(collapse_id) or 1


@dataclass(frozen=True, slots=True)
class Credentials:
    """An app's OPPO PUSH credentials: the AppKey and the server-side MasterSecret."""

    app_key: str
    master_secret: str = field(repr=False)
    receipt_url: str = ""
    receipt_key: str = field(default="", repr=False)

    @classmethod
    def from_mapping(cls, m: Mapping[str, str]) -> Credentials:
        """Read ``app_key``, ``master_secret`` and the optional receipt fields; ``ValueError``
        names a missing or bad one."""
        app_key, master_secret = required(m, "OPPO", "app_key", "master_secret")
        return cls(app_key, master_secret, tags.receipt_url(m, "OPPO", CALL_BACK_URL_MAX),
                   m.get(tags.KEY_FIELD, "").strip())

    def callback(self, job: VendorJob) -> tags.Callback | None:
        """The receipt request of ``job``'s message, if the app asks for receipts."""
        return tags.callback(self.receipt_url, self.receipt_key or self.master_secret, "oppo",
                             job.app_id, job.task_id, CALL_BACK_PARAMETER_MAX)


def sign(app_key: str, timestamp: str, master_secret: str) -> str:
    """The auth request's ``sign``: hex SHA-256 of app key, timestamp and master secret."""
    return hashlib.sha256(f"{app_key}{timestamp}{master_secret}".encode()).hexdigest()


def build_payload(message: Message, tokens: Sequence[str], *, msg_id: str,
                  ttl_s: int | None,
                  callback: tags.Callback | None = None) -> list[dict[str, Any]]:
    """The ``messages`` array of a batch unicast: one notification per registration id.

    Raises ``RejectedError`` for a data message and ``PayloadTooLargeError`` when the data do
    not fit in ``action_parameters`` (see the module docstring for the whole mapping).
    """
    if not message.shows:
        raise RejectedError("OPPO has no pass-through message: a data message cannot be sent")
    notification: dict[str, Any] = {
        "app_message_id": msg_id,
        "style": 1,
        "title": fit(message.title or message.body, TITLE_MAX),
        "content": fit(message.body or message.title, CONTENT_MAX),
        "click_action_type": CLICK_ACTION_TYPES[message.click.type],
        "off_line": True,
    }
    if message.click.type != "app":
        notification["click_action_url"] = message.click.target
    data = message.vendor_data()
    if data:
        parameters = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        if len(parameters) > ACTION_PARAMETERS_MAX:
            raise PayloadTooLargeError(f"data take {len(parameters)} characters once encoded; "
                                       f"OPPO carries {ACTION_PARAMETERS_MAX}")
        notification["action_parameters"] = parameters
    if message.channel_id:
        notification["channel_id"] = message.channel_id
    if message.category:
        notification["category"] = CATEGORY_ALIASES.get(message.category, message.category)
        notification["notify_level"] = NOTIFY_LEVELS[message.priority]
    if message.collapse_id:
        notification["notify_id"] = notify_id(message.collapse_id)
    if ttl_s is not None:
        notification["off_line_ttl"] = min(ttl_s, OFF_LINE_TTL_MAX_S)
    if callback is not None:
        notification |= {"call_back_url": callback.url, "call_back_parameter": callback.param}
    return [{"target_type": 2, "target_value": token, "notification": notification}
            for token in tokens]


class _Answer(msgspec.Struct):
    code: int
    message: str = ""
    data: msgspec.Raw = msgspec.Raw()


class _AuthData(msgspec.Struct):
    auth_token: str


class _Sent(msgspec.Struct, rename="camel"):
    registration_id: str
    message_id: str = ""
    error_code: int = 0
    error_message: str = ""


_answer = msgspec.json.Decoder(_Answer)
_auth_data = msgspec.json.Decoder(_AuthData)
_sent = msgspec.json.Decoder(list[_Sent])


def _read(response: httpx.Response) -> _Answer:
    if response.status_code != 200:
        raise RejectedError(f"HTTP {response.status_code} from OPPO: {response.text[:200]}")
    return decode_answer(_answer, response.content, "OPPO")


def _refusal(answer: _Answer, now: float, default: type[VendorError]) -> VendorError:
    reason = f"OPPO code {answer.code}: {answer.message}"
    error = _ERRORS.get(answer.code, default)
    if answer.code == DAILY_QUOTA:
        return error(reason, retry_after_s=until_midnight(now))
    return error(reason)


def _outcome(registration_id: str, sent: _Sent | None) -> TargetResult:
    if sent is None:
        return TargetResult(registration_id, error="missing from OPPO's answer")
    if sent.error_code == SUCCESS:
        return TargetResult(registration_id)
    return TargetResult(registration_id, error=f"{sent.error_code} {sent.error_message}".strip(),
                        token_invalid=sent.error_code == INVALID_REGISTRATION_ID)


class OppoClient(DayTokenClient):
    """``VendorClient`` for OPPO PUSH."""

    name = "oppo"
    max_batch = MAX_BATCH

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 10.0,
                 verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(base_url, timeout_s, verify, clock)

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        messages = build_payload(job.message, [t.token for t in job.targets], msg_id=job.msg_id,
                                 ttl_s=seconds_left(job.expires_at_ms, self._clock()),
                                 callback=creds.callback(job))
        encoded = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))

        async def unicast(token: str) -> list[_Sent]:
            return await self._unicast(token, encoded)

        sent = await self._tokens.call(creds.app_key, lambda: self._auth(creds), unicast)
        by_token = {s.registration_id: s for s in sent}
        return [_outcome(t.registration_id, by_token.get(t.token)) for t in job.targets]

    async def _auth(self, creds: Credentials) -> Token:
        started = self._clock()
        timestamp = str(int(started * 1000))
        form = {"app_key": creds.app_key, "timestamp": timestamp,
                "sign": sign(creds.app_key, timestamp, creds.master_secret)}
        answer = _read(await call(self._http, "POST", self._base_url + AUTH_PATH, data=form))
        if answer.code != SUCCESS:
            raise _refusal(answer, self._clock(), AuthError)
        return self._token(decode_answer(_auth_data, answer.data, "OPPO").auth_token, started)

    async def _unicast(self, token: str, messages: str) -> list[_Sent]:
        response = await call(self._http, "POST", self._base_url + UNICAST_BATCH_PATH,
                              data={"auth_token": token, "messages": messages},
                              headers={"auth_token": token})
        answer = _read(response)
        if answer.code == INVALID_AUTH_TOKEN:
            raise TokenRefused(f"OPPO code {answer.code}: {answer.message}")
        if answer.code != SUCCESS:
            raise _refusal(answer, self._clock(), RejectedError)
        return decode_answer(_sent, answer.data, "OPPO")
