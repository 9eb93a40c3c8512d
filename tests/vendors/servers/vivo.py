"""A fake vivo push server: auth, single push and list push, checked as vivo checks them.

``fake_vivo(app_id, app_key, app_secret, clock)`` returns the Starlette app and its
``VivoState``. ``/message/auth`` checks the MD5 sign and that the timestamp is within ten
minutes of ``clock``, and issues tokens that live a day by ``clock``. ``/message/send``,
``/message/saveListPayload`` and ``/message/pushToList`` check the ``authToken`` header, the
``appId`` in the body, the message schema and vivo's limits (``extra`` holds only ``callback``,
an http(s) URL, ``callback.param`` and ``callback.id``). Tell it how to answer through the
state: ``invalid_users`` (regId to the invalid-user status reported for it), ``results`` (the
next results of the push endpoints, one each: 10070, 10072..., or 0 to answer as usual),
``statuses`` (the next HTTP statuses of any endpoint, with ``retry_after`` on a 429),
``expire_before`` (paths whose next request finds every token expired) and ``refuse_tokens``
(every token gets 10000).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.vendors.servers.oppo import forced_status

TOKEN_LIFETIME_S = 24 * 3600
TIMESTAMP_WINDOW_S = 600
AUTH_FAILED = 10000
APP_MISMATCH = 10094
INVALID_REG_ID = 10302
#: vivo refuses a bad auth request with a code from 10200 up; the fake uses this one for all.
AUTH_REFUSED = 10200
#: Stands for vivo's codes for a malformed message (which one matters to no client).
INVALID_PARAMETER = 10050
MESSAGE_KEYS = {"appId", "notifyType", "title", "content", "timeToLive", "skipType",
                "skipContent", "networkType", "classification", "category", "clientCustomMap",
                "extra", "requestId", "pushMode", "notifyId", "foregroundShow", "sendOnline"}
LIST_KEYS = {"appId", "regIds", "taskId", "requestId", "pushMode"}
CATEGORIES = {"IM", "ACCOUNT", "TODO", "DEVICE_REMINDER", "ORDER", "SUBSCRIPTION", "NEWS",
              "CONTENT", "MARKETING", "SOCIAL"}
REG_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
EXTRA_KEYS = {"callback", "callback.param", "callback.id"}
#: As one public client of the API states it; Herald keeps its tags within 64.
CALLBACK_PARAM_MAX = 192


@dataclass
class Call:
    """One request to a push endpoint as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class VivoState:
    """The fake's configuration, what it answers next, and what it received."""

    app_id: int
    app_key: str
    app_secret: str
    clock: Callable[[], float]
    tokens: dict[str, float] = field(default_factory=dict)
    auth_requests: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    invalid_users: dict[str, int] = field(default_factory=dict)
    results: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    retry_after: str = ""
    expire_before: set[str] = field(default_factory=set)
    refuse_tokens: bool = False

    def paths(self) -> list[str]:
        """The paths of the push requests received, in order."""
        return [c.path for c in self.calls]


def _answer(result: int, desc: str = "", **extra: Any) -> JSONResponse:
    return JSONResponse({"result": result, "desc": desc or ("请求成功" if not result else "error"),
                         **extra})


