"""vivo Push: notification messages through vivo's single-push and list-push APIs.

Endpoints, on ``https://api-push.vivo.com.cn``, JSON in and out:

- ``POST /message/auth`` ``{appId, appKey, timestamp, sign}``: ``timestamp`` in unix ms within
  ten minutes of vivo's clock, ``sign`` the lowercase hex MD5 of ``appId + appKey + timestamp
  + appSecret``. Answer ``{"result": 0, "desc", "authToken"}``; the token lives one day. Every
  other call carries it in an ``authToken`` header, and ``appId`` in its body, which vivo
  compares with the token's app.
- One target: ``POST /message/send`` with the message and ``regId``. Answer ``{"result": 0,
  "taskId", "invalidUser"?: {"status", "userid"}}``.
- Two to 1000 targets: ``POST /message/saveListPayload`` with the message (answer ``taskId``),
  then ``POST /message/pushToList`` ``{appId, regIds, taskId, requestId, pushMode}``. Answer
  ``{"result": 0, "invalidUsers": [{"status", "userid"}]}``: the devices that were not reached.

An invalid user's ``status``: 1 the regId does not exist, 2 the app was uninstalled or its
notifications turned off, 3 the device was offline for 90 days (the token is invalid for all
three); 4 not a test device, which only test pushes meet: that device's error, the token stays.

Result codes (``result``): 0 success; 10000 authentication failed (refresh the token once and
retry once, then ``AuthError``); 10070 total sends over the daily limit, 10073 system messages
over the daily limit, 10252 list payloads over the daily limit (``RateLimitedError`` until
midnight China time: vivo asks not to call again that day); 10071, 10072 sending limits
(``RateLimitedError``); 10302 invalid regId (the single target's token is invalid); any other
code ``RejectedError`` with vivo's code and description (on the auth endpoint: ``AuthError``).

``requestId`` (vivo's unique identifier of a request) is derived from the job's msg_id and the
targets' tokens, so that a job sent again is the same request to vivo.

``Message`` to the vivo message:

============== ================== =========================================================
Message        vivo               rule
============== ================== =========================================================
title          title              at most 40 characters, a longer one is cut and ends in
                                  "…"; vivo requires it, so an empty title takes the body
body           content            at most 100 characters, cut likewise; an empty body takes
                                  the title
kind           (notification)     notify, chat and call: a notification; data: see below
data, sender,  clientCustomMap    string values (other scalars as JSON), with ``sender`` and
conversation                      ``conversation`` under those keys; more than 10 keys or
                                  1024 characters of keys and values raise
                                  ``PayloadTooLargeError`` before anything is sent
click          skipType           app 1; url 2; intent and deeplink 4 (an app page, opened
               skipContent        by intent URI); the target in skipContent
category       category           one of vivo's categories: IM, ACCOUNT, TODO,
               classification     DEVICE_REMINDER, ORDER, SUBSCRIPTION (classification 1,
                                  system) or CONTENT, MARKETING, SOCIAL (classification 0,
                                  operational); VOIP (a call's) as IM, whose class covers
                                  calls; "0" or "1" sets classification alone; any other
                                  value is dropped
priority       classification     when the category did not decide it: high 1 (system),
                                  normal 0 (operational)
sound          notifyType         set: 4 (ring and vibrate); empty: 1 (silent)
collapse_id    notifyId           CRC-32 of the id
job expiry     timeToLive         the seconds left, within 60 s to one day; vivo's default
                                  when the job has no expiry
receipts       extra.callback     with the credentials' ``receipt_url``: the URL, and the
               extra.callback.    signed tag of the task (``vendors.receipts.tags``), on the
               param              single push or on the saved list payload; a task id whose
                                  tag would pass 64 characters (over 53) asks for none
============== ================== =========================================================

Credentials: ``app_id``, ``app_key`` and ``app_secret``; for delivery receipts, optionally
``receipt_url`` (where vivo is to post them: ``https://<receipts host>/receipts/vivo/<app
id>``) and ``receipt_key`` (the key of the receipt tag; ``app_secret`` when not set, which a
rotation of the secret then invalidates for messages in flight). See ``vendors.receipts.vivo``.

Fixed fields: ``networkType`` -1 (any network), ``pushMode`` 0 (production).

Drop rules:

- kind "data": vivo has no pass-through message. A data message is refused with
  ``RejectedError`` before anything is sent.
- the sound's name: vivo plays the system alert; only whether there is a sound maps.
- badge, badge_add: vivo sets no badge from the server; dropped.
- small_icon, large_icon, image: vivo shows the app's icon and no picture; dropped.
- channel_id: vivo takes no custom notification channel; dropped.
- push_type: an APNs notion; dropped (a call is a system notification, IM).
- environment: vivo's ``pushMode`` stays 0 (production); dropped.

Recall: the vivo API version cited (2.9.2) has no revoke endpoint for sent notifications
(``can_revoke`` is False).

Documents: vivo Open Platform, "PUSH-UPS-API接口文档"
(https://dev.vivo.com.cn/documentCenter/doc/362), as published in "VIVO消息推送服务端API接口文档"
2.9.2 (appId in bodies; 10070 and 10252 mean "do not call again today"; invalid-user statuses;
field limits), and the message categories (https://dev.vivo.com.cn/documentCenter/doc/359).
The codes 10000, 10071, 10072, 10073 and 10302 are read as published clients of the API read
them (10000 authentication, 10073 system-message total, 10302 invalid regId).
"""

