"""Apps: creation (admin token) and the authenticated app."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request, Response

from herald.apps import new_app
from proto.api import ApiCode, AppCredentials, AppInfo, CreateApp
from router.api.auth import Admin, App
from router.api.bodies import read_body, respond
from router.api.context import Ctx
from router.api.errors import ApiError
from router.api.openapi import spec

log = structlog.get_logger()

routes = APIRouter(tags=["apps"])


@routes.post("/v1/apps", dependencies=[Admin],
             **spec.operation("Create an app; its credentials are shown this once.",
                              body=CreateApp, returns=AppCredentials, status=201,
                              refusals=(403, 409)))
async def create_app(request: Request, ctx: Ctx) -> Response:
    """Create an app, as ``herald app create`` does."""
    body = await read_body(request, CreateApp)
    record = new_app(body.app_id)
    if not await ctx.store.add_app(record):
        raise ApiError(409, ApiCode.APP_EXISTS, f"app {body.app_id!r} exists")
    log.info("app created", app_id=record.app_id)
    return respond(AppCredentials(app_id=record.app_id, client_key=record.client_key,
                                  server_secret=record.server_secret), 201)


@routes.get("/v1/app", **spec.operation("The authenticated app.", returns=AppInfo))
async def get_app(app: App) -> Response:
    """The authenticated app's id and creation time."""
    return respond(AppInfo(app_id=app.app_id, created_ms=app.created_ms))
