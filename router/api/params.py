"""Path and query parameters.

Path ids' patterns are shown in the document, not enforced by FastAPI, so that a malformed id
gets the API's own code (``bad_registration_id``, ``bad_account``, ``bad_task_id``) from the
checks here. Query parameters are checked by FastAPI against what the document shows, and
refused as ``invalid_query``; dates are checked here, since the parser FastAPI uses takes
``0`` and datetimes for dates.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

import structlog
from fastapi import Path, Query

from proto.api import ApiCode
from proto.audience import AudienceError, AudienceKind, Code
from proto.limits import ACCOUNT_RE, ID_PATTERN, ID_RE
from proto.tasks import TaskState
from router.api.errors import ApiError

#: Milliseconds since the epoch that a client can hold exactly (JavaScript numbers).
_MAX_MS = 2**53
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")

RegistrationId = Annotated[str, Path(description="A device's registration id.",
                                     json_schema_extra={"pattern": ID_PATTERN})]
AccountId = Annotated[str, Path(description="An account id of the app.",
                                json_schema_extra={"pattern": ACCOUNT_RE.pattern})]
TaskId = Annotated[str, Path(description="A push task's id.",
                             json_schema_extra={"pattern": ID_PATTERN})]

SinceMs = Annotated[int | None, Query(ge=0, le=_MAX_MS, description=(
    "Earliest time (ms since the epoch) a task was accepted; default until_ms - 7 days."))]
UntilMs = Annotated[int | None, Query(ge=0, le=_MAX_MS, description=(
    "Latest time (ms since the epoch) a task was accepted; default now."))]
AudienceFilter = Annotated[AudienceKind | None, Query(
    description="Only tasks with this kind of audience.")]
StateFilter = Annotated[TaskState | None, Query(description="Only tasks in this state.")]
FromDay = Annotated[str, Query(alias="from", description="The first day, YYYY-MM-DD (UTC).",
                               json_schema_extra={"format": "date"})]
ToDay = Annotated[str, Query(description="The last day, YYYY-MM-DD (UTC), not before `from`.",
                             json_schema_extra={"format": "date"})]


def check_task_id(task_id: str) -> None:
    """400 ``bad_task_id`` unless ``task_id`` can be a task id; the call's log lines carry
    it from here on."""
    if not ID_RE.match(task_id):
        raise ApiError(400, ApiCode.BAD_TASK_ID, f"{task_id!r} is not a task id")
    structlog.contextvars.bind_contextvars(task_id=task_id)


def check_registration_id(registration_id: str) -> None:
    """400 ``bad_registration_id`` unless ``registration_id`` can be one."""
    if not ID_RE.match(registration_id):
        raise AudienceError(Code.BAD_REGISTRATION_ID,
                            f"{registration_id!r} is not a registration id")


def day(text: str, name: str) -> date:
    """The day ``text`` names (YYYY-MM-DD); 400 ``bad_date`` if it names none."""
    try:
        if _DAY_RE.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ApiError(400, ApiCode.BAD_DATE, f"{name}={text!r} is not a day (YYYY-MM-DD)")