from __future__ import annotations

import hashlib
import json
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    VendorError,
)
from vendors.http import call
from vendors.receipts import tags
from vendors.tokens import Token, TokenRefused

DEFAULT_BASE_URL = "https://api-push.vivo.com.cn"
AUTH_PATH = "/message/auth"
SEND_PATH = "/message/send"
SAVE_LIST_PATH = "/message/saveListPayload"
PUSH_TO_LIST_PATH = "/message/pushToList"

MAX_BATCH = 1000
TITLE_MAX = 40
CONTENT_MAX = 100
CUSTOM_MAP_MAX_KEYS = 10
CUSTOM_MAP_MAX_CHARS = 1024
TIME_TO_LIVE_MIN_S = 60
TIME_TO_LIVE_MAX_S = 24 * 3600
REQUEST_ID_MAX = 64
CALLBACK_PARAM_MAX = 64

SUCCESS = 0
AUTH_FAILED = 10000
INVALID_REG_ID = 10302
#: Daily limits: vivo asks not to call the endpoint again that day.
DAILY_LIMITS = frozenset({10070, 10073, 10252})
#: Codes that are not a refusal of the request itself; any other code rejects it.
_ERRORS: dict[int, type[VendorError]] = {
    **dict.fromkeys(DAILY_LIMITS, RateLimitedError),
    10071: RateLimitedError,
    10072: RateLimitedError,
}
#: Invalid-user statuses that mean the token will not reach the device again.
DEAD_TOKEN_STATUSES = frozenset({1, 2, 3})

SYSTEM_CATEGORIES = frozenset({"IM", "ACCOUNT", "TODO", "DEVICE_REMINDER", "ORDER",
                               "SUBSCRIPTION"})
OPERATIONAL_CATEGORIES = frozenset({"CONTENT", "MARKETING", "SOCIAL"})
#: vivo has no call category: its IM class (instant messages) covers voice and video calls.
CATEGORY_ALIASES = {"VOIP": "IM"}
SKIP_TYPES = {"app": 1, "url": 2, "intent": 4, "deeplink": 4}
SILENT, RING_AND_VIBRATE = 1, 4


@dataclass(frozen=True, slots=True)
class Credentials:
    """An app's vivo push credentials: AppID (digits), AppKey and AppSecret."""

    app_id: str
    app_key: str
    app_secret: str = field(repr=False)
    receipt_url: str = ""
    receipt_key: str = field(default="", repr=False)

    @classmethod
    def from_mapping(cls, m: Mapping[str, str]) -> Credentials:
        """Read ``app_id``, ``app_key``, ``app_secret`` and the optional receipt fields;
        ``ValueError`` names a bad one."""
        app_id, app_key, app_secret = required(m, "vivo", "app_id", "app_key", "app_secret")
        if not app_id.isdigit():
            raise ValueError("vivo credentials: 'app_id' must be digits")
        return cls(app_id, app_key, app_secret, tags.receipt_url(m, "vivo"),
                   m.get(tags.KEY_FIELD, "").strip())

    def callback(self, job: VendorJob) -> tags.Callback | None:
        """The receipt request of ``job``'s message, if the app asks for receipts."""
        return tags.callback(self.receipt_url, self.receipt_key or self.app_secret, "vivo",
                             job.app_id, job.task_id, CALLBACK_PARAM_MAX)


