"""Xiaomi MiPush (vendor id ``xiaomi``): the MiPush server HTTP API, sending to regids.

Request: ``POST {base_url}/v3/message/regid`` (production ``https://api.xmpush.xiaomi.com``;
global regions have their own hosts, e.g. ``https://sgp-api.xmpush.global.xiaomi.com``), body
``application/x-www-form-urlencoded`` in UTF-8, header ``Authorization: key=<AppSecret>`` (the
word ``key`` in lower case). There is no token exchange: the app secret is the credential, so
there is nothing to refresh and a refused secret raises ``AuthError`` at once. One request
carries up to 1000 regids, comma separated (``max_batch``).

Credentials: ``app_secret`` and ``package_name``; for delivery and click receipts, optionally
``receipt_url`` (where MiPush is to post them: ``https://<receipts host>/receipts/xiaomi/<app
id>``) and ``receipt_key`` (the key Herald signs the receipt tag with; ``app_secret`` when not
set, which a rotation of the secret then invalidates for messages in flight). With a
``receipt_url`` every message asks for receipts (``vendors.receipts.xiaomi``).

Answer (HTTP 200, JSON): ``{result: "ok"|"error", code, description, info, reason, trace_id,
data: {id, bad_regids}}``. ``code`` 0 is success; ``data.bad_regids`` then lists, comma
separated, the regids of the batch MiPush does not know: those targets get
``token_invalid``, the others succeeded. Code 20301 means no regid of the request is valid: every
target gets ``token_invalid``. (The feedback API that listed invalid regids is retired; MiPush
now reports them only in this answer and in delivery receipts.) Other codes fail the request:

=====================================================  ========================================
MiPush code                                            error
=====================================================  ========================================
10001 10002 10003 10009 10011 (system, paused, busy)   ``TransientError``
10022 10023 10024 10027 10028 (call frequency limits)  ``RateLimitedError`` (``Retry-After``)
200001 (daily push quota used up)                      ``RateLimitedError`` until 00:00 UTC+8
21301 (authentication failed), 22000-22002, 22008,     ``AuthError``
22022 (application or package name refused)
anything else (10017 bad value, 10018 too long, ...)   ``RejectedError`` with code and reason
=====================================================  ========================================

Field mapping (``build_payload``), ``Message`` field -> form field:

==================  ===========================================================================
registration ids    ``registration_id`` (comma separated), ``restricted_package_name`` from the
                    credentials
kind                ``pass_through`` 0 (notify, chat, call) or 1 (data: the app's receiver gets
                    ``payload``)
data, sender,       ``payload``: the data as a JSON object string (every kind), with
conversation        ``sender`` and ``conversation`` under those keys; at most
                    ``MAX_PAYLOAD_BYTES``, else ``PayloadTooLargeError`` before sending
title / body        ``title`` (< 50 characters) / ``description`` (< 128 characters); longer
                    text is cut and ends with "…"; MiPush needs both, so a missing one repeats
                    the other
click               ``extra.notify_effect``: app 1 (launcher activity), intent and deeplink 2
                    with ``extra.intent_uri``, url 3 with ``extra.web_uri``; always set, since
                    MiPush retired notifications without a predefined click effect
category/channel_id ``extra.channel_id``: MiPush's channel is the message category of its
                    classification rules, so ``category`` wins over ``channel_id``: a chat
                    goes to channel ``IM`` and a call to ``VOIP`` unless they name a category
                    (the app registers those channels with MiPush)
sound               ``extra.sound_uri``: a URI as given, a bare name as
                    ``android.resource://<package>/raw/<name>``; "" or "default" leave the
                    default sound
collapse_id         ``notify_id`` (an int; the same id replaces the shown notification): a
                    decimal collapse id below 2**31 as is, any other its CRC-32 with the top
                    bit cleared; without a collapse id the CRC-32 of the msg id, so that
                    distinct messages do not replace each other (MiPush's default id 0 would)
expiry              ``time_to_live`` in milliseconds (``expires_at_ms`` - now, rounded to
                    seconds); no expiry leaves MiPush's default; an expired job is not sent
                    and every target gets the error "expired"
(fixed)             ``notify_type`` -1: default sound, vibration and lights
(creds) receipts    with a ``receipt_url``: ``extra.callback`` the URL, ``extra.callback.param``
                    the signed tag of the task (``vendors.receipts.tags``), and
                    ``extra.callback.type`` ``CALLBACK_TYPES`` (delivered, clicked, invalid
                    target, push disabled, filtered out, daily limit); a task id whose tag would
                    pass ``CALLBACK_PARAM_MAX`` bytes (over 53 characters) asks for none
==================  ===========================================================================

Drop rules: ``badge`` and ``badge_add`` (MiPush has no badge field: the launcher counts
notifications itself), ``small_icon``, ``large_icon`` and ``image`` (MiPush only shows images
first uploaded to its own media API, not a URL), ``priority`` (no priority field), ``push_type``
(no silent or call class; silence is ``kind=data``), ``environment`` (MiPush has one), and
for ``kind=data`` the title, body, click, sound, channel and collapse id (a pass-through
message is not shown). The documentation
index carries a notice that Xiaomi stops delivering pass-through messages; where MiPush refuses
one, its error code surfaces as a ``RejectedError``. MiPush does not publish its request size
limit in the pages below (an over-long request fails with 10018); ``MAX_PAYLOAD_BYTES`` holds
``payload`` to 4 KB, what Herald's own data limit allows.

Recall: the MiPush pages cited list no per-regid revoke endpoint (``can_revoke`` is False); a
later notification with the same ``notify_id`` replaces a shown one.

Documents: "服务器API地址以及参数" / "Server API Address and Parameters" (endpoints, header,
form fields, click effects, notify_id, time_to_live),
https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1559 and ?pId=1696; "Mi Push Server
Side SDK (Java)" (feedback API retired in favour of receipts),
https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1558 and ?pId=1695; the push
documentation index with the notices on custom notifications and pass-through,
https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1529; the error codes of the Java
server SDK (``com.xiaomi.push.sdk.ErrorCode``), https://admin.xmpush.xiaomi.com/en/mipush/downpage/.
Codes 20301, 21301, 200001 and ``data.bad_regids`` are as MiPush answers them; they are not
listed in those pages.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
import msgspec

from proto.envelopes import VendorJob
from proto.message import ClickAction, Message
from vendors.client import BaseClient, TargetResult
from vendors.common import (
    crc31,
    decode_answer,
    every_target,
    fit,
    parse_credentials,
    required,
    seconds_left,
    until_midnight,
)
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
    VendorError,
)
from vendors.http import call, retry_after_s
from vendors.receipts import tags

DEFAULT_BASE_URL = "https://api.xmpush.xiaomi.com"
PATH = "/v3/message/regid"
MAX_BATCH = 1000
#: "Fewer than 50" and "fewer than 128" characters, every character counting one.
MAX_TITLE = 49
MAX_DESCRIPTION = 127
MAX_PAYLOAD_BYTES = 4096
#: Longest ``extra.callback.param``, in bytes.
CALLBACK_PARAM_MAX = 64
#: Receipt types asked for, a bitmask: 1 delivered, 2 clicked, 16 invalid target, 32 push
#: disabled on the device, 64 filtered out, 128 daily limit reached.
CALLBACK_TYPES = 1 | 2 | 16 | 32 | 64 | 128
#: Answer code when no regid of the request is valid.
ALL_INVALID = 20301
DAILY_QUOTA = 200001

_REQUEST_ERRORS: dict[int, type[VendorError]] = {
    **dict.fromkeys((10001, 10002, 10003, 10009, 10011), TransientError),
    **dict.fromkeys((10022, 10023, 10024, 10027, 10028, DAILY_QUOTA), RateLimitedError),
    **dict.fromkeys((21301, 22000, 22001, 22002, 22008, 22022), AuthError),
}
_CLICK_EFFECTS = {"app": "1", "intent": "2", "deeplink": "2", "url": "3"}
_CLICK_TARGETS = {"intent": "extra.intent_uri", "deeplink": "extra.intent_uri",
                  "url": "extra.web_uri"}


@dataclass(frozen=True, slots=True)
class Credentials:
    """An app's MiPush credentials: the AppSecret and the Android package name."""

    app_secret: str = field(repr=False)
    package_name: str
    receipt_url: str = ""
    receipt_key: str = field(default="", repr=False)

    @classmethod
    def from_mapping(cls, m: Mapping[str, str]) -> Credentials:
        """Read ``app_secret`` and ``package_name`` and the optional receipt fields;
        ``ValueError`` names a missing or bad one."""
        app_secret, package_name = required(m, "xiaomi", "app_secret", "package_name")
        return cls(app_secret=app_secret, package_name=package_name,
                   receipt_url=tags.receipt_url(m, "xiaomi"),
                   receipt_key=m.get(tags.KEY_FIELD, "").strip())

    def callback(self, job: VendorJob) -> tags.Callback | None:
        """The receipt request of ``job``'s message, if the app asks for receipts."""
        return tags.callback(self.receipt_url, self.receipt_key or self.app_secret, "xiaomi",
                             job.app_id, job.task_id, CALLBACK_PARAM_MAX)


