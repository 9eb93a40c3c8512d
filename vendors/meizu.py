"""Meizu Flyme Push (vendor id ``meizu``): the Flyme push platform's HTTP API, by pushId.

Requests: ``POST {base_url}/garcia/api/server/push/varnished/pushByPushId`` for notifications
and ``.../unvarnished/pushByPushId`` for pass-through (``kind=data``); production host
``https://server-api-push.meizu.com`` (overseas ``server-api-push.in.meizu.com``). Body
``application/x-www-form-urlencoded;charset=UTF-8`` with ``appId``, ``pushIds`` (comma separated,
at most 1000: ``max_batch``), ``messageJson`` (a JSON string) and ``sign``: the lower-case hex
MD5 of every other parameter as ``key=value`` (raw values, not URL-encoded) in ascending key
order, concatenated, followed by the AppSecret (``sign``). The signature is the whole
authentication: there is no token to refresh, so a refused signature raises ``AuthError`` at
once.

Answer (HTTP 200, JSON): ``{code, message, value, redirect, msgId}``. ``code`` "200" accepts the
request and ``value`` maps a per-target code to the pushIds that failed with it (only failures
are listed): 110002 (pushId unsubscribed, or its message switch is off) and 110003 (illegal
pushId) give ``token_invalid``; 201, 501, 513, 518, 519, 520 and 110010 (switch off) are
per-target errors that keep the token. Other codes fail the request:

==========================================================  ======================================
Flyme code                                                  error
==========================================================  ======================================
1001 (system error), 1003 (server busy)                     ``TransientError``
110010 (rate too fast), 110019 / 110051 (push count         ``RateLimitedError`` (``Retry-After``
limits), 110053 (pass-through over its limit)               if any)
1006 (sign refused), 110000 / 110001 (appId / appKey),      ``AuthError``
110033 (appSecret)
anything else (500, 1005 bad parameter, 110004, 110009)     ``RejectedError`` with code and message
==========================================================  ======================================

Field mapping (``build_payload``) into ``messageJson``, ``Message`` field -> Flyme field:

==============  ===============================================================================
kind            notify, chat, call: the varnished endpoint and object below; data: the
                unvarnished endpoint with ``{title, content, pushTimeInfo}``, ``content`` the
                data as a JSON object string of at most 2000 bytes, else
                ``PayloadTooLargeError``
title / body    ``noticeBarInfo.title`` (1-32 characters) / ``noticeBarInfo.content`` (1-100);
                longer text is cut and ends with "…", and a body over 100 characters is also
                sent whole as expandable text (``noticeExpandInfo`` type 1); Flyme needs both,
                so a missing one repeats the other; pass-through keeps the title only
data, sender,   ``clickTypeInfo.parameters`` (a JSON object handed to the app on click), with
conversation    ``sender`` and ``conversation`` under those keys (pass-through: in ``content``)
click           ``clickTypeInfo.clickType``: app 0; intent 1 with ``activity`` (the target is
                the activity's class name: Flyme opens an app page by name, not by intent URI);
                url and deeplink 2 with ``url``; a target over 1000 bytes raises
                ``PayloadTooLargeError``; type 3 (custom) is never used, Flyme stopped it
collapse_id     ``advanceInfo.notifyKey`` (Flyme shows only the last notification of a key):
                an id of at most 8 characters of ``[0-9A-Za-z_-]`` as is, any other the first
                8 characters of the URL-safe base64 of its SHA-256 (the same alphabet)
expiry          ``pushTimeInfo`` ``{offLine: 1, validTime}``, hours from 1 to 72: the remaining
                time rounded up and capped at 72 h; no expiry gives Flyme's default 24 h; an
                expired job is not sent and every target gets the error "expired"
==============  ===============================================================================

Drop rules: ``badge`` and ``badge_add`` (no badge field), ``sound`` (Flyme only switches the
default sound on or off; the default stays on), ``small_icon``, ``large_icon`` and ``image``
(Flyme discontinued notification pictures on 2022-05-27), ``category`` (the pushId API
cited has no classification field), ``channel_id`` (no Android channel field), ``priority``,
``push_type`` and ``environment`` (no such fields; silence is ``kind=data``; a call is a plain
notification); for ``kind=data`` the body,
click and collapse id. Flyme restricts pass-through since 2018: over its allowance the request
fails with 110053, a ``RateLimitedError``.

Recall: Flyme's pushId API has no revoke endpoint (``can_revoke`` is False); a later
notification with the same ``notifyKey`` replaces a shown one.

Documents: "魅族开放平台PUSH系统HTTP接口文档" (Meizu open platform push HTTP API: endpoints,
signature and its worked example, messageJson fields, return codes, per-target codes, the
pass-through restriction and the end of clickType 3), https://github.com/MEIZUPUSH/PushAPI;
"魅族开放平台PUSH系统JAVA版本SDK" (hosts, per-target codes such as 110010 switch off, the
2022-05-27 end of notification pictures), https://github.com/MEIZUPUSH/JavaSdk.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from proto.envelopes import VendorJob
from proto.message import ClickAction, Message
from vendors.client import BaseClient, TargetResult
from vendors.common import (
    decode_answer,
    every_target,
    fit,
    parse_credentials,
    required,
    seconds_left,
)
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
    VendorError,
)
from vendors.http import call, new_client, retry_after_s

DEFAULT_BASE_URL = "https://server-api-push.meizu.com"
NOTIFY_PATH = "/garcia/api/server/push/varnished/pushByPushId"
DATA_PATH = "/garcia/api/server/push/unvarnished/pushByPushId"
MAX_BATCH = 1000
MAX_TITLE = 32
MAX_CONTENT = 100
MAX_DATA_CONTENT_BYTES = 2000
MAX_TARGET_BYTES = 1000
DEFAULT_VALID_HOURS = 24
MAX_VALID_HOURS = 72
SUCCESS = "200"

_REQUEST_ERRORS: dict[str, type[VendorError]] = {
    **dict.fromkeys(("1001", "1003"), TransientError),
    **dict.fromkeys(("110010", "110019", "110051", "110053"), RateLimitedError),
    **dict.fromkeys(("1006", "110000", "110001", "110033"), AuthError),
}
_TARGET_ERRORS = {
    "201": "no permission", "501": "push failed (db error)", "513": "push failed",
    "518": "over the configured speed", "519": "service overloaded",
    "520": "collapsed (same message repeated)", "110002": "pushId unsubscribed or switched off",
    "110003": "illegal pushId", "110010": "pushId switched off",
}
_INVALID_TARGETS = frozenset({"110002", "110003"})
_CLICK_TYPES = {"app": 0, "intent": 1, "url": 2, "deeplink": 2}
_NOTIFY_KEY = re.compile(r"[0-9A-Za-z_-]{1,8}")


@dataclass(frozen=True, slots=True)
class Credentials:
    """An app's Flyme push credentials: the numeric appId and the AppSecret."""

    app_id: str
    app_secret: str = field(repr=False)

    @classmethod
    def from_mapping(cls, m: Mapping[str, str]) -> Credentials:
        """Read ``app_id`` (digits) and ``app_secret``; ``ValueError`` names the bad field."""
        app_id, app_secret = required(m, "meizu", "app_id", "app_secret")
        if not (app_id.isascii() and app_id.isdigit()):
            raise ValueError("meizu credentials: app_id must be the numeric appId")
        return cls(app_id=app_id, app_secret=app_secret)


