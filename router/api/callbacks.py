"""The app's callback config: where ``herald callbacks`` posts its events, and which stages.

Herald makes the secret that signs the posts: every ``PUT`` makes a new one, which its answer
shows this once; reading the config never shows it.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Request, Response

from proto.api import ApiCode, CallbackBody, CallbackConfigured, CallbackInfo
from proto.audience import Code
from proto.callbacks import MAX_URL, CallbackConfig
from proto.events import Stage
from router.api.auth import AppId
from router.api.bodies import no_content, read_body, respond
from router.api.context import Ctx
from router.api.errors import ApiError
from router.api.openapi import spec

log = structlog.get_logger()

routes = APIRouter(tags=["callbacks"])

# No whitespace or control characters anywhere: the URL goes into an HTTP request line as is.
_URL_RE = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+\Z")
_STAGES = {stage.value: stage for stage in Stage}


def _url(url: str) -> str:
    if len(url) > MAX_URL or not _URL_RE.match(url):
        raise _bad_url(url, f"an http:// or https:// URL of at most {MAX_URL} characters "
                            "without spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not one
    except ValueError as exc:
        raise _bad_url(url, f"a URL ({exc})") from None
    if not parts.hostname:
        raise _bad_url(url, "a URL with a host")
    return url


def _bad_url(url: str, wanted: str) -> ApiError:
    shown = url if len(url) <= 100 else url[:100] + "..."
    return ApiError(400, ApiCode.BAD_URL, f"{shown!r} is not {wanted}")


def _stages(names: list[str]) -> list[Stage]:
    if not names:
        raise ApiError(400, Code.EMPTY, "stages names no stage; name at least one")
    unknown = sorted(set(names) - set(_STAGES))
    if unknown:
        raise ApiError(400, ApiCode.BAD_STAGE,
                       f"{unknown} are not event stages; stages are {sorted(_STAGES)}")
    # In the order of the stages, each once.
    return [stage for stage in Stage if stage.value in names]


def _none() -> ApiError:
    return ApiError(404, ApiCode.NO_CALLBACK, "this app has no callback config")


@routes.put("/v1/callback",
            **spec.operation("Post the app's events of these stages to this URL; answers the "
                             "secret that signs the posts, shown this once (each call makes a "
                             "new one).", body=CallbackBody, returns=CallbackConfigured))
async def set_callback(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Create or replace the app's callback config, with a new secret."""
    body = await read_body(request, CallbackBody)
    config = CallbackConfig(url=_url(body.url), stages=_stages(body.stages),
                            secret=secrets.token_urlsafe(32))
    await ctx.store.put_callback(app_id, config)
    # Never the URL: its query may carry the app's own token.
    log.info("callback set", stages=[stage.value for stage in config.stages])
    return respond(CallbackConfigured(url=config.url, stages=config.stages,
                                      secret=config.secret))


@routes.get("/v1/callback",
            **spec.operation("The app's callback config (never its secret).",
                             returns=CallbackInfo, refusals=(404,)))
async def get_callback(app_id: AppId, ctx: Ctx) -> Response:
    """The app's callback URL and stages."""
    config = await ctx.store.get_callback(app_id)
    if config is None:
        raise _none()
    return respond(CallbackInfo(url=config.url, stages=config.stages))


@routes.delete("/v1/callback",
               **spec.operation("Stop posting the app's events.", status=204, refusals=(404,)))
async def delete_callback(app_id: AppId, ctx: Ctx) -> Response:
    """Remove the app's callback config."""
    if not await ctx.store.delete_callback(app_id):
        raise _none()
    log.info("callback deleted")
    return no_content()
