"""What the Huawei Push Kit and Honor Push clients share: Honor's cloud API is modelled on
Huawei's (HMS) one.

Both vendors authenticate with an OAuth 2.0 client-credentials access token (form POST of
``grant_type=client_credentials``, ``client_id``, ``client_secret``; JSON answer with
``access_token`` and ``expires_in``) sent as ``Authorization: Bearer``; both cap a message at
4096 bytes not counting the token list and a request at 1000 tokens; both use the same
click-action types (1 intent or action, 2 URL, 3 open the app) and badge shape (add or set a
number on the launcher activity class). This module holds those shared parts: the access-token
mint (kept by ``vendors.tokens.TokenCache`` with its refresh-once-on-refusal template), the
HTTP plumbing, and the small mapping helpers.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgspec

from proto.envelopes import VendorJob
from proto.message import ClickAction, Message
from vendors.client import BaseClient
from vendors.common import crc31, seconds_left
from vendors.errors import AuthError, PayloadTooLargeError, RejectedError, VendorError
from vendors.http import call, new_client
from vendors.tokens import Token, TokenCache, TokenRefused

#: Tokens one send request may carry.
MAX_TOKENS = 1000
#: Largest message, in bytes of JSON, not counting the token list.
MAX_MESSAGE_BYTES = 4096

#: Click-action types both vendors define.
CLICK_INTENT, CLICK_URL, CLICK_APP = 1, 2, 3

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Extras:
    """What a payload carries besides the message: from the job and the app's credentials."""

    #: Seconds the vendor may keep the message; None for the vendor's default.
    ttl_s: int | None = None
    #: Tag the vendor repeats in delivery receipts: the Herald task id, or its signed tag
    #: (``vendors.receipts.tags``) where the receipts carry no signature of the vendor's.
    bi_tag: str = ""
    #: Notification id, which a later revoke names again.
    notify_id: int | None = None
    #: The app's launcher activity, without which a badge cannot be set.
    badge_class: str = ""
    #: The receipt configuration the vendor is to use (Huawei's ``receipt_id``), or "".
    receipt_id: str = ""

    @property
    def ttl(self) -> str | None:
        """The ttl as both vendors write it, ``"<seconds>s"``."""
        return None if self.ttl_s is None else f"{self.ttl_s}s"

    @classmethod
    def of(cls, job: VendorJob, now_s: float, badge_class: str, *, bi_tag: str = "",
           receipt_id: str = "") -> Extras:
        """The extras of ``job`` at time ``now_s``; ``bi_tag`` defaults to the task id."""
        return cls(seconds_left(job.expires_at_ms, now_s), bi_tag or job.task_id,
                   notify_id(job.msg_id), badge_class, receipt_id)


NO_EXTRAS = Extras()


def notify_id(msg_id: str) -> int:
    """A stable notification id for a message: revoking the message names it again."""
    return crc31(msg_id)


def click_action(click: ClickAction) -> dict[str, Any]:
    """The click action: ``intent`` and ``deeplink`` targets both go as an intent URI."""
    if click.type == "url":
        return {"type": CLICK_URL, "url": click.target}
    if click.type in ("intent", "deeplink"):
        return {"type": CLICK_INTENT, "intent": click.target}
    return {"type": CLICK_APP}


def badge(message: Message, badge_class: str, *, add: str, set_: str,
          cls: str) -> dict[str, Any] | None:
    """The badge object under the vendor's key names; None without a launcher class."""
    if not badge_class or (message.badge is None and message.badge_add is None):
        return None
    if message.badge is not None:
        return {set_: message.badge, cls: badge_class}
    return {add: message.badge_add, cls: badge_class}


def compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` without the empty ones (None, "" and empty containers)."""
    return {k: v for k, v in fields.items() if v is not None and v != "" and v != {}}


def data_string(message: Message) -> str | None:
    """Custom data (with ``conversation`` and ``sender``, ``Message.vendor_data``) as the JSON
    string both vendors carry it in, or None without data."""
    data = message.vendor_data()
    return msgspec.json.encode(data).decode() if data else None


def check_size(vendor: str, message_without_tokens: Mapping[str, Any]) -> None:
    """Raise ``PayloadTooLargeError`` when the message exceeds the vendor's limit."""
    size = len(msgspec.json.encode(message_without_tokens))
    if size > MAX_MESSAGE_BYTES:
        raise PayloadTooLargeError(
            f"{vendor} message is {size} bytes; the limit is {MAX_MESSAGE_BYTES}")


def raise_for_code(vendor: str, code: str, text: str,
                   table: Mapping[str, type[VendorError]]) -> None:
    """Raise the error ``table`` gives for a vendor result code (``RejectedError`` if none)."""
    raise table.get(code, RejectedError)(f"{vendor} {code}: {text[:200]}")


def decode_json(response: httpx.Response) -> dict[str, Any] | None:
    """The response body as a JSON object, or None when it is not one."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return None
    return body if isinstance(body, dict) else None


def read_answer(vendor: str, response: httpx.Response, text_key: str,
                auth_codes: frozenset[str]) -> tuple[str, str, dict[str, Any]]:
    """Result code, its text (under ``text_key``) and the whole JSON answer.

    Both vendors put a result code in the body whatever the HTTP status. HTTP 401 or one of
    ``auth_codes`` raises ``TokenRefused``; a body that is not JSON raises ``RejectedError``.
    """
    answer = decode_json(response)
    if answer is None and response.status_code != 401:
        raise RejectedError(f"{vendor} HTTP {response.status_code}: {response.text[:200]}")
    answer = answer or {}
    code, text = str(answer.get("code", "")), str(answer.get(text_key, ""))
    if code in auth_codes or response.status_code == 401:
        raise TokenRefused(f"{code or 'HTTP 401'}: {text[:200]}")
    return code, text, answer


class OAuthPushClient(BaseClient):
    """HTTP plumbing of both clients: one connection pool and client-credentials tokens."""

    def __init__(self, vendor: str, auth_url: str, timeout_s: float,
                 verify: ssl.SSLContext | bool, clock: Callable[[], float]) -> None:
        self._http = new_client(timeout_s=timeout_s, verify=verify)
        self._vendor = vendor
        self._auth_url = auth_url
        self._clock = clock
        self._tokens = TokenCache(clock)

    async def _post(self, client_id: str, client_secret: str, url: str, body: Mapping[str, Any],
                    headers: Callable[[], dict[str, str]],
                    read: Callable[[httpx.Response], T]) -> T:
        """POST ``body`` as JSON with a bearer token and ``headers()``; ``read`` the answer.

        ``read`` raises ``TokenRefused`` when the vendor refuses the token; the request is then
        sent once more with a fresh one.
        """
        content = msgspec.json.encode(body)

        async def attempt(access_token: str) -> T:
            response = await call(self._http, "POST", url, content=content, headers={
                "content-type": "application/json; charset=UTF-8",
                "authorization": f"Bearer {access_token}", **headers()})
            return read(response)

        return await self._tokens.call(client_id, lambda: self._fetch(client_id, client_secret),
                                       attempt)

    async def _fetch(self, client_id: str, client_secret: str) -> Token:
        """A new access token from the OAuth 2.0 client-credentials grant."""
        form = {"grant_type": "client_credentials", "client_id": client_id,
                "client_secret": client_secret}
        response = await call(self._http, "POST", self._auth_url, data=form)
        body = decode_json(response) or {}
        if response.status_code != 200:
            # OAuth errors name a reason, never the secret; keep only those fields.
            reason = {k: body[k] for k in ("error", "sub_error", "error_description")
                      if k in body}
            raise AuthError(f"{self._vendor} token endpoint refused client {client_id}: "
                            f"HTTP {response.status_code} {reason}")
        try:
            return Token(str(body["access_token"]), self._clock() + float(body["expires_in"]))
        except (KeyError, TypeError, ValueError):
            raise RejectedError(f"{self._vendor} token endpoint answered without a token "
                                f"and expiry") from None

    async def close(self) -> None:
        """See ``VendorClient.close``."""
        await self._http.aclose()
