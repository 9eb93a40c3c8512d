"""A fake Huawei Push Kit: the OAuth 2.0 token endpoint and the v1 send and revoke endpoints.

It checks what Huawei checks: client credentials at the token endpoint; the bearer token, that
it was issued to the client id in the path and has not expired; the body's structure and field
values; 1 to 1000 tokens; 4096 bytes of message without the tokens. It answers with Huawei's
result codes. ``OAuthFake`` and ``Script`` also serve the Honor fake, whose API mirrors this one.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_TOKENS = 1000
MAX_MESSAGE_BYTES = 4096
_ids = itertools.count(1)


@dataclass
class OAuthFake:
    """A client-credentials token endpoint: one client, tokens it issued, tokens it expired."""

    client_id: str
    client_secret: str
    expires_in: int = 3600
    issued: dict[str, str] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)
    #: Form fields of every token request, in order.
    requests: list[dict[str, str]] = field(default_factory=list)
    #: Requests refused for an expired access token.
    refusals: int = 0

    async def token(self, request: Request, refusal: dict[str, Any]) -> Response:
        """Issue a token for the right credentials; answer 401 with ``refusal`` otherwise."""
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return JSONResponse(refusal, 400)
        form = dict(parse_qsl((await request.body()).decode()))
        self.requests.append(form)
        if (form.get("grant_type") != "client_credentials"
                or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret):
            return JSONResponse(refusal, 401)
        token = f"AT-{next(_ids)}"
        self.issued[token] = self.client_id
        return JSONResponse({"access_token": token, "expires_in": self.expires_in,
                             "token_type": "Bearer"})

    def bearer(self, request: Request, client_id: str) -> str | None:
        """The request's access token when it was issued to ``client_id`` (maybe expired)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token if scheme == "Bearer" and self.issued.get(token) == client_id else None

    def expires_now(self, token: str, script: Script) -> bool:
        """Whether ``token`` is expired, after expiring it if ``script`` asks to."""
        if script.expire_next:
            script.expire_next -= 1
            self.expired.add(token)
        if token not in self.expired:
            return False
        self.refusals += 1
        return True


@dataclass
class Script:
    """What the fake answers next instead of judging the request itself."""

    #: HTTP statuses to answer with, one per request, first first (429, 500, ...).
    statuses: list[int] = field(default_factory=list)
    retry_after: str = ""
    #: Expire the access token of the next this many requests (the auth-expired answer).
    expire_next: int = 0

    def status(self) -> Response | None:
        """The scripted HTTP failure for this request, if any."""
        if not self.statuses:
            return None
        headers = {"retry-after": self.retry_after} if self.retry_after else {}
        return Response("scripted failure", self.statuses.pop(0), headers=headers)


@dataclass
class HuaweiState:
    """The fake's configuration and what it received."""

    oauth: OAuthFake = field(default_factory=lambda: OAuthFake("108123456", "hw-secret"))
    script: Script = field(default_factory=Script)
    #: Tokens Huawei does not know (answered as illegal_tokens or 80300007).
    invalid_tokens: set[str] = field(default_factory=set)
    #: Result codes to answer with, one per accepted send, instead of judging the tokens.
    codes: list[str] = field(default_factory=list)
    #: Accepted sends and revokes: {"path", "headers", "body"}.
    sends: list[dict[str, Any]] = field(default_factory=list)
    revokes: list[dict[str, Any]] = field(default_factory=list)


def huawei_app() -> tuple[Starlette, HuaweiState]:
    """A fresh fake Huawei Push Kit and its state."""
    state = HuaweiState()

    async def token(request: Request) -> Response:
        return await state.oauth.token(
            request, {"error": 1101, "sub_error": 20003, "error_description": "invalid client"})

    async def messages(request: Request) -> Response:
        failure = state.script.status()
        if failure is not None:
            return failure
        method = request.path_params["method"]
        bearer = state.oauth.bearer(request, request.path_params["client_id"])
        if bearer is None:
            return _answer("80200001", "Oauth authentication error", 401)
        if state.oauth.expires_now(bearer, state.script):
            return _answer("80200003", "Oauth Token expired.", 401)
        body = msgspec.json.decode(await request.body())
        record = {"path": request.url.path, "headers": dict(request.headers), "body": body}
        if method == "messages:revoke":
            return _revoke(state, request, body, record)
        if method != "messages:send":
            return Response(status_code=404)
        return _send(state, body, record)

    app = Starlette(routes=[
        Route("/oauth2/v3/token", token, methods=["POST"]),
        Route("/v1/{client_id}/{method}", messages, methods=["POST"]),
    ])
    return app, state


def _answer(code: str, msg: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg, "requestId": f"req-{next(_ids)}"}, status)


