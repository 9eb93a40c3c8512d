"""A fake HarmonyOS Push Kit v3 ``messages:send``, checked as Push Kit checks it.

The bearer token must be a JWT signed PS256 with the service account's key (header ``kid`` its
key id, ``typ`` JWT; ``iss`` the sub account, ``aud`` the Huawei token URI, at most a day between
``iat`` and ``exp``, not expired); the path must name the account's project; ``push-type`` must be
a scenario the body matches (0: ``payload.notification``; 6 and 10: ``payload.extraData``), with
1 to 1000 tokens and at most 4096 bytes without them. It answers Push Kit's business codes:
80000000, 80100000 (partial) or 80300007 (all invalid) with ``illegalTokens`` in ``msg``.
``invalid_tokens`` names a reason per token (tokens that do not look like Push tokens are
``tokenFormatError``); ``refuse_next`` answers that many sends 401 80200005; ``codes`` and
``statuses`` force the next answers.

``POST /v1/{client_id}/messages:revoke`` takes the same JWT, the app's client id in the path,
``push-type`` 0 or 2 and exactly ``{"notifyId": <int>, "token": [1..1000 tokens]}``; accepted
revokes are recorded in ``revokes``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN_URI = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
TOKEN_RE = re.compile(r"^[A-Za-z0-9+/=_*-]{8,512}$")
PUSH_TYPES = {0, 1, 2, 6, 7, 10}
CATEGORIES = {"IM", "VOIP", "SUBSCRIPTION", "TRAVEL", "HEALTH", "WORK", "ACCOUNT", "EXPRESS",
              "FINANCE", "DEVICE_REMINDER", "MAIL", "MARKETING", "PLAY_VOICE", "MISS_CALL"}
NOTIFICATION_FIELDS = {"category", "title", "body", "image", "style", "bigTitle", "bigBody",
                       "notifyId", "appMessageId", "profileId", "inboxContent", "clickAction",
                       "badge", "sound", "soundDuration", "foregroundShow", "extraData"}
OPTION_FIELDS = {"testMessage", "ttl", "biTag", "receiptId", "collapseKey", "backgroundMode"}
MESSAGES = {
    "80000000": "Success",
    "80100000": "Check Parameter Partial Success.",
    "80100003": "Illegal payload, {tips}.",
    "80200001": "Authentication Error.",
    "80200005": "Jwt token expired.",
    "80300007": "All the tokens are invalid.",
    "80300008": "Push message size is too long.",
    "80300010": "token count should within 1 and 1000.",
    "80300029": "When send test message, the api request exceed limit.",
    "80300036": "JWT expire period over threshold.",
    "81000001": "Inner Error.",
}


@dataclass
class HarmonyAccount:
    """A service account the fake knows, and the credential mapping an app would store."""

    project_id: str
    sub_account: str
    key_id: str
    private_key: rsa.RSAPrivateKey
    #: The app's client id, which the revoke endpoint's path names.
    client_id: str = "10086000"

    def credentials(self) -> dict[str, str]:
        pem = self.private_key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        return {"project_id": self.project_id, "key_id": self.key_id,
                "sub_account": self.sub_account, "private_key": pem,
                "client_id": self.client_id}


@dataclass
class HarmonyState:
    """What the fake saw, and how it is told to answer."""

    account: HarmonyAccount
    clock: Callable[[], float]
    #: token -> illegal-token reason (tokenFormatError, noRight, noPushTypeRight, ...).
    invalid_tokens: dict[str, str] = field(default_factory=dict)
    #: Answer this many sends 401 80200005, as for an expired JWT.
    refuse_next: int = 0
    #: Business codes to answer the next sends with (HTTP 400), before looking at them.
    codes: list[str] = field(default_factory=list)
    #: HTTP statuses (429, 5xx) to answer the next sends with.
    statuses: list[int] = field(default_factory=list)
    retry_after: str = ""
    #: The bearer JWT of every send that passed auth.
    jwts: list[str] = field(default_factory=list)
    #: Accepted sends: {"push_type": ..., "content_type": ..., "body": ...}.
    sends: list[dict[str, Any]] = field(default_factory=list)
    #: Accepted revokes: {"push_type": ..., "body": ...}.
    revokes: list[dict[str, Any]] = field(default_factory=list)


def _answer(code: str, status: int = 200, msg: str = "") -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg or MESSAGES[code],
                         "requestId": "17000000000000000001"}, status)


def _auth_code(state: HarmonyState, authorization: str) -> str:
    """"" for a JWT Push Kit accepts, else the business code it answers."""
    account = state.account
    bearer = authorization.removeprefix("Bearer ")
    try:
        header = jwt.get_unverified_header(bearer)
        if (header.get("alg"), header.get("typ"), header.get("kid")) != (
                "PS256", "JWT", account.key_id):
            return "80200001"
        claims = jwt.decode(bearer, account.private_key.public_key(), algorithms=["PS256"],
                            audience=TOKEN_URI,
                            options={"verify_exp": False, "verify_iat": False,
                                     "require": ["iss", "aud", "iat", "exp"]})
    except jwt.InvalidTokenError:
        return "80200001"
    if claims["iss"] != account.sub_account:
        return "80200001"
    if claims["exp"] - claims["iat"] > 86400:
        return "80300036"
    if claims["exp"] <= state.clock():
        return "80200005"
    state.jwts.append(bearer)
    return ""


def _payload_error(push_type: int, body: dict[str, Any]) -> str:
    """Why Push Kit would refuse the body's payload and options, or ""."""
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return "payload is required"
    if set(body.get("pushOptions", {})) - OPTION_FIELDS:
        return "unknown pushOptions field"
    ttl = body.get("pushOptions", {}).get("ttl", 0)
    if not isinstance(ttl, int) or not 0 <= ttl <= 1_296_000:
        return "ttl out of range"
    if push_type in (6, 10):
        return "" if set(payload) == {"extraData"} and isinstance(
            payload["extraData"], str) else "extraData must be the only payload field"
    if push_type != 0:
        return "scenario not supported by the fake"
    notification = payload.get("notification")
    if set(payload) != {"notification"} or not isinstance(notification, dict):
        return "notification is required"
    if set(notification) - NOTIFICATION_FIELDS:
        return "unknown notification field"
    if notification.get("category") not in CATEGORIES:
        return "category is invalid"
    if not all(isinstance(notification.get(k), str) for k in ("title", "body")):
        return "title and body are required"
    if not notification.get("image", "https://").startswith("https://"):
        return "image must be https"
    click = notification.get("clickAction", {})
    if click.get("actionType") not in (0, 1) or (
            click["actionType"] == 1 and not (click.get("action") or click.get("uri"))):
        return "clickAction is invalid"
    badge = notification.get("badge", {"addNum": 1})
    if len(badge) != 1 or not (1 <= badge.get("addNum", 1) <= 99 and badge.get("setNum", 0) >= 0):
        return "badge is invalid"
    return ""


