"""A fake OPPO PUSH server: the auth and batch unicast endpoints, checked as OPPO checks them.

``fake_oppo(app_key, master_secret, clock)`` returns the Starlette app and its ``OppoState``.
The auth endpoint checks the sign (SHA-256 of app key, timestamp, master secret) and that the
timestamp is within 10 minutes of ``clock``, and issues tokens that live 24 hours by ``clock``.
The batch endpoint checks the form, the token, the message schema and OPPO's limits, and
answers per registration id; a receipt request must be an http(s) ``call_back_url`` of at most
200 characters with a ``call_back_parameter`` of at most 50. Tell it how to answer through the
state: ``invalid_tokens`` (error 10000 for those ids), ``codes`` (the next batch answers, one
code each: 11, 33, -1...), ``statuses`` (the next HTTP statuses of either endpoint, with
``retry_after`` on a 429), ``expire_tokens()`` (the issued tokens stop working) and
``refuse_tokens`` (every token, even a new one, gets code 11).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN_LIFETIME_S = 24 * 3600
TIMESTAMP_WINDOW_S = 600
MESSAGES = {-2: "Service in Flow Control", -1: "Service Currently Unavailable", 0: "Success",
            11: "Invalid AuthToken", 13: "App Call Limited", 14: "Invalid App Key",
            15: "Missing App Key", 16: "Invalid Signature", 17: "Missing Signature",
            18: "Missing Timestamp", 19: "Invalid Timestamp", 29: "Missing Auth Token",
            33: "The number of messages exceeds the daily limit",
            40: "Missing Required Arguments", 41: "Invalid Arguments",
            55: "App Call Frequency Limit"}
MESSAGE_KEYS = {"target_type", "target_value", "notification", "verify_registration_id"}
NOTIFICATION_KEYS = {
    "app_message_id", "style", "big_picture_id", "small_picture_id", "title", "sub_title",
    "content", "click_action_type", "click_action_activity", "click_action_url",
    "action_parameters", "show_time_type", "show_start_time", "show_end_time", "off_line",
    "off_line_ttl", "push_time_type", "push_start_time", "time_zone", "fix_speed",
    "fix_speed_rate", "network_type", "call_back_url", "call_back_parameter", "channel_id",
    "show_ttl", "notify_id", "category", "notify_level"}
CONTENT_MAX_BY_STYLE = {1: 200, 2: 128, 3: 50}
CALL_BACK_URL_MAX, CALL_BACK_PARAMETER_MAX = 200, 50


@dataclass
class Batch:
    """One batch unicast request as the server saw it."""

    headers: dict[str, str]
    form: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OppoState:
    """The fake's configuration, what it answers next, and what it received."""

    app_key: str
    master_secret: str
    clock: Callable[[], float]
    tokens: dict[str, float] = field(default_factory=dict)
    auth_requests: list[dict[str, str]] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    invalid_tokens: set[str] = field(default_factory=set)
    codes: list[int] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    retry_after: str = ""
    refuse_tokens: bool = False

    def expire_tokens(self) -> None:
        """Make every token issued so far invalid, as at the end of its 24 hours."""
        self.tokens.clear()


def forced_status(statuses: list[int], retry_after: str) -> Response | None:
    """The next HTTP status a test forced (taken off ``statuses``), with its Retry-After."""
    if not statuses:
        return None
    headers = {"retry-after": retry_after} if retry_after else {}
    return Response("Service Unavailable", status_code=statuses.pop(0), headers=headers)


