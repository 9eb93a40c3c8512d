"""Push tasks: their status, and stopping them."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Response

from proto.api import ApiCode
from proto.events import now_ms
from proto.limits import ID_RE
from proto.tasks import TaskState, TaskStatus
from router.api.auth import AppId
from router.api.bodies import respond
from router.api.context import Ctx
from router.api.errors import ApiError
from router.api.openapi import spec
from router.api.params import TaskId

log = structlog.get_logger()

routes = APIRouter(tags=["tasks"])

# Why a task cannot be stopped, by the state it is in.
_FINAL = {TaskState.DONE: (ApiCode.TASK_DONE, "is done"),
          TaskState.STOPPED: (ApiCode.TASK_STOPPED, "is stopped already")}


def _check(task_id: str) -> None:
    if not ID_RE.match(task_id):
        raise ApiError(400, ApiCode.BAD_TASK_ID, f"{task_id!r} is not a task id")
    structlog.contextvars.bind_contextvars(task_id=task_id)


def _known(task_id: str, status: TaskStatus | None) -> TaskStatus:
    if status is None:
        raise ApiError(404, ApiCode.UNKNOWN_TASK, f"no task {task_id!r} is known in this app")
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
    _check(task_id)
    return respond(_known(task_id, await ctx.store.task_status(app_id, task_id)))


@routes.post("/v1/tasks/{task_id}/stop",
             **spec.operation("Stop a queued or running push task; answers its status.",
                              returns=TaskStatus, refusals=(400, 404, 409)))
async def stop_task(task_id: TaskId, app_id: AppId, ctx: Ctx) -> Response:
    """Stop the task: no further shard of it is routed."""
    _check(task_id)
    _stoppable(_known(task_id, await ctx.store.task_status(app_id, task_id)))
    status = _known(task_id, await ctx.store.stop_task(app_id, task_id, now_ms()))
    if status.state is not TaskState.STOPPED:
        # It finished between the two reads.
        _stoppable(status)
    log.info("task stopped")
    return respond(status)
