"""Pushes: checked in full, then published to ``push.requests`` for the router, as a backend
would publish them, and recorded as queued tasks."""

from __future__ import annotations

import uuid

import structlog
from fastapi import APIRouter, Request, Response

from herald.store import Store
from proto import topics
from proto.api import Accepted, ApiCode, PushBody, push_request
from proto.audience import Audience, AudienceLimits, check_declared, validate_audience
from proto.envelopes import encode_push_request
from proto.events import now_ms
from proto.limits import IDEMPOTENCY_TTL_S
from router.api.auth import AppId
from router.api.bodies import read_body, respond
from router.api.context import Ctx
from router.api.errors import ApiError
from router.api.metrics import PUSHES
from router.api.openapi import spec
from router.api.templates import filled

log = structlog.get_logger()

routes = APIRouter(tags=["pushes"])


async def check_audience(store: Store, app_id: str, body: PushBody,
                         limits: AudienceLimits) -> None:
    """Raise ``AudienceError`` unless the push's devices are named within every limit, and
    every attribute its audience names is declared. ``registration_ids`` is the shorthand of
    an audience of registration ids, and held to the same limits."""
    audience = body.audience or Audience(registration_ids=list(body.registration_ids))
    validate_audience(audience, limits)
    if audience.attributes:
        check_declared((p.name for p in (*audience.attributes.and_, *audience.attributes.or_)),
                       await store.attributes(app_id))


@routes.post("/v1/push",
             **spec.operation("Push a message, or a template filled in with its variables; "
                              "answers the task id to follow it by.",
                              body=PushBody, returns=Accepted, status=202,
                              refusals=(403, 404, 409)))
async def push(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Accept a push: validate it, publish it keyed by its task id, record the task."""
    body = await read_body(request, PushBody, ApiCode.INVALID_PUSH)
    if body.app_id is not None and body.app_id != app_id:
        raise ApiError(403, ApiCode.WRONG_APP,
                       f"the body names app {body.app_id!r}, the credentials another app")
    # Filled in before anything is claimed or published: a template that does not fit
    # refuses the push and stores nothing.
    body = await filled(ctx.store, app_id, body)
    await check_audience(ctx.store, app_id, body, ctx.limits)
    task_id = body.task_id or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(task_id=task_id)
    key = body.idempotency_key
    if key:
        (holder,) = await ctx.store.claim_idempotency([(app_id, key, task_id)],
                                                      IDEMPOTENCY_TTL_S)
        if holder != task_id:
            # A repeat: the first task is the answer, and nothing is pushed again.
            PUSHES.labels("repeated").inc()
            log.info("push repeats a task", first_task_id=holder, idempotency_key=key)
            return respond(Accepted(task_id=holder), 202)
    if await ctx.store.task_status(app_id, task_id) is not None:
        raise ApiError(409, ApiCode.TASK_EXISTS, f"task {task_id!r} exists in this app")
    pushed = push_request(body, app_id, task_id)
    try:
        await (await ctx.bus.publish(topics.REQUESTS, encode_push_request(pushed),
                                     key=task_id.encode()))
    except BaseException:
        if key:
            await ctx.store.release_idempotency(app_id, key, task_id)
        raise
    await ctx.store.accept_task(app_id, task_id, now_ms())
    kind = pushed.audience_kind()
    PUSHES.labels(kind).inc()
    log.info("push accepted", audience=kind)
    return respond(Accepted(task_id=task_id), 202)