def _answer(code: int, data: Any = None, message: str = "") -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message or MESSAGES.get(code, "error")}
    if data is not None:
        body["data"] = data
    return JSONResponse(body)


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form, or None when the request is not one (or repeats a field)."""
    if request.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
        return None
    fields = parse_qs((await request.body()).decode(), keep_blank_values=True)
    if any(len(values) != 1 for values in fields.values()):
        return None
    return {name: values[0] for name, values in fields.items()}


def _notification_problem(note: Any) -> str:
    if not isinstance(note, dict):
        return "notification is not an object"
    if unknown := set(note) - NOTIFICATION_KEYS:
        return f"unknown notification fields {sorted(unknown)}"
    style = note.get("style", 1)
    title, content = note.get("title"), note.get("content")
    if not isinstance(title, str) or not 0 < len(title) <= 50:
        return "title must have 1 to 50 characters"
    if style not in CONTENT_MAX_BY_STYLE:
        return "style must be 1, 2 or 3"
    if not isinstance(content, str) or not 0 < len(content) <= CONTENT_MAX_BY_STYLE[style]:
        return f"content must have 1 to {CONTENT_MAX_BY_STYLE[style]} characters"
    click = note.get("click_action_type", 0)
    if click not in (0, 1, 2, 4, 5):
        return "click_action_type must be 0, 1, 2, 4 or 5"
    if click in (1, 4) and not note.get("click_action_activity"):
        return "click_action_activity is required"
    url = note.get("click_action_url")
    if click in (2, 5) and not (isinstance(url, str) and 0 < len(url) <= 2000):
        return "click_action_url is required (at most 2000 characters)"
    parameters = note.get("action_parameters", "{}")
    if not isinstance(parameters, str) or len(parameters) > 4000:
        return "action_parameters must be a string of at most 4000 characters"
    try:
        if not isinstance(json.loads(parameters), dict):
            return "action_parameters must be a JSON object"
    except json.JSONDecodeError:
        return "action_parameters must be JSON"
    ttl = note.get("off_line_ttl", 0)
    if not isinstance(note.get("off_line", True), bool) or not (
            isinstance(ttl, int) and 0 <= ttl <= 864000):
        return "off_line must be a boolean, off_line_ttl 0 to 864000 seconds"
    level = note.get("notify_level")
    if level is not None and (level not in (1, 2, 16) or "category" not in note):
        return "notify_level must be 1, 2 or 16 and needs a category"
    return _call_back_problem(note)


def _call_back_problem(note: dict[str, Any]) -> str:
    url, parameter = note.get("call_back_url"), note.get("call_back_parameter")
    if url is None:
        return "call_back_parameter needs call_back_url" if parameter is not None else ""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(
            url) > CALL_BACK_URL_MAX:
        return f"call_back_url must be an http(s) URL of at most {CALL_BACK_URL_MAX} characters"
    if parameter is not None and (not isinstance(parameter, str)
                                  or len(parameter) > CALL_BACK_PARAMETER_MAX):
        return f"call_back_parameter must have at most {CALL_BACK_PARAMETER_MAX} characters"
    return ""


def _message_problem(message: Any) -> str:
    if not isinstance(message, dict) or set(message) - MESSAGE_KEYS:
        return "a message has unknown fields"
    if message.get("target_type") != 2:
        return "target_type must be 2 (registration id)"
    if not isinstance(message.get("target_value"), str) or not message["target_value"]:
        return "target_value must be a registration id"
    return _notification_problem(message.get("notification"))


def fake_oppo(app_key: str, master_secret: str,
              clock: Callable[[], float]) -> tuple[Starlette, OppoState]:
    """The fake server's ASGI app and the state that steers and records it."""
    state = OppoState(app_key, master_secret, clock)

    async def auth(request: Request) -> Response:
        if forced := forced_status(state.statuses, state.retry_after):
            return forced
        form = await _form(request)
        if form is None:
            return _answer(41)
        state.auth_requests.append(form)
        app_key, timestamp, signature = (form.get(name, "") for name in
                                         ("app_key", "timestamp", "sign"))
        missing = [code for code, value in ((15, app_key), (17, signature), (18, timestamp))
                   if not value]
        if missing:
            return _answer(missing[0])
        if app_key != state.app_key:
            return _answer(14)
        if not timestamp.isdigit() or abs(int(timestamp) / 1000 - clock()) > TIMESTAMP_WINDOW_S:
            return _answer(19)
        expected = hashlib.sha256(f"{app_key}{timestamp}{state.master_secret}".encode())
        if signature != expected.hexdigest():
            return _answer(16)
        token = uuid.uuid4().hex
        state.tokens[token] = clock() + TOKEN_LIFETIME_S
        return _answer(0, {"auth_token": token, "create_time": int(clock() * 1000)})

    async def unicast_batch(request: Request) -> Response:
        if forced := forced_status(state.statuses, state.retry_after):
            return forced
        form = await _form(request)
        if form is None:
            return _answer(41)
        batch = Batch(dict(request.headers), form)
        state.batches.append(batch)
        token = form.get("auth_token", "")
        if not token:
            return _answer(29)
        if (state.refuse_tokens or request.headers.get("auth_token", token) != token
                or state.tokens.get(token, 0) <= clock()):
            return _answer(11)
        if state.codes:
            return _answer(state.codes.pop(0))
        try:
            batch.messages = json.loads(form.get("messages", ""))
        except json.JSONDecodeError:
            return _answer(41)
        if not isinstance(batch.messages, list) or not 0 < len(batch.messages) <= 1000:
            return _answer(41)
        if problem := next(filter(None, map(_message_problem, batch.messages)), ""):
            return _answer(41, message=problem)
        return _answer(0, [_result(message["target_value"]) for message in batch.messages])

    def _result(registration_id: str) -> dict[str, Any]:
        result = {"messageId": f"{state.app_key}-1-1-{uuid.uuid4().hex}",
                  "registrationId": registration_id}
        if registration_id in state.invalid_tokens:
            result |= {"errorCode": 10000, "errorMessage": "Invalid Registration_id"}
        return result

    app = Starlette(routes=[
        Route("/server/v1/auth", auth, methods=["POST"]),
        Route("/server/v1/message/notification/unicast_batch", unicast_batch, methods=["POST"]),
    ])
    return app, state
