"""Devices of the app: their data and presence, and their account binding."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from proto.api import ApiCode, BindAccount, DeviceInfo
from proto.audience import check_accounts
from router.api.auth import AppId
from router.api.bodies import no_content, read_body, respond
from router.api.context import Context, Ctx
from router.api.errors import ApiError
from router.api.openapi import spec
from router.api.params import RegistrationId, check_registration_id

routes = APIRouter(tags=["devices"])


async def _known(ctx: Context, app_id: str, registration_id: str) -> None:
    if await ctx.store.get_device(app_id, registration_id) is None:
        raise _unknown(registration_id)


def _unknown(registration_id: str) -> ApiError:
    return ApiError(404, ApiCode.UNKNOWN_DEVICE,
                    f"no device {registration_id!r} is registered in this app")


@routes.get("/v1/devices/{registration_id}",
            **spec.operation("A device: its data and whether it is online.",
                             returns=DeviceInfo, refusals=(400, 404)))
async def get_device(registration_id: RegistrationId, app_id: AppId, ctx: Ctx) -> Response:
    """The device's data (never its vendor token) and whether a live node holds it."""
    check_registration_id(registration_id)
    [state] = await ctx.store.lookup([(app_id, registration_id)])
    record = state.record
    if record is None:
        raise _unknown(registration_id)
    # Presence outlives a killed node by its TTL: the router trusts it only on a live node.
    online = (state.presence is not None
              and (await ctx.store.nodes_alive([state.presence.node]))[0])
    return respond(DeviceInfo(registration_id=registration_id, platform=record.platform,
                              vendor=record.vendor, locale=record.locale, tz=record.tz,
                              app_version=record.app_version, account=record.account,
                              created_ms=record.created_ms, online=online))


@routes.put("/v1/devices/{registration_id}/account",
            **spec.operation("Bind the device to an account (leaving its previous one).",
                             body=BindAccount, status=204, refusals=(404,)))
async def bind_account(registration_id: RegistrationId, request: Request, app_id: AppId,
                       ctx: Ctx) -> Response:
    """Bind the device to the body's account."""
    check_registration_id(registration_id)
    body = await read_body(request, BindAccount)
    [account] = check_accounts([body.account], 1)
    await _known(ctx, app_id, registration_id)
    await ctx.store.bind_account(app_id, registration_id, account)
    return no_content()


@routes.delete("/v1/devices/{registration_id}/account",
               **spec.operation("Unbind the device from its account.", status=204,
                                refusals=(400, 404)))
async def unbind_account(registration_id: RegistrationId, app_id: AppId, ctx: Ctx) -> Response:
    """Unbind the device from whatever account it is bound to."""
    check_registration_id(registration_id)
    await _known(ctx, app_id, registration_id)
    await ctx.store.bind_account(app_id, registration_id, "")
    return no_content()
