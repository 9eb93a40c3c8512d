"""Schemathesis against the live ``herald api``: every operation of the OpenAPI document, with
generated valid and invalid requests, never gets a 5xx, and every answer matches the document
(status, content type, body schema).

The cases come from schemathesis' Hypothesis strategies, one operation at a time, rather than
from its pytest plugin: the plugin's lazy loader (``schemathesis.pytest.from_fixture``), which a
schema served by a fixture's process needs, rewrites the pytest node id that pytest 9 no longer
has."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.helpers import ADMIN_TOKEN

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 50


@pytest.fixture
def api_schema(api, app):
    """The document as the live API serves it, with a real app's credentials and the admin
    token for the operations whose security scheme takes them."""
    config = schemathesis.Config.from_dict({"auth": {"openapi": {
        "app": {"username": app.app_id, "password": app.server_secret},
        "admin": {"bearer": ADMIN_TOKEN}}}})
    return schemathesis.openapi.from_url(f"{api.url}/openapi.json", config=config)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(api_schema, mode):
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 37
    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def calls(case):
            case.call_and_validate(checks=CHECKS)

        try:
            calls()
        except Exception as exc:
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    assert not failures, "\n\n".join(f"{label}\n{error}" for label, error in failures.items())