def _text_problem(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        return f"{name} must have 1 to {limit} characters"
    return ""


def _message_problem(body: dict[str, Any], *, single: bool) -> str:
    if unknown := set(body) - MESSAGE_KEYS - ({"regId"} if single else set()):
        return f"unknown fields {sorted(unknown)}"
    problem = (_text_problem(body, "title", 40) or _text_problem(body, "content", 100)
               or _text_problem(body, "requestId", 64))
    if problem:
        return problem
    if body.get("notifyType") not in (1, 2, 3, 4):
        return "notifyType must be 1 to 4"
    skip = body.get("skipType")
    if skip not in (1, 2, 3, 4):
        return "skipType must be 1 to 4"
    if skip in (2, 3, 4) and (problem := _text_problem(body, "skipContent", 2048)):
        return problem
    ttl = body.get("timeToLive", 86400)
    if not isinstance(ttl, int) or not 60 <= ttl <= 86400:
        return "timeToLive must be 60 to 86400 seconds"
    if body.get("networkType", -1) not in (-1, 1) or body.get("pushMode", 0) not in (0, 1):
        return "networkType must be -1 or 1, pushMode 0 or 1"
    if body.get("classification", 0) not in (0, 1):
        return "classification must be 0 or 1"
    if "category" in body and body["category"] not in CATEGORIES:
        return "unknown category"
    custom = body.get("clientCustomMap", {})
    if not isinstance(custom, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in custom.items()):
        return "clientCustomMap must map strings to strings"
    if len(custom) > 10 or sum(len(k) + len(v) for k, v in custom.items()) > 1024:
        return "clientCustomMap over 10 keys or 1024 characters"
    if not isinstance(body.get("notifyId", 1), int):
        return "notifyId must be an integer"
    return _extra_problem(body.get("extra", {}))


def _extra_problem(extra: Any) -> str:
    if not isinstance(extra, dict) or set(extra) - EXTRA_KEYS or not all(
            isinstance(v, str) for v in extra.values()):
        return f"extra must map some of {sorted(EXTRA_KEYS)} to strings"
    url = extra.get("callback")
    if url is not None and not url.startswith(("http://", "https://")):
        return "extra.callback must be an http(s) URL"
    if len(extra.get("callback.param", "")) > CALLBACK_PARAM_MAX:
        return f"extra.callback.param is over {CALLBACK_PARAM_MAX} characters"
    return ""


def fake_vivo(app_id: int, app_key: str, app_secret: str,
              clock: Callable[[], float]) -> tuple[Starlette, VivoState]:
    """The fake server's ASGI app and the state that steers and records it."""
    state = VivoState(app_id, app_key, app_secret, clock)

    async def json_body(request: Request) -> dict[str, Any] | None:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return None
        body = await request.json()
        return body if isinstance(body, dict) else None

    async def auth(request: Request) -> Response:
        if forced := forced_status(state.statuses, state.retry_after):
            return forced
        body = await json_body(request)
        if body is None:
            return _answer(AUTH_REFUSED, "request body must be JSON")
        state.auth_requests.append(body)
        timestamp = body.get("timestamp")
        if body.get("appId") != state.app_id or body.get("appKey") != state.app_key:
            return _answer(AUTH_REFUSED, "appId or appKey is not valid")
        if not isinstance(timestamp, int) or abs(timestamp / 1000 - clock()) > TIMESTAMP_WINDOW_S:
            return _answer(AUTH_REFUSED, "timestamp is not valid")
        text = f"{state.app_id}{state.app_key}{timestamp}{state.app_secret}"
        if body.get("sign") != hashlib.md5(text.encode()).hexdigest():
            return _answer(AUTH_REFUSED, "sign is not valid")
        token = uuid.uuid4().hex
        state.tokens[token] = clock() + TOKEN_LIFETIME_S
        return _answer(0, authToken=token)

    async def pushed(request: Request) -> tuple[Call, Response | None]:
        """Record a push request; the refusal common to all push endpoints, if any."""
        body = await json_body(request)
        call = Call(request.url.path, dict(request.headers), body or {})
        state.calls.append(call)
        if call.path in state.expire_before:
            state.expire_before.discard(call.path)
            state.tokens.clear()
        if forced := forced_status(state.statuses, state.retry_after):
            return call, forced
        if body is None:
            return call, _answer(INVALID_PARAMETER, "request body must be JSON")
        token = request.headers.get("authToken", "")
        if state.refuse_tokens or state.tokens.get(token, 0) <= clock():
            return call, _answer(AUTH_FAILED, "authToken is not valid")
        if body.get("appId") != state.app_id:
            return call, _answer(APP_MISMATCH, "appId does not match the authToken")
        if state.results and (result := state.results.pop(0)):
            return call, _answer(result)
        return call, None

    def invalid_user(reg_id: str) -> dict[str, Any] | None:
        status = 1 if not REG_ID.fullmatch(reg_id) else state.invalid_users.get(reg_id)
        return None if status is None else {"status": status, "userid": reg_id}

    async def send(request: Request) -> Response:
        call, refusal = await pushed(request)
        if refusal:
            return refusal
        if problem := _message_problem(call.body, single=True):
            return _answer(INVALID_PARAMETER, problem)
        reg_id = call.body.get("regId")
        if not isinstance(reg_id, str) or not REG_ID.fullmatch(reg_id):
            return _answer(INVALID_REG_ID, "regId不合法")
        extra = {"invalidUser": user} if (user := invalid_user(reg_id)) else {}
        return _answer(0, taskId=uuid.uuid4().hex, **extra)

    async def save_list_payload(request: Request) -> Response:
        call, refusal = await pushed(request)
        if refusal:
            return refusal
        if problem := _message_problem(call.body, single=False):
            return _answer(INVALID_PARAMETER, problem)
        task_id = uuid.uuid4().hex
        state.payloads[task_id] = call.body
        return _answer(0, taskId=task_id)

    async def push_to_list(request: Request) -> Response:
        call, refusal = await pushed(request)
        if refusal:
            return refusal
        body = call.body
        reg_ids = body.get("regIds")
        if set(body) - LIST_KEYS or _text_problem(body, "requestId", 64):
            return _answer(INVALID_PARAMETER, "unknown fields or bad requestId")
        if (not isinstance(reg_ids, list) or not 2 <= len(reg_ids) <= 1000
                or len(set(reg_ids)) != len(reg_ids)
                or not all(isinstance(r, str) for r in reg_ids)):
            return _answer(INVALID_PARAMETER, "regIds must be 2 to 1000 distinct ids")
        if body.get("taskId") not in state.payloads:
            return _answer(INVALID_PARAMETER, "taskId is not a saved payload")
        users = [user for reg_id in reg_ids if (user := invalid_user(reg_id))]
        return _answer(0, requestId=body["requestId"], invalidUsers=users)

    app = Starlette(routes=[
        Route("/message/auth", auth, methods=["POST"]),
        Route("/message/send", send, methods=["POST"]),
        Route("/message/saveListPayload", save_list_payload, methods=["POST"]),
        Route("/message/pushToList", push_to_list, methods=["POST"]),
    ])
    return app, state
