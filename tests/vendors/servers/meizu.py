"""A fake Flyme push server: the two pushByPushId endpoints, checked as Flyme checks them.

It verifies the form encoding, exactly the parameters ``appId``, ``pushIds``, ``messageJson``
and ``sign``, the appId (else 110000), the MD5 signature over the sorted parameters and the app
secret (else 1006), 1 to 1000 pushIds, and the messageJson schema of each endpoint: for
notifications the notice bar text (1-32 / 1-100 characters), the click type with its target
(type 3 is refused), the offline validity (1-72 hours) and the notifyKey format; for
pass-through the content (at most 2000 bytes). Failures are code 1005. Tokens in
``token_codes`` are answered with their per-target code in ``value``; ``answers`` scripts the
next responses (a status, a Flyme code, headers), one per request.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PREFIX = "/garcia/api/server/push"
PARAMS = {"appId", "pushIds", "messageJson", "sign"}
NOTIFY_KEYS = {"noticeBarInfo", "noticeExpandInfo", "clickTypeInfo", "pushTimeInfo",
               "advanceInfo", "extra"}
DATA_KEYS = {"title", "content", "pushTimeInfo"}
CLICK_TARGETS = {1: "activity", 2: "url"}


@dataclass(frozen=True)
class Answer:
    """A scripted response: an HTTP status, or a Flyme code with its message."""

    status: int = 200
    code: str = "200"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Captured:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    form: dict[str, str]

    @property
    def message(self) -> dict[str, Any]:
        """The decoded messageJson."""
        return json.loads(self.form["messageJson"])


@dataclass
class MeizuState:
    """What the fake Flyme push platform knows and has seen."""

    app_id: str
    secret: str
    token_codes: dict[str, str] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    requests: list[Captured] = field(default_factory=list)


def make_app(app_id: str, secret: str) -> tuple[Starlette, MeizuState]:
    """The fake Flyme app for one appId and secret, and its state."""
    state = MeizuState(app_id, secret)

    async def push(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        state.requests.append(Captured(request.url.path, dict(request.headers), form))
        if state.answers:
            answer = state.answers.pop(0)
            if answer.status != 200:
                return Response("upstream trouble", answer.status, headers=answer.headers)
            return _answer(answer.code, "scripted", "", answer.headers)
        problem = _check_request(request, form, state)
        if problem:
            return _answer(*problem, "")
        data = request.url.path.endswith("/unvarnished/pushByPushId")
        problem = _check_message(json.loads(form["messageJson"]), data)
        if problem:
            return _answer("1005", problem, "")
        failed: dict[str, list[str]] = {}
        for push_id in form["pushIds"].split(","):
            if push_id in state.token_codes:
                failed.setdefault(state.token_codes[push_id], []).append(push_id)
        return _answer("200", "", failed)

    routes = [Route(f"{PREFIX}/{kind}/pushByPushId", push, methods=["POST"])
              for kind in ("varnished", "unvarnished")]
    return Starlette(routes=routes), state


def expected_sign(form: dict[str, str], secret: str) -> str:
    """The signature as the Flyme docs define it, written independently of the client."""
    pairs = sorted((k, v) for k, v in form.items() if k != "sign")
    return hashlib.md5(("".join(f"{k}={v}" for k, v in pairs) + secret).encode()).hexdigest()


def _check_request(request: Request, form: dict[str, str],
                   state: MeizuState) -> tuple[str, str] | None:
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        return "1005", "form encoding expected"
    if set(form) != PARAMS:
        return "110004", f"parameters must be {sorted(PARAMS)}"
    if form["appId"] != state.app_id:
        return "110000", "appId不合法"
    if form["sign"] != expected_sign(form, state.secret):
        return "1006", "签名认证失败"
    push_ids = form["pushIds"].split(",")
    if not 1 <= len(push_ids) <= 1000 or not all(push_ids):
        return "1005", "pushIds must hold 1 to 1000 ids"
    return None


def _check_message(message: dict[str, Any], data: bool) -> str:
    """What Flyme would refuse in ``message``, or ""."""
    valid = message.get("pushTimeInfo", {}).get("validTime", 24)
    if not (isinstance(valid, int) and 1 <= valid <= 72):
        return "validTime must be 1 to 72 hours"
    if data:
        content = message.get("content", "")
        if set(message) - DATA_KEYS or not content or len(content.encode()) > 2000:
            return "pass-through needs content of at most 2000 bytes"
        return "" if len(message.get("title", "")) <= 32 else "title too long"
    bar = message.get("noticeBarInfo", {})
    if set(message) - NOTIFY_KEYS or not (1 <= len(bar.get("title", "")) <= 32
                                          and 1 <= len(bar.get("content", "")) <= 100):
        return "noticeBarInfo needs a title of 1-32 and content of 1-100 characters"
    click = message.get("clickTypeInfo", {})
    click_type = click.get("clickType", 0)
    key = CLICK_TARGETS.get(click_type)
    target = click.get(key, "") if key else "(none needed)"
    if click_type not in (0, 1, 2) or not 1 <= len(target.encode()) <= 1000:
        return "clickType needs its target"
    expand = message.get("noticeExpandInfo", {})
    if expand.get("noticeExpandType", 0) == 1 and not expand.get("noticeExpandContent"):
        return "expandable text needs its content"
    key = message.get("advanceInfo", {}).get("notifyKey", "")
    return "" if re.fullmatch(r"[0-9A-Za-z_-]{0,8}", key) else "bad notifyKey"


def _answer(code: str, message: str, value: Any,
            headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "value": value, "redirect": "",
                         "msgId": uuid.uuid4().hex}, headers=headers)
