"""Push records: the app's recent tasks, newest first, each with its status and funnels."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated

import msgspec
from fastapi import APIRouter, Query, Response

from herald.store import Store
from proto.api import ApiCode, PushRecord, PushRecords
from proto.events import now_ms
from proto.stats import Funnel, TaskStats
from proto.tasks import TaskStatus
from router.api.auth import AppId
from router.api.bodies import respond
from router.api.context import Ctx
from router.api.errors import ApiError
from router.api.openapi import spec
from router.api.params import AudienceFilter, SinceMs, StateFilter, UntilMs

routes = APIRouter(tags=["tasks"])

#: The most records one call answers.
MAX_RECORDS = 500
#: With a filter, this many of the newest tasks in the window are looked at: a bound on the
#: work of one call, whatever the filter matches.
SCAN = 5000
#: Tasks whose statistics are read at once: a few of the store's connections, not all.
_PARALLEL = 16
_WEEK_MS = 7 * 24 * 3600 * 1000

Limit = Annotated[int, Query(ge=1, le=MAX_RECORDS, description="The most records to answer.")]


async def _stats(store: Store, app_id: str,
                 tasks: Sequence[TaskStatus]) -> list[TaskStats | None]:
    found: list[TaskStats | None] = []
    for start in range(0, len(tasks), _PARALLEL):
        found += await asyncio.gather(*(store.task_stats(app_id, task.task_id)
                                        for task in tasks[start:start + _PARALLEL]))
    return found


def _record(status: TaskStatus, stats: TaskStats | None) -> PushRecord:
    return PushRecord(**msgspec.structs.asdict(status),
                      funnel=stats.funnel if stats is not None else Funnel(),
                      platforms=stats.platforms if stats is not None else {})


@routes.get("/v1/tasks",
            **spec.operation(f"Push records: the app's tasks accepted from since_ms to "
                             f"until_ms (default: the last 7 days), newest first, each with its "
                             f"status and its funnel in all and per platform. With audience or "
                             f"state, the newest {SCAN} tasks of the range are filtered.",
                             returns=PushRecords, refusals=(400,)))
async def list_records(app_id: AppId, ctx: Ctx, since_ms: SinceMs = None,
                       until_ms: UntilMs = None, audience: AudienceFilter = None,
                       state: StateFilter = None, limit: Limit = 100) -> Response:
    """The app's push records in the range, filtered, at most ``limit``."""
    until = now_ms() if until_ms is None else until_ms
    since = max(0, until - _WEEK_MS) if since_ms is None else since_ms
    if since > until:
        raise ApiError(400, ApiCode.BAD_RANGE, f"since_ms={since} is after until_ms={until}")
    filtered = audience is not None or state is not None
    tasks = await ctx.store.list_tasks(app_id, since, until, SCAN if filtered else limit)
    chosen = [task for task in tasks
              if (audience is None or task.audience == audience)
              and (state is None or task.state is state)][:limit]
    stats = await _stats(ctx.store, app_id, chosen)
    return respond(PushRecords(records=[_record(task, found)
                                        for task, found in zip(chosen, stats, strict=True)]))