class _Answer(msgspec.Struct):
    code: str | int
    message: str = ""
    value: dict[str, list[str]] | str | None = None


_answer = msgspec.json.Decoder(_Answer)


def build_payload(message: Message, tokens: Sequence[str], *, app_id: str,
                  valid_hours: int = DEFAULT_VALID_HOURS) -> dict[str, str]:
    """The form fields of a pushByPushId request, all but ``sign`` (see the module table).

    Raises ``PayloadTooLargeError`` when pass-through content or the click target is too long.
    """
    push_time = {"offLine": 1, "validTime": valid_hours}
    if not message.shows:
        content = msgspec.json.encode(message.vendor_data())
        if len(content) > MAX_DATA_CONTENT_BYTES:
            raise PayloadTooLargeError(f"pass-through content is {len(content)} bytes, "
                                       f"Flyme takes {MAX_DATA_CONTENT_BYTES}")
        body: dict[str, Any] = {"content": content.decode(), "pushTimeInfo": push_time}
        if message.title:
            body["title"] = fit(message.title, MAX_TITLE)
    else:
        text = message.body or message.title
        body = {"noticeBarInfo": {"noticeBarType": 0,
                                  "title": fit(message.title or message.body, MAX_TITLE),
                                  "content": fit(text, MAX_CONTENT)},
                "clickTypeInfo": _click(message.click, message.vendor_data()),
                "pushTimeInfo": push_time}
        if len(text) > MAX_CONTENT:
            body["noticeExpandInfo"] = {"noticeExpandType": 1, "noticeExpandContent": text}
        if message.collapse_id:
            body["advanceInfo"] = {"notifyKey": notify_key(message.collapse_id)}
    return {"appId": app_id, "pushIds": ",".join(tokens),
            "messageJson": msgspec.json.encode(body).decode()}


