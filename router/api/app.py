"""The FastAPI application of ``herald api``: routes, error handling, metrics, the document."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from herald.bus import Bus
from herald.settings import ApiSettings
from herald.store import Store
from router.api import (
    accounts,
    apps,
    attributes,
    callbacks,
    devices,
    errors,
    policy,
    push,
    records,
    schedules,
    stats,
    tags,
    tasks,
    templates,
)
from router.api.context import Context
from router.api.observe import Observe
from router.api.openapi import spec

_DESCRIPTION = """Herald's HTTP API for app backends.

Every call but app creation authenticates as one app with HTTP Basic `app_id:server_secret`
and acts on that app alone. App creation takes `Authorization: Bearer <HERALD_ADMIN_TOKEN>`.
Every refusal is a 4xx JSON body `{"code": ..., "reason": ...}`; a refused call stores nothing.
"""


def _operation_id(route: APIRoute) -> str:
    # The handler's name: stable, and what a generated client should call the operation.
    return route.name


def create_app(settings: ApiSettings, store: Store, bus: Bus) -> FastAPI:
    """The API over ``store`` and ``bus``, with ``settings``' limits."""
    app = FastAPI(title="Herald", version="1", description=_DESCRIPTION,
                  generate_unique_id_function=_operation_id)
    app.state.context = Context(settings, store, bus, settings.audience_limits())
    for module in (apps, devices, accounts, tags, attributes, push, tasks, schedules, records,
                   stats, callbacks, policy, templates):
        app.include_router(module.routes)
    errors.install(app)
    fixed = frozenset(route.path for route in app.routes
                      if isinstance(route, Route) and not isinstance(route, APIRoute))
    app.add_middleware(Observe, fixed=fixed)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = spec.document(app)
        return app.openapi_schema

    app.openapi = openapi
    return app
