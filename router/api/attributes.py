"""Attributes of accounts: the app declares up to HERALD_ATTRIBUTES_PER_APP names, then sets,
reads and removes their values per account. A refused call changes nothing."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from proto.api import AccountAttributes, Accounts, AttributeNames, AttributeRemoval, AttributeValues
from router.api.auth import AppId
from router.api.bodies import no_content, read_body, respond
from router.api.context import Ctx
from router.api.openapi import spec

routes = APIRouter(tags=["attributes"])


@routes.put("/v1/attributes",
            **spec.operation("Declare attribute names; answers every declared name.",
                             body=AttributeNames, returns=AttributeNames, refusals=(409,)))
async def declare_attributes(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Add the names to the app's declared attributes."""
    body = await read_body(request, AttributeNames)
    await ctx.store.declare_attributes(app_id, body.names)
    return respond(AttributeNames(names=await ctx.store.attributes(app_id)))


@routes.get("/v1/attributes",
            **spec.operation("The declared attribute names, sorted.", returns=AttributeNames))
async def list_attributes(app_id: AppId, ctx: Ctx) -> Response:
    """The app's declared attribute names."""
    return respond(AttributeNames(names=await ctx.store.attributes(app_id)))


@routes.post("/v1/attributes/set",
             **spec.operation("Set attribute values: {account: {name: value}}.",
                              body=AttributeValues, status=204, refusals=(409,)))
async def set_attributes(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Set the values of declared attributes for every account given."""
    body = await read_body(request, AttributeValues)
    await ctx.store.set_attributes(app_id, body.values)
    return no_content()


@routes.post("/v1/attributes/query",
             **spec.operation("Each account's attribute values by name.", body=Accounts,
                              returns=AccountAttributes))
async def query_attributes(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """The attribute values of every account, by account."""
    body = await read_body(request, Accounts)
    return respond(await ctx.store.get_attributes(app_id, body.accounts))


@routes.post("/v1/attributes/remove",
             **spec.operation("Remove the named attributes' values from every account.",
                              body=AttributeRemoval, status=204, refusals=(409,)))
async def remove_attributes(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Remove the named values from every account."""
    body = await read_body(request, AttributeRemoval)
    await ctx.store.remove_attributes(app_id, body.accounts, body.names)
    return no_content()
