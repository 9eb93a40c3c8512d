"""Push tasks: their status, stopping them, and recalling them."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request, Response

from herald.task_store import RecallOutcome
from proto import topics
from proto.api import ApiCode, RecallBody
from proto.envelopes import RecallRequest, encode_recall_request
from proto.events import now_ms
from proto.tasks import TaskState, TaskStatus
from router.api.auth import AppId
from router.api.bodies import read_optional_body, respond
from router.api.context import Ctx
from router.api.errors import ApiError
from router.api.metrics import RECALLS
from router.api.openapi import spec
from router.api.params import TaskId, check_task_id

log = structlog.get_logger()

routes = APIRouter(tags=["tasks"])

# Why a task cannot be stopped, by the state it is in.
_FINAL = {TaskState.DONE: (ApiCode.TASK_DONE, "is done"),
          TaskState.STOPPED: (ApiCode.TASK_STOPPED, "is stopped already"),
          TaskState.RECALLED: (ApiCode.TASK_STOPPED, "is recalled, which stopped it")}


def unknown_task(task_id: str) -> ApiError:
    """The refusal of a task this app does not have."""
    return ApiError(404, ApiCode.UNKNOWN_TASK, f"no task {task_id!r} is known in this app")


def known(task_id: str, status: TaskStatus | None) -> TaskStatus:
    """``status``; 404 ``unknown_task`` if there is none."""
    if status is None:
        raise unknown_task(task_id)
    return status


def _stoppable(status: TaskStatus) -> None:
    if status.state in _FINAL:
        code, what = _FINAL[status.state]
        raise ApiError(409, code, f"task {status.task_id!r} {what}")


@routes.get("/v1/tasks/{task_id}",
            **spec.operation("A push task's state and progress.", returns=TaskStatus,
                             refusals=(400, 404)))
async def get_task(task_id: TaskId, app_id: AppId, ctx: Ctx) -> Response:
    """The task's status."""
    check_task_id(task_id)
    return respond(known(task_id, await ctx.store.task_status(app_id, task_id)))


@routes.post("/v1/tasks/{task_id}/stop",
             **spec.operation("Stop a queued or running push task; answers its status.",
                              returns=TaskStatus, refusals=(400, 404, 409)))
async def stop_task(task_id: TaskId, app_id: AppId, ctx: Ctx) -> Response:
    """Stop the task: no further shard of it is routed."""
    check_task_id(task_id)
    status = known(task_id, await ctx.store.task_status(app_id, task_id))
    _stoppable(status)
    if status.state is TaskState.SCHEDULED:
        # Its timer goes too, or it would stay listed among the scheduled pushes.
        await ctx.store.cancel_scheduled(app_id, task_id, now_ms())
    status = known(task_id, await ctx.store.stop_task(app_id, task_id, now_ms()))
    if status.state is not TaskState.STOPPED:
        # It finished (or was recalled) between the two reads.
        _stoppable(status)
    log.info("task stopped")
    return respond(status)


@routes.post("/v1/tasks/{task_id}/recall",
             **spec.operation("Recall a push task within HERALD_RECALL_WINDOW_S of its start: "
                              "stop it and take it back from the devices that got it, "
                              "optionally showing a replacement message; answers its status.",
                              body=RecallBody, body_required=False, returns=TaskStatus,
                              status=202, refusals=(400, 404, 409)))
async def recall_task(task_id: TaskId, request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Mark the task recalled, then publish the recall to ``push.recalls`` keyed by its task
    id for the router; the mark is taken back if the recall cannot be published."""
    check_task_id(task_id)
    body = await read_optional_body(request, RecallBody, RecallBody())
    window_s = ctx.settings.recall_window_s
    outcome = await ctx.store.recall_task(app_id, task_id, now_ms(), window_s * 1000)
    RECALLS.labels(outcome.value).inc()
    if outcome is RecallOutcome.UNKNOWN:
        raise unknown_task(task_id)
    if outcome is RecallOutcome.RECALLED_ALREADY:
        raise ApiError(409, ApiCode.RECALLED_ALREADY, f"task {task_id!r} is recalled already")
    if outcome is RecallOutcome.TOO_LATE:
        raise ApiError(409, ApiCode.RECALL_WINDOW_PASSED,
                       f"task {task_id!r} started more than the recall window of {window_s} s "
                       "ago")
    recall = RecallRequest(task_id=task_id, app_id=app_id, message=body.message)
    try:
        stored = await ctx.bus.publish(topics.RECALLS, encode_recall_request(recall),
                                       key=task_id.encode())
        await stored
    except BaseException:
        # Marked but never published, the task could not be recalled again: unmark it, and
        # the caller may retry. Cancellation too, since the mark is made either way.
        await ctx.store.forget_recall(app_id, task_id)
        raise
    log.info("task recalled", replacement=body.message is not None)
    return respond(known(task_id, await ctx.store.task_status(app_id, task_id)), 202)