def sign(fields: Mapping[str, str], app_secret: str) -> str:
    """Flyme's signature of request parameters (every parameter but ``sign`` itself)."""
    base = "".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "sign")
    return hashlib.md5((base + app_secret).encode()).hexdigest()


def notify_key(collapse_id: str) -> str:
    """Flyme's notifyKey for a collapse id: itself when valid, else an 8-character digest."""
    if _NOTIFY_KEY.fullmatch(collapse_id):
        return collapse_id
    return base64.urlsafe_b64encode(hashlib.sha256(collapse_id.encode()).digest())[:8].decode()


def valid_hours(ttl_s: int) -> int:
    """Flyme's ``validTime``: the hours ``ttl_s`` covers, rounded up, from 1 to 72."""
    return min(MAX_VALID_HOURS, max(1, math.ceil(ttl_s / 3600)))


class MeizuClient(BaseClient):
    """``VendorClient`` for Flyme push."""

    name = "meizu"
    max_batch = MAX_BATCH

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 10.0,
                 verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self._base_url = base_url.rstrip("/")
        self._clock = clock
        self._http = new_client(timeout_s=timeout_s, verify=verify)

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        ttl_s = seconds_left(job.expires_at_ms, self._clock())
        if ttl_s == 0:
            return every_target(job, "expired")
        fields = build_payload(
            job.message, [t.token for t in job.targets], app_id=creds.app_id,
            valid_hours=DEFAULT_VALID_HOURS if ttl_s is None else valid_hours(ttl_s))
        fields["sign"] = sign(fields, creds.app_secret)
        path = NOTIFY_PATH if job.message.shows else DATA_PATH
        response = await call(
            self._http, "POST", self._base_url + path, data=fields,
            headers={"content-type": "application/x-www-form-urlencoded;charset=UTF-8"})
        if response.status_code != 200:
            raise RejectedError(f"HTTP {response.status_code} from Flyme: {response.text[:200]}")
        answer = decode_answer(_answer, response.content, "Flyme")
        code = str(answer.code)
        if code != SUCCESS:
            error = _REQUEST_ERRORS.get(code, RejectedError)
            raise error(f"Flyme code {code}: {answer.message}",
                        retry_after_s=retry_after_s(response.headers))
        failed = {push_id: failure for failure, push_ids in
                  (answer.value if isinstance(answer.value, dict) else {}).items()
                  for push_id in push_ids}
        return [_outcome(t.registration_id, failed.get(t.token)) for t in job.targets]

    async def close(self) -> None:
        """See ``VendorClient.close``."""
        await self._http.aclose()


def _outcome(registration_id: str, failure: str | None) -> TargetResult:
    if failure is None:
        return TargetResult(registration_id)
    return TargetResult(registration_id,
                        error=f"{failure} {_TARGET_ERRORS.get(failure, 'push failed')}",
                        token_invalid=failure in _INVALID_TARGETS)


def _click(click: ClickAction, data: Mapping[str, object]) -> dict[str, Any]:
    info: dict[str, Any] = {"clickType": _CLICK_TYPES[click.type]}
    if click.type != "app":
        if len(click.target.encode()) > MAX_TARGET_BYTES:
            raise PayloadTooLargeError(f"click target exceeds Flyme's {MAX_TARGET_BYTES} bytes")
        info["activity" if click.type == "intent" else "url"] = click.target
    if data:
        info["parameters"] = data
    return info

