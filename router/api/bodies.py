"""Reading request bodies into ``proto.api`` structs, and writing response bodies.

Bodies are read here rather than by FastAPI, so that msgspec (one definition per body, the
same one the OpenAPI document shows) decides what is valid and names the bad field.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
from fastapi import Request, Response
from starlette.requests import ClientDisconnect

from proto.api import ApiCode, decode_body
from proto.errors import DecodeError
from router.api.context import context
from router.api.errors import JSON, ApiError

T = TypeVar("T")


async def read_body(request: Request, kind: type[T],
                    invalid: ApiCode = ApiCode.INVALID_BODY) -> T:
    """The JSON body of ``request`` as ``kind``: 415 unless it is JSON, 413 past the size
    limit (checked as it arrives, so a huge body is never held whole), 400 ``invalid``
    unless it decodes."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != JSON:
        raise ApiError(415, ApiCode.UNSUPPORTED_MEDIA_TYPE,
                       f"the body must be {JSON}, not {media or 'untyped'}")
    limit = context(request).settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    data = bytearray()
    try:
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise _too_large(limit)
    except ClientDisconnect:
        # The caller's fault, not the server's: answered (to nobody) as a bad body.
        raise ApiError(400, invalid, "the connection closed before the body ended") from None
    try:
        return decode_body(bytes(data), kind)
    except DecodeError as exc:
        raise ApiError(400, invalid, exc.reason) from None


async def read_optional_body(request: Request, kind: type[T], absent: T) -> T:
    """``read_body``, but a request without a body (no length, or length 0, and not chunked)
    is ``absent``, whatever its content type."""
    length = request.headers.get("content-length")
    if length == "0" or (length is None and "transfer-encoding" not in request.headers):
        return absent
    return await read_body(request, kind)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, ApiCode.BODY_TOO_LARGE, f"the body is larger than {limit} bytes")


def respond(body: object, status: int = 200) -> Response:
    """``body`` (a ``proto.api`` struct or plain JSON data) as a JSON response."""
    return Response(msgspec.json.encode(body), status_code=status, media_type=JSON)


def no_content() -> Response:
    """The answer to a change that has nothing to report."""
    return Response(status_code=204)