def harmony_app(state: HarmonyState) -> Starlette:
    """The fake Push Kit as an ASGI app."""

    async def send(request: Request) -> Response:
        raw = await request.body()
        code = _auth_code(state, request.headers.get("authorization", ""))
        if state.refuse_next and not code:
            state.refuse_next -= 1
            code = "80200005"
        if code:
            return _answer(code, 401 if code != "80300036" else 400)
        if request.path_params["project"] != state.account.project_id:
            return _answer("80200001", 401)
        if state.statuses:
            status = state.statuses.pop(0)
            headers = {"retry-after": state.retry_after} if state.retry_after else None
            return Response(b"", status, headers=headers)
        if state.codes:
            return _answer(state.codes.pop(0), 400)
        push_type = request.headers.get("push-type", "")
        body = msgspec.json.decode(raw)
        if not push_type.isdigit() or int(push_type) not in PUSH_TYPES:
            return _answer("80100003", 400, "Illegal payload, push-type is invalid.")
        error = _payload_error(int(push_type), body)
        if error:
            return _answer("80100003", 400, f"Illegal payload, {error}.")
        tokens = body.get("target", {}).get("token", [])
        if not 1 <= len(tokens) <= 1000:
            return _answer("80300010", 400)
        if len(msgspec.json.encode({k: v for k, v in body.items() if k != "target"})) > 4096:
            return _answer("80300008", 400)
        state.sends.append({"push_type": push_type, "body": body,
                            "content_type": request.headers.get("content-type", "")})
        illegal: dict[str, list[str]] = {}
        for token in tokens:
            reason = state.invalid_tokens.get(
                token, "" if TOKEN_RE.match(token) else "tokenFormatError")
            if reason:
                illegal.setdefault(reason, []).append(token)
        failure = sum(len(t) for t in illegal.values())
        if not failure:
            return _answer("80000000")
        msg = msgspec.json.encode({"success": len(tokens) - failure, "failure": failure,
                                   "illegalTokens": illegal}).decode()
        if failure == len(tokens):
            return _answer("80300007", 400, msg)
        return _answer("80100000", 200, msg)

    async def revoke(request: Request) -> Response:
        raw = await request.body()
        code = _auth_code(state, request.headers.get("authorization", ""))
        if code:
            return _answer(code, 401 if code != "80300036" else 400)
        if request.path_params["client_id"] != state.account.client_id:
            return _answer("80200001", 401)
        push_type = request.headers.get("push-type", "")
        if push_type not in ("0", "2"):
            return _answer("80100003", 400, "Illegal payload, push-type is invalid.")
        body = msgspec.json.decode(raw)
        if (not isinstance(body, dict) or set(body) != {"notifyId", "token"}
                or not isinstance(body["notifyId"], int)):
            return _answer("80100003", 400, "Illegal payload, notifyId and token are required.")
        if not isinstance(body["token"], list) or not 1 <= len(body["token"]) <= 1000:
            return _answer("80300010", 400)
        state.revokes.append({"push_type": push_type, "body": body})
        return _answer("80000000")

    return Starlette(routes=[
        Route("/v3/{project}/messages:send", send, methods=["POST"]),
        Route("/v1/{client_id}/messages:revoke", revoke, methods=["POST"]),
    ])
