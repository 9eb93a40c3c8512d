"""Who a call acts for.

App calls authenticate with HTTP Basic ``app_id:server_secret``, as JPush's take
``appKey:masterSecret``. The app id comes from the credentials alone, never from the path or
the body, and handlers give it to every store call: no call can reach another app's data.
App creation takes ``Authorization: Bearer <HERALD_ADMIN_TOKEN>`` instead. Secrets are
compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Annotated

import structlog
from fastapi import Depends
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from starlette.exceptions import HTTPException

from proto.api import ApiCode
from proto.envelopes import AppRecord
from proto.limits import ID_RE
from router.api.context import Ctx
from router.api.errors import ApiError
from router.api.metrics import AUTH_FAILURES

_REALM = "herald"
_CHALLENGE = {"WWW-Authenticate": f'Basic realm="{_REALM}"'}
# Compared against when the app is unknown, so that an unknown app costs the same comparison
# as a wrong secret.
_NO_SECRET = b"\0" * 43


class _AppBasic(HTTPBasic):
    """FastAPI's Basic parser (which also puts the scheme in the OpenAPI document), with
    Herald's reason for a header that is not base64 ``app_id:server_secret``."""

    def make_not_authenticated_error(self) -> HTTPException:
        """The refusal of a malformed Basic header."""
        AUTH_FAILURES.labels("malformed").inc()
        return HTTPException(401, "the Basic credentials are not base64 of "
                             "app_id:server_secret", headers=_CHALLENGE)


_basic = _AppBasic(scheme_name="app", realm=_REALM, auto_error=False,
                   description="The app id as user name, its server secret as password.")
_bearer = HTTPBearer(scheme_name="admin", auto_error=False,
                     description="HERALD_ADMIN_TOKEN: only for creating apps.")


async def authenticate(
        ctx: Ctx,
        credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]) -> AppRecord:
    """The app whose server secret the call shows; 401 for anything else."""
    if credentials is None:
        AUTH_FAILURES.labels("missing").inc()
        raise ApiError(401, ApiCode.UNAUTHORIZED,
                       "this call needs HTTP Basic credentials app_id:server_secret",
                       _CHALLENGE)
    app_id = credentials.username
    record = await ctx.store.get_app(app_id) if ID_RE.match(app_id) else None
    expected = record.server_secret.encode() if record is not None else _NO_SECRET
    if not hmac.compare_digest(expected, credentials.password.encode()) or record is None:
        AUTH_FAILURES.labels("rejected").inc()
        raise ApiError(401, ApiCode.UNAUTHORIZED, "unknown app or wrong server secret",
                       _CHALLENGE)
    structlog.contextvars.bind_contextvars(app_id=app_id)
    return record


async def _app_id(record: Annotated[AppRecord, Depends(authenticate)]) -> str:
    return record.app_id


async def admin(
        ctx: Ctx,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Pass if the call shows the admin token; 403 if app creation over HTTP is off."""
    token = ctx.settings.admin_token
    if not token:
        raise ApiError(403, ApiCode.FORBIDDEN,
                       "app creation over HTTP is disabled (HERALD_ADMIN_TOKEN is not set)")
    if credentials is None:
        AUTH_FAILURES.labels("missing").inc()
        raise ApiError(401, ApiCode.UNAUTHORIZED,
                       "this call needs Authorization: Bearer <admin token>",
                       {"WWW-Authenticate": f'Bearer realm="{_REALM}"'})
    if not hmac.compare_digest(token.encode(), credentials.credentials.encode()):
        AUTH_FAILURES.labels("rejected").inc()
        raise ApiError(403, ApiCode.FORBIDDEN, "wrong admin token")


#: A handler parameter that receives the authenticated app (FastAPI authenticates once per
#: request, however many parameters ask).
App = Annotated[AppRecord, Depends(authenticate)]
#: A handler parameter that receives the authenticated app's id.
AppId = Annotated[str, Depends(_app_id)]
#: A route dependency that lets only the admin token through.
Admin = Depends(admin)
