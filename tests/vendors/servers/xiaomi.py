"""A fake MiPush server: ``POST /v3/message/regid`` checked as MiPush checks it.

It verifies the ``Authorization: key=<secret>`` header (else code 21301), the form encoding,
the package name (else 22022), 1 to 1000 regids, the fields a notification needs (title under
50 and description under 128 characters, a click effect with its URI), integer fields, and a
payload of at most 4 KB (else 10017 / 10018), and a receipt request as MiPush takes it: an
http(s) ``extra.callback``, a ``extra.callback.param`` of at most 64 bytes and an integer
``extra.callback.type``, the last two only with the first (else 10017). Known regids succeed;
those in ``invalid_tokens`` come back in ``data.bad_regids``, or as code 20301 when none is
valid. ``answers`` scripts the next responses (a status, a MiPush code, headers), one per
request.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FORM = "application/x-www-form-urlencoded"
NOTIFY_FIELDS = ("title", "description", "notify_type", "notify_id", "extra.notify_effect")
CLICK_URIS = {"2": "extra.intent_uri", "3": "extra.web_uri"}
INT_FIELDS = ("pass_through", "notify_type", "notify_id", "time_to_live", "extra.callback.type")
CALLBACK_PARAM_MAX = 64


@dataclass(frozen=True)
class Answer:
    """A scripted response: an HTTP status, or a MiPush error code in an HTTP 200 answer."""

    status: int = 200
    code: int = 0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Captured:
    """One request as the server received it."""

    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class XiaomiState:
    """What the fake MiPush knows and has seen."""

    secret: str
    package_name: str
    invalid_tokens: set[str] = field(default_factory=set)
    answers: list[Answer] = field(default_factory=list)
    requests: list[Captured] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=itertools.count)


def make_app(secret: str, package_name: str) -> tuple[Starlette, XiaomiState]:
    """The fake MiPush app for one app secret and package, and its state."""
    state = XiaomiState(secret, package_name)

    async def regid(request: Request) -> Response:
        body = (await request.body()).decode()
        form = dict(parse_qsl(body, keep_blank_values=True))
        state.requests.append(Captured(dict(request.headers), form))
        if state.answers:
            answer = state.answers.pop(0)
            if answer.status != 200:
                return Response("upstream trouble", answer.status, headers=answer.headers)
            return _error(answer.code, "scripted", answer.headers)
        if request.headers.get("authorization") != f"key={state.secret}":
            return _error(21301, "Invalid application secret.")
        if not request.headers.get("content-type", "").startswith(FORM):
            return _error(10007, "unsupported mime type")
        problem = _check(form, state.package_name)
        if problem:
            return _error(*problem)
        regids = form["registration_id"].split(",")
        bad = [r for r in regids if r in state.invalid_tokens]
        if len(bad) == len(regids):
            return _error(20301, "Invalid regid")
        data = {"id": f"scm{next(state.ids):08d}"}
        if bad:
            data["bad_regids"] = ",".join(bad)
        return JSONResponse({"result": "ok", "trace_id": "Xcm0001", "code": 0,
                             "description": "成功", "data": data,
                             "info": f"Received push messages for {len(regids)} REGID"})

    return Starlette(routes=[Route("/v3/message/regid", regid, methods=["POST"])]), state


def _check(form: dict[str, str], package_name: str) -> tuple[int, str] | None:
    """The first thing MiPush would refuse in ``form``, as (code, reason)."""
    if form.get("restricted_package_name") != package_name:
        return 22022, "Invalid package name"
    regids = form.get("registration_id", "").split(",")
    if not 1 <= len(regids) <= 1000 or not all(regids):
        return 10017, "registration_id must hold 1 to 1000 regids"
    if any(not form.get(name, "0").lstrip("-").isdigit() for name in INT_FIELDS):
        return 10017, "integer field expected"
    if len(form.get("payload", "").encode()) > 4096:
        return 10018, "payload too long"
    if problem := _callback_problem(form):
        return 10017, problem
    if form.get("pass_through") == "1":
        return None
    if form.get("pass_through") != "0" or not all(form.get(f) for f in NOTIFY_FIELDS):
        return 10016, "notification fields missing"
    if len(form["title"]) >= 50 or len(form["description"]) >= 128:
        return 10017, "title or description too long"
    effect = form["extra.notify_effect"]
    if effect not in ("1", "2", "3") or (effect in CLICK_URIS and not form.get(CLICK_URIS[effect])):
        return 10017, "notify_effect needs its uri"
    return None


def _callback_problem(form: dict[str, str]) -> str:
    url = form.get("extra.callback")
    if url is None:
        extras = {"extra.callback.param", "extra.callback.type"} & set(form)
        return f"{sorted(extras)} need extra.callback" if extras else ""
    if not url.startswith(("http://", "https://")):
        return "extra.callback must be an http(s) URL"
    if len(form.get("extra.callback.param", "").encode()) > CALLBACK_PARAM_MAX:
        return f"extra.callback.param is over {CALLBACK_PARAM_MAX} bytes"
    return ""


def _error(code: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"result": "error", "trace_id": "Xcm0002", "code": code,
                            "description": "error", "reason": reason}
    return JSONResponse(body, headers=headers)