def notify_id(collapse_id: str) -> int:
    """A positive 31-bit notification id standing for ``collapse_id`` (vivo refuses 0)."""
    return crc31(collapse_id) or 1


def sign(app_id: str, app_key: str, timestamp: int, app_secret: str) -> str:
    """The auth request's ``sign``: lowercase hex MD5 of app id, app key, timestamp, secret."""
    return hashlib.md5(f"{app_id}{app_key}{timestamp}{app_secret}".encode()).hexdigest()


def request_id(kind: str, msg_id: str, tokens: Sequence[str]) -> str:
    """A request id of at most 64 characters: the msg_id, then a digest of kind and tokens."""
    digest = hashlib.sha256("\n".join([kind, msg_id, *tokens]).encode()).hexdigest()[:32]
    return f"{msg_id[:REQUEST_ID_MAX - 33]}-{digest}"


def _classification(message: Message) -> dict[str, Any]:
    category = CATEGORY_ALIASES.get(message.category, message.category)
    if category in SYSTEM_CATEGORIES:
        return {"category": category, "classification": 1}
    if message.category in OPERATIONAL_CATEGORIES:
        return {"category": message.category, "classification": 0}
    if message.category in ("0", "1"):
        return {"classification": int(message.category)}
    return {"classification": 1 if message.priority == "high" else 0}


def _custom_map(data: Mapping[str, Any]) -> dict[str, str]:
    custom = {key: value if isinstance(value, str) else json.dumps(value)
              for key, value in data.items()}
    chars = sum(len(key) + len(value) for key, value in custom.items())
    if len(custom) > CUSTOM_MAP_MAX_KEYS or chars > CUSTOM_MAP_MAX_CHARS:
        raise PayloadTooLargeError(
            f"data are {len(custom)} keys and {chars} characters; vivo carries "
            f"{CUSTOM_MAP_MAX_KEYS} keys and {CUSTOM_MAP_MAX_CHARS} characters")
    return custom


def build_payload(message: Message, tokens: Sequence[str], *, app_id: str, msg_id: str,
                  ttl_s: int | None,
                  callback: tags.Callback | None = None) -> dict[str, Any]:
    """The body of the first request: ``/message/send`` for one token, else the list payload.

    Raises ``RejectedError`` for a data message and ``PayloadTooLargeError`` when the data do
    not fit in ``clientCustomMap`` (see the module docstring for the whole mapping).
    """
    if not message.shows:
        raise RejectedError("vivo has no pass-through message: a data message cannot be sent")
    body: dict[str, Any] = {
        "appId": int(app_id),
        "notifyType": RING_AND_VIBRATE if message.sound else SILENT,
        "title": fit(message.title or message.body, TITLE_MAX),
        "content": fit(message.body or message.title, CONTENT_MAX),
        "skipType": SKIP_TYPES[message.click.type],
        "networkType": -1,
        **_classification(message),
        "pushMode": 0,
    }
    if message.click.type != "app":
        body["skipContent"] = message.click.target
    data = message.vendor_data()
    if data:
        body["clientCustomMap"] = _custom_map(data)
    if message.collapse_id:
        body["notifyId"] = notify_id(message.collapse_id)
    if ttl_s is not None:
        body["timeToLive"] = min(max(ttl_s, TIME_TO_LIVE_MIN_S), TIME_TO_LIVE_MAX_S)
    if callback is not None:
        body["extra"] = {"callback": callback.url, "callback.param": callback.param}
    if len(tokens) == 1:
        body["regId"] = tokens[0]
        body["requestId"] = request_id("send", msg_id, tokens)
    else:
        body["requestId"] = request_id("payload", msg_id, tokens)
    return body


