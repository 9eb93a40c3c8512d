"""Push statistics: a task's funnel and losses, one delivery's trace, the app's daily totals."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response

from proto.api import ApiCode, DailyStats, DayTotals
from proto.events import Stage
from proto.stats import Funnel, TaskStats, Trace
from router.api.auth import AppId
from router.api.bodies import respond
from router.api.context import Ctx
from router.api.errors import ApiError
from router.api.openapi import spec
from router.api.params import (
    FromDay,
    RegistrationId,
    TaskId,
    ToDay,
    check_registration_id,
    check_task_id,
    day,
)
from router.api.tasks import unknown_task

routes = APIRouter(tags=["statistics"])

#: The most days one call of the daily totals covers (a quarter).
MAX_DAYS = 92


@routes.get("/v1/tasks/{task_id}/stats",
            **spec.operation("A push task's funnel (targeted, sendable, sent, delivered, "
                             "clicked, with rates), per channel and per platform, and its "
                             "losses by reason and by channel.", returns=TaskStats,
                             refusals=(400, 404)))
async def task_stats(task_id: TaskId, app_id: AppId, ctx: Ctx) -> Response:
    """The task's statistics; all zero for a known task none of whose events is counted
    yet."""
    check_task_id(task_id)
    stats = await ctx.store.task_stats(app_id, task_id)
    if stats is None:
        if await ctx.store.task_status(app_id, task_id) is None:
            raise unknown_task(task_id)
        stats = TaskStats(task_id=task_id, app_id=app_id, funnel=Funnel())
    return respond(stats)


@routes.get("/v1/tasks/{task_id}/trace/{registration_id}",
            **spec.operation("Every hop of a push task's delivery to one device, oldest "
                             "first (kept HERALD_TRACE_TTL_S).", returns=Trace,
                             refusals=(400, 404)))
async def trace(task_id: TaskId, registration_id: RegistrationId, app_id: AppId,
                ctx: Ctx) -> Response:
    """The delivery's trace."""
    check_task_id(task_id)
    check_registration_id(registration_id)
    found = await ctx.store.trace(app_id, task_id, registration_id)
    if found is None:
        raise ApiError(404, ApiCode.UNKNOWN_TRACE,
                       f"no trace of task {task_id!r} to device {registration_id!r} is kept")
    return respond(found)


@routes.get("/v1/stats/daily",
            **spec.operation(f"The app's devices per stage on each day from `from` to `to` "
                             f"(UTC, both included, at most {MAX_DAYS} days).",
                             returns=DailyStats, refusals=(400,)))
async def daily_stats(from_: FromDay, to: ToDay, app_id: AppId, ctx: Ctx) -> Response:
    """Each day's totals, every stage zero on days without events."""
    first, last = day(from_, "from"), day(to, "to")
    if first > last:
        raise ApiError(400, ApiCode.BAD_RANGE, f"from={from_} is after to={to}")
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise ApiError(400, ApiCode.BAD_RANGE,
                       f"from={from_} to={to} is {count} days; at most {MAX_DAYS} are given")
    days = [(first + timedelta(days=i)).isoformat() for i in range(count)]
    found = await ctx.store.daily(app_id, days)
    zero = {stage.value: 0 for stage in Stage}
    return respond(DailyStats(days=[DayTotals(day=d, stages={**zero, **found.get(d, {})})
                                    for d in days]))
