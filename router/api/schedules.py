"""Scheduled pushes: listing them and cancelling them before their send time.

A push with ``send_at_ms`` goes to ``push.requests`` like any other; the router keeps it as a
timer until its send time (``router.timers``), and lists it here meanwhile.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Response

from herald.timer_store import CancelOutcome
from proto.api import ApiCode, Scheduled, ScheduledList
from proto.envelopes import decode_push_request
from proto.errors import DecodeError
from proto.events import now_ms
from proto.tasks import TaskStatus
from router.api.auth import AppId
from router.api.bodies import respond
from router.api.context import Ctx
from router.api.errors import ApiError
from router.api.openapi import spec
from router.api.params import TaskId, check_task_id
from router.api.tasks import known, unknown_task

log = structlog.get_logger()

routes = APIRouter(tags=["tasks"])

#: The most scheduled pushes one call lists.
MAX_LISTED = 1000

Limit = Annotated[int, Query(ge=1, le=MAX_LISTED, description="The most pushes to answer.")]


@routes.get("/v1/schedules",
            **spec.operation("The app's scheduled pushes, soonest first.",
                             returns=ScheduledList, refusals=(400,)))
async def list_scheduled(app_id: AppId, ctx: Ctx, limit: Limit = 100) -> Response:
    """The app's pushes waiting for their send time."""
    listed = []
    for entry in await ctx.store.scheduled_pushes(app_id, limit):
        try:
            push = decode_push_request(entry.request)
        except DecodeError:
            # The router validated it before keeping it; a record that no longer decodes
            # (an older format) is left out rather than failing the whole list.
            log.warning("scheduled push unreadable", task_id=entry.task_id)
            continue
        listed.append(Scheduled(task_id=entry.task_id, send_at_ms=entry.send_at_ms, push=push))
    return respond(ScheduledList(scheduled=listed))


@routes.delete("/v1/schedules/{task_id}",
               **spec.operation("Cancel a scheduled push before its send time; answers its "
                                "status (stopped).", returns=TaskStatus,
                                refusals=(400, 404, 409)))
async def cancel_scheduled(task_id: TaskId, app_id: AppId, ctx: Ctx) -> Response:
    """Cancel the push: its timer goes, its task is stopped."""
    check_task_id(task_id)
    outcome = await ctx.store.cancel_scheduled(app_id, task_id, now_ms())
    if outcome is CancelOutcome.UNKNOWN:
        raise unknown_task(task_id)
    if outcome is CancelOutcome.SENT:
        raise ApiError(409, ApiCode.TASK_SENT, f"task {task_id!r} reached its send time")
    if outcome is CancelOutcome.STOPPED:
        raise ApiError(409, ApiCode.TASK_STOPPED, f"task {task_id!r} is stopped already")
    log.info("scheduled push cancelled")
    return respond(known(task_id, await ctx.store.task_status(app_id, task_id)))
