"""Tags of accounts: add, remove, remove all, query; up to HERALD_ACCOUNTS_PER_CALL accounts a
call. A refused call changes no account."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from proto.api import Accounts, AccountTags, TagChange
from router.api.auth import AppId
from router.api.bodies import no_content, read_body, respond
from router.api.context import Ctx
from router.api.openapi import spec

routes = APIRouter(tags=["tags"])


@routes.post("/v1/tags/add",
             **spec.operation("Give every account every tag (up to HERALD_TAGS_PER_ACCOUNT "
                              "an account).", body=TagChange, status=204, refusals=(409,)))
async def add_tags(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Add the tags to every account, or to none if one would pass its limit."""
    body = await read_body(request, TagChange)
    await ctx.store.add_tags(app_id, body.accounts, body.tags)
    return no_content()


@routes.post("/v1/tags/remove",
             **spec.operation("Take the tags off every account.", body=TagChange, status=204))
async def remove_tags(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Remove the tags from every account."""
    body = await read_body(request, TagChange)
    await ctx.store.remove_tags(app_id, body.accounts, body.tags)
    return no_content()


@routes.post("/v1/tags/clear",
             **spec.operation("Take every tag off every account.", body=Accounts, status=204,
                              refusals=(409,)))
async def clear_tags(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Remove all tags from every account."""
    body = await read_body(request, Accounts)
    await ctx.store.remove_all_tags(app_id, body.accounts)
    return no_content()


@routes.post("/v1/tags/query",
             **spec.operation("Each account's tags, sorted.", body=Accounts,
                              returns=AccountTags))
async def query_tags(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """The tags of every account, by account."""
    body = await read_body(request, Accounts)
    return respond(await ctx.store.tags(app_id, body.accounts))
