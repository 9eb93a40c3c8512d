"""The app's delivery policy: quiet hours and a frequency cap (``proto.policy``).

``PUT`` replaces the whole policy (a part left out is removed); ``GET`` answers it, with both
parts null when the app has none; ``DELETE`` removes it. Routers read it through a cache of a
few seconds (``router.caps``), so a change applies to pushes routed from then on.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request, Response

from proto.api import ApiCode
from proto.policy import AppPolicy
from router.api.auth import AppId
from router.api.bodies import no_content, read_body, respond
from router.api.context import Ctx
from router.api.openapi import spec

log = structlog.get_logger()

routes = APIRouter(tags=["policy"])


@routes.put("/v1/policy",
            **spec.operation("Replace the app's delivery policy: quiet hours (a daily window "
                             "of the device's local time in which non-urgent pushes wait) and "
                             "a frequency cap (non-urgent pushes per account per period). "
                             "Answers the policy stored.", body=AppPolicy, returns=AppPolicy))
async def set_policy(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Create or replace the app's policy."""
    policy = await read_body(request, AppPolicy, ApiCode.INVALID_POLICY)
    await ctx.store.put_policy(app_id, policy)
    log.info("policy set", quiet_hours=policy.quiet_hours is not None,
             frequency_cap=policy.frequency_cap is not None)
    return respond(policy)


@routes.get("/v1/policy",
            **spec.operation("The app's delivery policy (both parts null if it has none).",
                             returns=AppPolicy))
async def get_policy(app_id: AppId, ctx: Ctx) -> Response:
    """The app's policy."""
    return respond(await ctx.store.get_policy(app_id) or AppPolicy())


@routes.delete("/v1/policy",
               **spec.operation("Remove the app's delivery policy (no quiet hours, no cap).",
                                status=204))
async def delete_policy(app_id: AppId, ctx: Ctx) -> Response:
    """Remove the app's policy; removing none is no error."""
    if await ctx.store.delete_policy(app_id):
        log.info("policy deleted")
    return no_content()
