"""The bodies of the HTTP API (``herald api``): requests, responses and errors.

No I/O. The API decodes every request body into one of these structs with msgspec and publishes
their JSON Schema in its OpenAPI document, so each body is defined once, here. The structs
check form only (types, required fields, no unknown fields, the fixed id pattern); the limits
an operator can change (tags per account, accounts per call, ...) are checked by
``proto.audience`` and the store, so a body that breaks one gets that limit's own code.

The app a call acts for is never part of a body: it comes from the call's credentials. A push
body may name its ``app_id``, as a push request on ``push.requests`` does, but only to have it
checked against the credentials.

Errors: every refused call answers an ``ErrorBody``: ``code`` is an ``ApiCode``, a
``proto.audience.Code`` or a ``proto.templates.TemplateCode``, ``reason`` a sentence for people.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, TypeVar

import msgspec

from proto.audience import Code
from proto.callbacks import MAX_URL
from proto.envelopes import Id, PushContent, PushRequest
from proto.errors import DecodeError
from proto.events import Stage
from proto.limits import ACCOUNT_RE
from proto.message import Message
from proto.stats import Funnel
from proto.tasks import TaskStatus
from proto.templates import TemplateCode


class ApiCode(StrEnum):
    """Machine-readable reasons the API refuses a call, besides the audience codes (``Code``)."""

    #: Not JSON, truncated, wrong types, unknown or missing fields.
    INVALID_BODY = "invalid_body"
    #: A push body that does not decode to a valid push (its message, targets or lifetime).
    INVALID_PUSH = "invalid_push"
    #: A task id in the path that cannot be one.
    BAD_TASK_ID = "bad_task_id"
    #: A query parameter that is missing, not of its type, or out of its range.
    INVALID_QUERY = "invalid_query"
    #: A date that is not a YYYY-MM-DD day of the calendar.
    BAD_DATE = "bad_date"
    #: A time or date range that ends before it starts, or is longer than allowed.
    BAD_RANGE = "bad_range"
    #: A callback URL that is not an http(s) URL of a host, or is longer than allowed.
    BAD_URL = "bad_url"
    #: A callback stage that is not an event stage.
    BAD_STAGE = "bad_stage"
    #: A delivery policy body that does not decode to a valid policy (its times, zone, cap).
    INVALID_POLICY = "invalid_policy"
    #: A template body that does not decode to a valid template (its message, variables).
    INVALID_TEMPLATE = "invalid_template"
    #: A template id in the path that cannot be one.
    BAD_TEMPLATE_ID = "bad_template_id"
    #: No credentials, malformed ones, an unknown app or a wrong secret.
    UNAUTHORIZED = "unauthorized"
    #: Valid credentials that do not allow the call (app creation without the admin token).
    FORBIDDEN = "forbidden"
    #: A body that names another app than the credentials.
    WRONG_APP = "wrong_app"
    NOT_FOUND = "not_found"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_TASK = "unknown_task"
    UNKNOWN_TRACE = "unknown_trace"
    NO_CALLBACK = "no_callback"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    APP_EXISTS = "app_exists"
    TASK_EXISTS = "task_exists"
    TEMPLATE_EXISTS = "template_exists"
    #: The app keeps as many templates as it may (``proto.limits.MAX_TEMPLATES``).
    TOO_MANY_TEMPLATES = "too_many_templates"
    TASK_DONE = "task_done"
    TASK_STOPPED = "task_stopped"
    #: A scheduled push whose send time came: it is sent or being sent.
    TASK_SENT = "task_sent"
    RECALLED_ALREADY = "recalled_already"
    #: The task started longer ago than HERALD_RECALL_WINDOW_S.
    RECALL_WINDOW_PASSED = "recall_window_passed"
    BODY_TOO_LARGE = "body_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    #: Any other refusal of the HTTP layer.
    INVALID_REQUEST = "invalid_request"
    #: A fault of the server, never of the request; logged, without details for the caller.
    INTERNAL = "internal"


#: Every code an ``ErrorBody`` may carry.
ERROR_CODES = sorted({*ApiCode, *Code, *TemplateCode})

#: An account id. The pattern is shown in the document but not enforced by the decoder, so
#: that a bad account gets ``Code.BAD_ACCOUNT`` from the audience checks, as in every call.
Account = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": ACCOUNT_RE.pattern})]
#: Shown in the document, not enforced, for the same reason: an empty list gets ``Code.EMPTY``.
_SOME = msgspec.Meta(extra_json_schema={"minItems": 1})
AccountList = Annotated[list[Account], _SOME]
TextList = Annotated[list[str], _SOME]
_FILLED = msgspec.Meta(extra_json_schema={"minProperties": 1})

_BODY = {"forbid_unknown_fields": True, "frozen": True, "kw_only": True}
_REPLY = {"frozen": True, "kw_only": True}


class ErrorBody(msgspec.Struct, **_REPLY):
    """A refused call: why, for programs (``code``) and for people (``reason``)."""

    code: Annotated[str, msgspec.Meta(extra_json_schema={"enum": ERROR_CODES})]
    reason: str


# Apps


class CreateApp(msgspec.Struct, **_BODY):
    """Create an app (``POST /v1/apps``, admin token)."""

    app_id: Id


class AppCredentials(msgspec.Struct, **_REPLY):
    """A new app's credentials, shown this once: the client key ships inside the app, the
    server secret authenticates its backends."""

    app_id: str
    client_key: str
    server_secret: str


class AppInfo(msgspec.Struct, **_REPLY):
    """The authenticated app (never its secrets)."""

    app_id: str
    created_ms: int


# Devices and accounts


class DeviceInfo(msgspec.Struct, **_REPLY):
    """A registered device as the app may see it (never its vendor token). ``online``: a live
    gateway node holds its connection now."""

    registration_id: str
    platform: str
    vendor: str
    locale: str
    tz: str
    app_version: str
    account: str
    created_ms: int
    online: bool


class BindAccount(msgspec.Struct, **_BODY):
    """Bind a device to an account."""

    account: Account


class Accounts(msgspec.Struct, **_BODY):
    """Accounts of the app: to import, to clear of tags, or to query."""

    accounts: AccountList


class Imported(msgspec.Struct, **_REPLY):
    """How many of the imported accounts were new to the app."""

    new: int


class AccountDevices(msgspec.Struct, **_REPLY):
    """The devices bound to an account."""

    account: str
    registration_ids: list[str]


# Tags and attributes

#: Each account's tags, sorted.
AccountTags = dict[str, list[str]]
#: Each account's attribute values by name.
AccountAttributes = dict[Account, dict[str, str]]


class TagChange(msgspec.Struct, **_BODY):
    """Add tags to, or remove them from, every account listed."""

    accounts: AccountList
    tags: TextList


class AttributeNames(msgspec.Struct, **_BODY):
    """Attribute names: to declare, or those the app declared."""

    names: list[str]


class AttributeValues(msgspec.Struct, **_BODY):
    """Set ``values[account][name] = value`` for declared names."""

    values: Annotated[dict[Account, Annotated[dict[str, str], _FILLED]], _FILLED]


class AttributeRemoval(msgspec.Struct, **_BODY):
    """Remove the named attributes' values from every account listed."""

    accounts: AccountList
    names: TextList