class _Data(msgspec.Struct):
    id: str = ""
    bad_regids: str = ""


class _Answer(msgspec.Struct):
    code: int
    result: str = ""
    description: str = ""
    reason: str = ""
    data: _Data | None = None


_answer = msgspec.json.Decoder(_Answer)


def build_payload(message: Message, tokens: Sequence[str], *, package_name: str, msg_id: str,
                  ttl_ms: int | None = None,
                  callback: tags.Callback | None = None) -> dict[str, str]:
    """The form fields of a ``/v3/message/regid`` request (see the module table).

    Raises ``PayloadTooLargeError`` when ``payload`` exceeds ``MAX_PAYLOAD_BYTES``.
    """
    fields = {"registration_id": ",".join(tokens), "restricted_package_name": package_name}
    data = message.vendor_data()
    if data:
        payload = msgspec.json.encode(data)
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLargeError(
                f"payload is {len(payload)} bytes, MiPush takes {MAX_PAYLOAD_BYTES}")
        fields["payload"] = payload.decode()
    if ttl_ms is not None:
        fields["time_to_live"] = str(ttl_ms)
    if callback is not None:
        fields |= {"extra.callback": callback.url, "extra.callback.param": callback.param,
                   "extra.callback.type": str(CALLBACK_TYPES)}
    if not message.shows:
        fields["pass_through"] = "1"
        return fields
    fields |= {"pass_through": "0", "notify_type": "-1",
               "title": fit(message.title or message.body, MAX_TITLE),
               "description": fit(message.body or message.title, MAX_DESCRIPTION),
               "notify_id": str(notify_id(message.collapse_id or msg_id))}
    fields |= _click(message.click)
    if message.category or message.channel_id:
        fields["extra.channel_id"] = message.category or message.channel_id
    if message.sound not in ("", "default"):
        fields["extra.sound_uri"] = (message.sound if "://" in message.sound
                                     else f"android.resource://{package_name}/raw/{message.sound}")
    return fields