def push_to_list_body(tokens: Sequence[str], *, app_id: str, msg_id: str,
                      task_id: str) -> dict[str, Any]:
    """The body of ``/message/pushToList`` for the payload saved as ``task_id``."""
    return {"appId": int(app_id), "regIds": list(tokens), "taskId": task_id,
            "requestId": request_id("list", msg_id, tokens), "pushMode": 0}


class _InvalidUser(msgspec.Struct):
    status: int
    userid: str | int


class _Answer(msgspec.Struct, rename="camel"):
    result: int
    desc: str = ""
    auth_token: str = ""
    task_id: str = ""
    invalid_user: _InvalidUser | None = None
    invalid_users: list[_InvalidUser] = []


_answer = msgspec.json.Decoder(_Answer)


def _refusal(answer: _Answer, now: float, default: type[VendorError]) -> VendorError:
    reason = f"vivo result {answer.result}: {answer.desc}"
    error = _ERRORS.get(answer.result, default)
    if answer.result in DAILY_LIMITS:
        return error(reason, retry_after_s=until_midnight(now))
    return error(reason)


def _outcome(registration_id: str, user: _InvalidUser | None) -> TargetResult:
    if user is None:
        return TargetResult(registration_id)
    return TargetResult(registration_id, error=f"invalid user, status {user.status}",
                        token_invalid=user.status in DEAD_TOKEN_STATUSES)


class VivoClient(DayTokenClient):
    """``VendorClient`` for vivo push: ``/message/send`` for one target, list push for more."""

    name = "vivo"
    max_batch = MAX_BATCH

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 10.0,
                 verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(base_url, timeout_s, verify, clock)

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        # Two devices may share a token; vivo takes each regId once in a list.
        tokens = list(dict.fromkeys(t.token for t in job.targets))
        body = build_payload(job.message, tokens, app_id=creds.app_id, msg_id=job.msg_id,
                             ttl_s=seconds_left(job.expires_at_ms, self._clock()),
                             callback=creds.callback(job))
        if len(tokens) == 1:
            answer = await self._call(creds, SEND_PATH, body, single=True)
            if answer.result == INVALID_REG_ID:
                error = f"{answer.result} {answer.desc}".strip()
                return [TargetResult(t.registration_id, error=error, token_invalid=True)
                        for t in job.targets]
            invalid = [answer.invalid_user] if answer.invalid_user else []
        else:
            saved = await self._call(creds, SAVE_LIST_PATH, body)
            answer = await self._call(creds, PUSH_TO_LIST_PATH, push_to_list_body(
                tokens, app_id=creds.app_id, msg_id=job.msg_id, task_id=saved.task_id))
            invalid = answer.invalid_users
        by_token = {str(user.userid): user for user in invalid}
        return [_outcome(t.registration_id, by_token.get(t.token)) for t in job.targets]

    async def _call(self, creds: Credentials, path: str, body: dict[str, Any], *,
                    single: bool = False) -> _Answer:
        """Post ``body`` with the app's token; a single send's 10302 is returned, not raised."""

        async def attempt(token: str) -> _Answer:
            answer = await self._post(path, body, {"authToken": token})
            if answer.result == AUTH_FAILED:
                raise TokenRefused(f"vivo result {answer.result}: {answer.desc}")
            if answer.result == SUCCESS or (single and answer.result == INVALID_REG_ID):
                return answer
            raise _refusal(answer, self._clock(), RejectedError)

        return await self._tokens.call(creds.app_id, lambda: self._auth(creds), attempt)

    async def _auth(self, creds: Credentials) -> Token:
        started = self._clock()
        timestamp = int(started * 1000)
        body = {"appId": int(creds.app_id), "appKey": creds.app_key, "timestamp": timestamp,
                "sign": sign(creds.app_id, creds.app_key, timestamp, creds.app_secret)}
        answer = await self._post(AUTH_PATH, body, {})
        if answer.result != SUCCESS:
            raise _refusal(answer, self._clock(), AuthError)
        return self._token(answer.auth_token, started)

    async def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> _Answer:
        response = await call(self._http, "POST", self._base_url + path, json=body,
                              headers=headers)
        if response.status_code != 200:
            raise RejectedError(f"HTTP {response.status_code} from vivo: {response.text[:200]}")
        return decode_answer(_answer, response.content, "vivo")