def _send(state: HuaweiState, body: Any, record: dict[str, Any]) -> Response:
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict) or not isinstance(body.get("validate_only"), bool):
        return _answer("80100003", "Illegal message structure", 400)
    tokens = message.get("token")
    if not isinstance(tokens, list) or not 1 <= len(tokens) <= MAX_TOKENS:
        return _answer("80300010", "The number of tokens exceeds the default value", 400)
    rest = {k: v for k, v in message.items() if k != "token"}
    if len(msgspec.json.encode(rest)) > MAX_MESSAGE_BYTES:
        return _answer("80300008", "The message body size exceeds the default value", 400)
    problem = _check_message(rest)
    if problem:
        return _answer("80100003", problem, 400)
    state.sends.append(record)
    if state.codes:
        return _answer(state.codes.pop(0), "scripted result")
    illegal = [t for t in tokens if t in state.invalid_tokens]
    if len(illegal) == len(tokens):
        return _answer("80300007", "All the tokens are invalid", 400)
    if illegal:
        detail = {"success": len(tokens) - len(illegal), "failure": len(illegal),
                  "illegal_tokens": illegal}
        return _answer("80100000", msgspec.json.encode(detail).decode())
    return _answer("80000000", "Success")


def _revoke(state: HuaweiState, request: Request, body: Any,
            record: dict[str, Any]) -> Response:
    if request.headers.get("push-type") not in ("0", "2"):
        return _answer("80100001", "push-type must be 0 or 2", 400)
    if (not isinstance(body, dict) or set(body) != {"notifyId", "token"}
            or not isinstance(body["notifyId"], int)):
        return _answer("80100003", "revoke needs notifyId and token", 400)
    if not isinstance(body["token"], list) or not 1 <= len(body["token"]) <= MAX_TOKENS:
        return _answer("80300010", "The number of tokens exceeds the default value", 400)
    state.revokes.append(record)
    return _answer("80000000", "Success")


_MESSAGE_KEYS = {"data", "notification", "android", "apns", "webpush"}
_ANDROID_KEYS = {"collapse_key", "urgency", "category", "ttl", "bi_tag", "fast_app_target",
                 "data", "notification", "receipt_id"}
_NOTIFICATION_KEYS = {
    "title", "body", "icon", "color", "sound", "default_sound", "tag", "click_action",
    "body_loc_key", "body_loc_args", "title_loc_key", "title_loc_args", "multi_lang_key",
    "channel_id", "notify_summary", "image", "style", "big_title", "big_body", "auto_clear",
    "notify_id", "group", "badge", "ticker", "when", "importance", "use_default_vibrate",
    "use_default_light", "vibrate_config", "visibility", "light_settings", "foreground_show",
    "inbox_content", "buttons", "profile_id"}
_TTL = re.compile(r"\d+(\.\d+)?s")


def _check_message(message: dict[str, Any]) -> str:
    """What is wrong with the message (without tokens), or ""."""
    if set(message) - _MESSAGE_KEYS:
        return f"unknown message fields {sorted(set(message) - _MESSAGE_KEYS)}"
    if "data" in message and not isinstance(message["data"], str):
        return "data must be a string"
    android = message.get("android", {})
    if set(android) - _ANDROID_KEYS:
        return f"unknown android fields {sorted(set(android) - _ANDROID_KEYS)}"
    if android.get("urgency", "NORMAL") not in ("HIGH", "NORMAL"):
        return "urgency must be HIGH or NORMAL"
    if "ttl" in android and not _TTL.fullmatch(android["ttl"]):
        return "malformed ttl"
    collapse = android.get("collapse_key", 0)
    if not isinstance(collapse, int) or not -1 <= collapse <= 100:
        return "collapse_key must be in [-1, 100]"
    if not all(isinstance(android.get(k, ""), str) for k in ("bi_tag", "receipt_id")):
        return "bi_tag and receipt_id must be strings"
    notification = android.get("notification")
    if notification is None:
        return "" if "data" in message else "a message needs data or a notification"
    return _check_notification(notification)


def _check_notification(notification: dict[str, Any]) -> str:
    if set(notification) - _NOTIFICATION_KEYS:
        return f"unknown notification fields {sorted(set(notification) - _NOTIFICATION_KEYS)}"
    if not notification.get("sound") and not notification.get("default_sound"):
        return "sound must not be empty when default_sound is false"
    return (check_click(notification.get("click_action"), "click_action")
            or check_badge(notification.get("badge"), "add_num", "set_num", "class"))


def check_click(click: Any, name: str) -> str:
    """What is wrong with a click action (types 1 intent or action, 2 url, 3 app), or ""."""
    needs = {1: "intent", 2: "url", 3: None}
    if not isinstance(click, dict) or click.get("type") not in needs:
        return f"{name} type must be 1, 2 or 3"
    needed = needs[click["type"]]
    if needed and not click.get(needed) and not (needed == "intent" and click.get("action")):
        return f"{name} type {click['type']} needs {needed}"
    return ""


def check_badge(badge: Any, add: str, set_: str, cls: str) -> str:
    """What is wrong with a badge (a number to add or set, and the activity class), or ""."""
    if badge is None:
        return ""
    if not isinstance(badge, dict) or not badge.get(cls) or set(badge) - {add, set_, cls}:
        return f"badge needs {cls} and {add} or {set_}"
    return ""
