"""Push templates (``proto.templates``): a message with placeholders, filled in per push.

``POST /v1/templates`` creates one (409 if the id is taken), ``PUT`` replaces one that exists,
``GET`` reads one or all, ``DELETE`` removes one. A template whose text uses a variable it does
not declare is refused. A push names a template with ``"template": {"template_id": ...,
"variables": {...}}`` instead of ``message`` (``router.api.push`` fills it in); a template
changed or removed later changes no push accepted before.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Request, Response

from herald.store import Store
from herald.template_store import Created
from proto.api import ApiCode, PushBody
from proto.limits import ID_PATTERN, ID_RE, MAX_TEMPLATES
from proto.templates import (
    Template,
    TemplateCode,
    TemplateContent,
    TemplateError,
    TemplateList,
    check_template,
    fill,
)
from router.api.auth import AppId
from router.api.bodies import no_content, read_body, respond
from router.api.context import Ctx
from router.api.errors import ApiError
from router.api.openapi import spec

log = structlog.get_logger()

routes = APIRouter(tags=["templates"])

TemplateId = Annotated[str, Path(description="A template's id.",
                                 json_schema_extra={"pattern": ID_PATTERN})]


def _checked_id(template_id: str) -> str:
    """400 ``bad_template_id`` unless ``template_id`` can be one; the call's log lines carry
    it from here on."""
    if not ID_RE.match(template_id):
        raise ApiError(400, ApiCode.BAD_TEMPLATE_ID, f"{template_id!r} is not a template id")
    structlog.contextvars.bind_contextvars(template_id=template_id)
    return template_id


async def filled(store: Store, app_id: str, body: PushBody) -> PushBody:
    """``body`` with its template filled in as its message (itself if it has a message).
    Raises ``TemplateError``: an unknown template (404), a missing or unknown variable, a
    value that is not text or a number, a filled-in message that is not valid (400)."""
    ref = body.template
    if ref is None:
        return body
    structlog.contextvars.bind_contextvars(template_id=ref.template_id)
    return fill(body, await store.get_template(app_id, ref.template_id))


def _unknown(template_id: str) -> TemplateError:
    return TemplateError(TemplateCode.UNKNOWN_TEMPLATE,
                         f"template {template_id!r} does not exist in this app")


@routes.post("/v1/templates",
             **spec.operation("Create a template: a message whose text may hold placeholders "
                              "{{name}} for the variables it declares (each with an optional "
                              "default). Answers the template stored.", body=Template,
                              returns=Template, status=201, refusals=(409,)))
async def create_template(request: Request, app_id: AppId, ctx: Ctx) -> Response:
    """Create a template unless the app has one of its id."""
    template = await read_body(request, Template, ApiCode.INVALID_TEMPLATE)
    structlog.contextvars.bind_contextvars(template_id=template.template_id)
    check_template(template, template.template_id)
    created = await ctx.store.add_template(app_id, template, MAX_TEMPLATES)
    if created is Created.EXISTS:
        raise ApiError(409, ApiCode.TEMPLATE_EXISTS,
                       f"template {template.template_id!r} exists in this app; PUT replaces it")
    if created is Created.FULL:
        raise ApiError(409, ApiCode.TOO_MANY_TEMPLATES,
                       f"this app keeps {MAX_TEMPLATES} templates already; delete one first")
    log.info("template created", variables=sorted(template.variables))
    return respond(template, 201)


@routes.get("/v1/templates",
            **spec.operation("The app's templates, by id.", returns=TemplateList))
async def list_templates(app_id: AppId, ctx: Ctx) -> Response:
    """Every template of the app."""
    return respond(TemplateList(templates=await ctx.store.list_templates(app_id)))


@routes.get("/v1/templates/{template_id}",
            **spec.operation("One template of the app.", returns=Template,
                             refusals=(400, 404)))
async def get_template(template_id: TemplateId, app_id: AppId, ctx: Ctx) -> Response:
    """The app's template of that id."""
    template = await ctx.store.get_template(app_id, _checked_id(template_id))
    if template is None:
        raise _unknown(template_id)
    return respond(template)


@routes.put("/v1/templates/{template_id}",
            **spec.operation("Replace a template's message and variables; pushes accepted "
                             "before keep what they were sent with. Answers the template "
                             "stored.", body=TemplateContent, returns=Template,
                             refusals=(404,)))
async def replace_template(template_id: TemplateId, request: Request, app_id: AppId,
                           ctx: Ctx) -> Response:
    """Replace the app's template of that id, which must exist."""
    _checked_id(template_id)
    content = await read_body(request, TemplateContent, ApiCode.INVALID_TEMPLATE)
    check_template(content, template_id)
    template = Template(template_id=template_id, message=content.message,
                        variables=content.variables)
    if not await ctx.store.replace_template(app_id, template):
        raise _unknown(template_id)
    log.info("template replaced", variables=sorted(template.variables))
    return respond(template)


@routes.delete("/v1/templates/{template_id}",
               **spec.operation("Remove a template; pushes accepted before are not changed.",
                                status=204, refusals=(400, 404)))
async def delete_template(template_id: TemplateId, app_id: AppId, ctx: Ctx) -> Response:
    """Remove the app's template of that id."""
    if not await ctx.store.delete_template(app_id, _checked_id(template_id)):
        raise _unknown(template_id)
    log.info("template deleted")
    return no_content()
