"""Accounts of the app: bulk import, and the devices bound to one."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from proto.api import AccountDevices, Accounts, Imported
from proto.audience import check_accounts
from router.api.auth import AppId
from router.api.bodies import read_body, respond
from router.api.context import Ctx
from router.api.openapi import spec
from router.api.params import AccountId

routes = APIRouter(tags=["accounts"])


@routes.post("/v1/accounts/import",
             **spec.operation("Make accounts known to the app (up to HERALD_ACCOUNTS_PER_IMPORT"
                              " a call); answers how many were new.",
                              body=Accounts, returns=Imported))
async def import_accounts(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Import accounts, so that audiences over all accounts reach them."""
    body = await read_body(request, Accounts)
    return respond(Imported(new=await ctx.store.import_accounts(app_id, body.accounts)))


@routes.get("/v1/accounts/{account}/devices",
            **spec.operation("The devices bound to an account.", returns=AccountDevices,
                             refusals=(400,)))
async def account_devices(account: AccountId, app_id: AppId, ctx: Ctx) -> Response:
    """The registration ids bound to the account (none for an unknown account)."""
    [account] = check_accounts([account], 1)
    devices = await ctx.store.account_devices(app_id, account)
    return respond(AccountDevices(account=account, registration_ids=devices))