def notify_id(key: str) -> int:
    """MiPush's int notification id for a collapse key: a small decimal as is, else CRC-32."""
    if key.isascii() and key.isdigit() and int(key) < 2**31:
        return int(key)
    return crc31(key)


class XiaomiClient(BaseClient):
    """``VendorClient`` for MiPush."""

    name = "xiaomi"
    max_batch = MAX_BATCH

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 10.0,
                 verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self._url = base_url.rstrip("/") + PATH
        self._clock = clock
        self._http = httpx.AsyncClient(timeout=timeout_s, verify=verify, http2=True)

    async def send(self, job: VendorJob, credentials: Mapping[str, str]) -> list[TargetResult]:
        """See ``VendorClient.send``."""
        creds = parse_credentials(Credentials.from_mapping, credentials)
        ttl_s = seconds_left(job.expires_at_ms, self._clock())
        if ttl_s == 0:
            return every_target(job, "expired")
        fields = build_payload(job.message, [t.token for t in job.targets],
                               package_name=creds.package_name, msg_id=job.msg_id,
                               ttl_ms=None if ttl_s is None else ttl_s * 1000,
                               callback=creds.callback(job))
        response = await call(self._http, "POST", self._url, data=fields,
                              headers={"authorization": f"key={creds.app_secret}"})
        if response.status_code in (401, 403):
            raise AuthError(f"HTTP {response.status_code} from MiPush")
        if response.status_code != 200:
            raise RejectedError(f"HTTP {response.status_code} from MiPush: {response.text[:200]}")
        answer = decode_answer(_answer, response.content, "MiPush")
        if answer.code == 0:
            bad = set((answer.data.bad_regids if answer.data else "").split(","))
            return [TargetResult(t.registration_id, error="invalid regid", token_invalid=True)
                    if t.token in bad else TargetResult(t.registration_id) for t in job.targets]
        if answer.code == ALL_INVALID:
            return every_target(job, f"{ALL_INVALID} invalid regid", token_invalid=True)
        raise self._request_error(answer, response)

    async def close(self) -> None:
        """See ``VendorClient.close``."""
        await self._http.aclose()

    def _request_error(self, answer: _Answer, response: httpx.Response) -> VendorError:
        error = _REQUEST_ERRORS.get(answer.code, RejectedError)
        wait = retry_after_s(response.headers)
        if answer.code == DAILY_QUOTA:
            # The documents name no zone: taken as China Standard Time, as OPPO and vivo say.
            wait = until_midnight(self._clock())
        return error(f"MiPush code {answer.code}: {answer.reason or answer.description}",
                     retry_after_s=wait)


def _click(click: ClickAction) -> dict[str, str]:
    fields = {"extra.notify_effect": _CLICK_EFFECTS[click.type]}
    if click.type in _CLICK_TARGETS:
        fields[_CLICK_TARGETS[click.type]] = click.target
    return fields

