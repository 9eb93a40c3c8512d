"""The OpenAPI document: FastAPI's paths, parameters and security schemes, with the msgspec
JSON Schema of every body (``proto.api``) for requests, answers and errors.

FastAPI never sees a body type (handlers read bodies themselves), so each route states its
bodies through ``Spec.operation``, which collects their schema components for the document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from fastapi import FastAPI, Response
from fastapi.openapi.utils import get_openapi

from proto.api import ErrorBody
from router.api.errors import JSON

REF = "#/components/schemas/{name}"

# What each refusal status means, for the document.
_REFUSALS = {
    400: "Invalid body, path id, query parameter or audience; nothing was stored.",
    401: "No credentials, malformed ones, an unknown app or a wrong secret.",
    403: "The credentials do not allow this call.",
    404: "Nothing of that name in this app (device, task, trace, callback config, template).",
    409: "Conflicts with what exists; nothing was stored.",
    413: "The body is larger than HERALD_MAX_BODY_BYTES.",
    415: "The body is not application/json.",
}
# FastAPI documents its own 422 answer, which Herald never gives (``router.api.errors``).
_FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")


class Spec:
    """Describes operations and builds the document from the schemas they name."""

    def __init__(self) -> None:
        self._components: dict[str, Any] = {}

    def _schema(self, kind: Any) -> dict[str, Any]:
        """The schema of ``kind`` (a reference for a struct), its components kept."""
        (schema,), components = msgspec.json.schema_components([kind], ref_template=REF)
        for name, component in components.items():
            if self._components.setdefault(name, component) != component:
                raise ValueError(f"two different body types are named {name}")
        return schema

    def operation(self, summary: str, *, body: Any = None, body_required: bool = True,
                  returns: Any = None, status: int = 200,
                  refusals: Iterable[int] = ()) -> dict[str, Any]:
        """Keyword arguments for a route decorator: the operation's request body (``body``,
        which a call may leave out unless ``body_required``), its answer (``status`` with
        ``returns``, or no content) and its refusals, each an ``ErrorBody``: every operation
        may answer 401, and one with a body 400, 413 and 415."""
        answer: dict[str, Any] = {"description": summary}
        if returns is not None:
            answer["content"] = {JSON: {"schema": self._schema(returns)}}
        error = {JSON: {"schema": self._schema(ErrorBody)}}
        responses: dict[int | str, Any] = {status: answer}
        with_body = (400, 413, 415) if body is not None else ()
        for refusal in sorted({401, *with_body, *refusals}):
            responses[refusal] = {"description": _REFUSALS[refusal], "content": error}
        extra: dict[str, Any] = {}
        if body is not None:
            extra["requestBody"] = {"required": body_required,
                                    "content": {JSON: {"schema": self._schema(body)}}}
        return {"summary": summary, "status_code": status, "response_class": Response,
                "responses": responses, "openapi_extra": extra}

    def document(self, app: FastAPI) -> dict[str, Any]:
        """The OpenAPI document of ``app``."""
        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes)
        for path in doc["paths"].values():
            for operation in path.values():
                operation["responses"].pop("422", None)
                for parameter in operation.get("parameters", ()):
                    _absent_not_null(parameter["schema"])
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name in _FASTAPI_ONLY:
            schemas.pop(name, None)
        schemas.update(self._components)
        return doc


def _absent_not_null(schema: dict[str, Any]) -> None:
    """An optional parameter (``int | None = None``) is one a call leaves out: FastAPI shows it
    as "the type or null", which a client could only send as the text ``null``."""
    choices = schema.get("anyOf", ())
    kept = [choice for choice in choices if choice != {"type": "null"}]
    if len(kept) == 1 and len(choices) == 2:
        del schema["anyOf"]
        schema.update(kept[0])


#: The one ``Spec`` of the API's routes.
spec = Spec()