# Pushes and tasks


class PushBody(PushContent, forbid_unknown_fields=True, kw_only=True, frozen=True,
               omit_defaults=True):
    """A push (``POST /v1/push``): ``PushContent`` with an optional ``task_id`` (the API makes
    one if it is absent) and an optional ``app_id``, which must be the authenticated app."""

    task_id: Id | None = None
    app_id: Id | None = None


class Accepted(msgspec.Struct, **_REPLY):
    """A push accepted and published: its task id, to ask about it or stop it."""

    task_id: str


class Scheduled(msgspec.Struct, **_REPLY):
    """A push waiting for its send time, as it was requested."""

    task_id: str
    send_at_ms: int
    push: PushRequest


class ScheduledList(msgspec.Struct, **_REPLY):
    """The app's scheduled pushes, soonest first (``GET /v1/schedules``)."""

    scheduled: list[Scheduled]


class RecallBody(msgspec.Struct, **_BODY):
    """Recall a task (``POST /v1/tasks/{task_id}/recall``; no body is ``{}``). With a
    ``message``, devices whose channel can overwrite a shown notification get it in place of
    the recalled one."""

    message: Message | None = None


# Statistics and push records


class PushRecord(TaskStatus, kw_only=True, frozen=True):
    """A push record (``GET /v1/tasks``): the task's status, with its funnel in all and per
    platform (zero until its first event is counted)."""

    funnel: Funnel
    # A field, not ``{}``: linters take this class for a plain one, not seeing ``Struct``.
    platforms: dict[str, Funnel] = msgspec.field(default_factory=dict)


class PushRecords(msgspec.Struct, **_REPLY):
    """Push records, newest first."""

    records: list[PushRecord]


class DayTotals(msgspec.Struct, **_REPLY):
    """The app's devices per stage on one day (UTC), over all its tasks."""

    day: str
    stages: dict[str, int]


class DailyStats(msgspec.Struct, **_REPLY):
    """The app's daily totals, one entry per day of the range asked, oldest first."""

    days: list[DayTotals]


# Callbacks

#: Shown in the document, checked by the API, so that a bad URL or stage gets its own code.
CallbackUrl = Annotated[str, msgspec.Meta(extra_json_schema={
    "pattern": r"^https?://[^\s/?#]+[^\s]*$", "maxLength": MAX_URL})]
StageName = Annotated[str, msgspec.Meta(extra_json_schema={"enum": [s.value for s in Stage]})]


class CallbackBody(msgspec.Struct, **_BODY):
    """Where the app wants its events posted (``PUT /v1/callback``), and which stages. Herald
    makes the secret that signs the posts."""

    url: CallbackUrl
    stages: Annotated[list[StageName], _SOME]


class CallbackInfo(msgspec.Struct, **_REPLY):
    """The app's callback config, without its secret."""

    url: str
    stages: list[Stage]


class CallbackConfigured(msgspec.Struct, **_REPLY):
    """The callback config as set, with the secret that signs its posts: shown this once."""

    url: str
    stages: list[Stage]
    secret: str


def push_request(body: PushBody, app_id: str, task_id: str) -> PushRequest:
    """The push request ``body`` stands for, for ``app_id`` under ``task_id``."""
    content = {name: getattr(body, name) for name in PushContent.__struct_fields__}
    return PushRequest(**content, app_id=app_id, task_id=task_id)


T = TypeVar("T")

_decoders: dict[type, msgspec.json.Decoder] = {}


def decode_body(data: bytes, kind: type[T]) -> T:
    """Decode a JSON request body into ``kind``; ``DecodeError.reason`` names the first bad
    field by its path (``$.tags[3]``)."""
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(str(exc)) from None
