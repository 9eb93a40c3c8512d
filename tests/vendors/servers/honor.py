"""A fake Honor Push: the Keycloak-style token endpoint and the ``sendMessage`` endpoint.

It checks what Honor documents: client credentials at the token endpoint; the bearer token
and a millisecond ``timestamp`` header; the app id in the path; the body's camelCase structure;
1 to 1000 tokens and 4096 bytes without the tokens. It answers ``{"code", "message", "data":
{"sendResult", "requestId", "failTokens", "expireTokens"}}``; the failure codes are the ones
``vendors.honor`` expects (Huawei's scheme, see that module).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.vendors.servers.huawei import (
    MAX_MESSAGE_BYTES,
    MAX_TOKENS,
    OAuthFake,
    Script,
    check_badge,
    check_click,
)

TOKEN_PATH = "/auth/realms/developer/protocol/openid-connect/token"
_ids = itertools.count(1)


@dataclass
class HonorState:
    """The fake's configuration and what it received."""

    app_id: str = "104412345"
    oauth: OAuthFake = field(default_factory=lambda: OAuthFake("honor-client", "ho-secret"))
    script: Script = field(default_factory=Script)
    #: Tokens Honor reports as expired (unregistered) and as failed.
    expired_tokens: set[str] = field(default_factory=set)
    failed_tokens: set[str] = field(default_factory=set)
    #: Result codes to answer with, one per accepted send, instead of judging the tokens.
    codes: list[int] = field(default_factory=list)
    #: Accepted sends: {"path", "headers", "body"}.
    sends: list[dict[str, Any]] = field(default_factory=list)


def honor_app() -> tuple[Starlette, HonorState]:
    """A fresh fake Honor Push and its state."""
    state = HonorState()

    async def token(request: Request) -> Response:
        return await state.oauth.token(request, {
            "error": "unauthorized_client",
            "error_description": "Invalid client or Invalid client credentials"})

    async def send(request: Request) -> Response:
        failure = state.script.status()
        if failure is not None:
            return failure
        if request.path_params["app_id"] != state.app_id:
            return _answer(80300002, "no permission to send message to this app", 403)
        timestamp = request.headers.get("timestamp", "")
        if not re.fullmatch(r"\d{13}", timestamp):
            return _answer(80100001, "timestamp header must be epoch milliseconds", 400)
        bearer = state.oauth.bearer(request, state.oauth.client_id)
        if bearer is None:
            return _answer(80200001, "authentication failed", 401)
        if state.oauth.expires_now(bearer, state.script):
            return _answer(80200003, "access token expired", 401)
        body = msgspec.json.decode(await request.body())
        tokens = body.get("token") if isinstance(body, dict) else None
        if not isinstance(tokens, list) or not 1 <= len(tokens) <= MAX_TOKENS:
            return _answer(80300010, "number of tokens exceeds the limit", 400)
        rest = {k: v for k, v in body.items() if k != "token"}
        if len(msgspec.json.encode(rest)) > MAX_MESSAGE_BYTES:
            return _answer(80300008, "message body size exceeds the limit", 400)
        problem = _check_message(rest)
        if problem:
            return _answer(80100003, problem, 400)
        state.sends.append({"path": request.url.path, "headers": dict(request.headers),
                            "body": body})
        if state.codes:
            return _answer(state.codes.pop(0), "scripted result")
        expired = [t for t in tokens if t in state.expired_tokens]
        if len(expired) == len(tokens):
            return _answer(80300007, "all tokens are invalid", 400)
        failed = [t for t in tokens if t in state.failed_tokens]
        return _answer(200, "success", data={
            "sendResult": len(failed) + len(expired) < len(tokens),
            "requestId": f"req-{next(_ids)}", "failTokens": failed, "expireTokens": expired})

    app = Starlette(routes=[
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route("/api/v1/{app_id}/sendMessage", send, methods=["POST"]),
    ])
    return app, state


def _answer(code: int, message: str, status: int = 200,
            data: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": data}, status)


_MESSAGE_KEYS = {"data", "notification", "android", "token"}
_ANDROID_KEYS = {"ttl", "biTag", "data", "notification", "targetUserType"}
_NOTIFICATION_KEYS = {"title", "body", "clickAction", "image", "style", "bigTitle", "bigBody",
                      "importance", "when", "buttons", "badge", "notifyId", "tag", "group"}


def _check_message(message: dict[str, Any]) -> str:
    """What is wrong with the message (without tokens), or ""."""
    if set(message) - _MESSAGE_KEYS:
        return f"unknown fields {sorted(set(message) - _MESSAGE_KEYS)}"
    if "data" in message and not isinstance(message["data"], str):
        return "data must be a string"
    android = message.get("android", {})
    if set(android) - _ANDROID_KEYS:
        return f"unknown android fields {sorted(set(android) - _ANDROID_KEYS)}"
    if "ttl" in android and not re.fullmatch(r"\d+s", android["ttl"]):
        return "malformed ttl"
    if not isinstance(android.get("biTag", ""), str):
        return "biTag must be a string"
    notification = android.get("notification")
    if notification is None:
        return "" if "data" in message else "a message needs data or a notification"
    if set(notification) - _NOTIFICATION_KEYS:
        return f"unknown notification fields {sorted(set(notification) - _NOTIFICATION_KEYS)}"
    if notification.get("importance", "NORMAL") not in ("LOW", "NORMAL"):
        return "importance must be LOW or NORMAL"
    return (check_click(notification.get("clickAction"), "clickAction")
            or check_badge(notification.get("badge"), "addNum", "setNum", "badgeClass"))
