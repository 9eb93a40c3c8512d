"""Refusals, and the one shape every error answer has: ``proto.api.ErrorBody``.

ApiError                   raised by the API's own code: a status, a code and a reason
AudienceError (proto)      a refused audience, tag or attribute call: 400 with its code (409
                           for ``conflict``: other writers won every attempt, nothing stored)
TemplateError (proto)      a refused template or templated push: 400 with its code (404 for
                           ``unknown_template``)
HTTPException (Starlette)  routing (404, 405) and FastAPI's security classes (401)
RequestValidationError     FastAPI's own parameter checks: 400 ``invalid_query`` for a query
                           parameter, else ``invalid_body``

An unexpected exception is answered 500 ``internal`` by ``router.api.observe``, which logs it.
Every refusal is logged at info with its status and code, never with the body.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from proto.api import ApiCode, ErrorBody
from proto.audience import AudienceError, Code
from proto.templates import TemplateCode, TemplateError

JSON = "application/json"

log = structlog.get_logger()

# Codes for the HTTP layer's own refusals, by status.
_BY_STATUS = {400: ApiCode.INVALID_BODY, 401: ApiCode.UNAUTHORIZED, 403: ApiCode.FORBIDDEN,
              404: ApiCode.NOT_FOUND, 405: ApiCode.METHOD_NOT_ALLOWED,
              413: ApiCode.BODY_TOO_LARGE, 415: ApiCode.UNSUPPORTED_MEDIA_TYPE}


class ApiError(Exception):
    """A refused call: answered ``status`` with ``ErrorBody(code, reason)``."""

    def __init__(self, status: int, code: ApiCode | Code, reason: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {reason}")
        self.status = status
        self.code = code
        self.reason = reason
        self.headers = dict(headers or {})


def error_response(status: int, code: str, reason: str,
                   headers: Mapping[str, str] | None = None) -> Response:
    """The answer to a refused call."""
    return Response(msgspec.json.encode(ErrorBody(code=code, reason=reason)),
                    status_code=status, headers=dict(headers or {}), media_type=JSON)


def _refuse(request: Request, status: int, code: str, reason: str,
            headers: Mapping[str, str] | None = None) -> Response:
    log.info("refused", method=request.method, path=request.url.path, status=status,
             code=code)
    return error_response(status, code, reason, headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _refuse(request, exc.status, exc.code, exc.reason, exc.headers)


async def _audience_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AudienceError)
    status = 409 if exc.code is Code.CONFLICT else 400
    return _refuse(request, status, exc.code, exc.reason)


async def _template_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TemplateError)
    status = 404 if exc.code is TemplateCode.UNKNOWN_TEMPLATE else 400
    return _refuse(request, status, exc.code, exc.reason)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = _BY_STATUS.get(status, ApiCode.INVALID_REQUEST if status < 500 else ApiCode.INTERNAL)
    headers = exc.headers or {}
    if status == 404:
        reason = f"{request.url.path} is not a path of this API (see /openapi.json)"
    elif status == 405:
        reason = (f"{request.url.path} does not take {request.method}; it takes "
                  f"{headers.get('Allow', 'other methods')}")
    else:
        reason = str(exc.detail)
    return _refuse(request, status, code, reason, headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    location = tuple(first.get("loc", ()))
    where = ".".join(str(part) for part in location)
    reason = f"{first.get('msg', 'invalid request')} - at {where}" if where else "invalid request"
    code = ApiCode.INVALID_QUERY if location[:1] == ("query",) else ApiCode.INVALID_BODY
    return _refuse(request, 400, code, reason)


def install(app: FastAPI) -> None:
    """Answer every refusal with an ``ErrorBody``, replacing FastAPI's own shapes."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(AudienceError, _audience_error)
    app.add_exception_handler(TemplateError, _template_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
