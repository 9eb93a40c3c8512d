"""The OpenAPI document describes every route: request bodies, answers and refusals, with the
msgspec schemas of ``proto.api`` as its components, and both security schemes."""

from __future__ import annotations

import json

import msgspec

from proto.api import ErrorBody, PushBody

METHODS = {"get", "put", "post", "delete"}


async def document(http) -> dict:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def refs(node) -> set[str]:
    """Every ``$ref`` under ``node``."""
    found = set()
    if isinstance(node, dict):
        if "$ref" in node:
            found.add(node["$ref"])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


async def test_every_operation_is_described(http):
    doc = await document(http)
    operations = [(path, method, op) for path, ops in doc["paths"].items()
                  for method, op in ops.items()]
    assert len(operations) == 37
    for path, method, op in operations:
        assert method in METHODS
        assert op["summary"] and op["operationId"]
        assert op["security"] in ([{"app": []}], [{"admin": []}]), (path, method)
        statuses = set(op["responses"])
        assert "422" not in statuses
        ok = [s for s in statuses if s.startswith("2")]
        assert len(ok) == 1, (path, method, statuses)
        if ok[0] != "204":
            assert "schema" in op["responses"][ok[0]]["content"]["application/json"]
        for status in statuses - set(ok):
            assert status.startswith("4"), (path, method, status)
            schema = op["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}
        assert "401" in statuses
        if method in ("put", "post") and not path.endswith("/stop"):
            body = op["requestBody"]
            # A recall's replacement message is optional.
            assert body["required"] is not path.endswith("/recall")
            assert "schema" in body["content"]["application/json"]
            assert {"400", "413", "415"} <= statuses


async def test_components_are_the_msgspec_schemas(http):
    doc = await document(http)
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref
    assert "HTTPValidationError" not in schemas
    _, components = msgspec.json.schema_components(
        [PushBody, ErrorBody], ref_template="#/components/schemas/{name}")
    for name, schema in components.items():
        assert schemas[name] == json.loads(json.dumps(schema)), name
    push = doc["paths"]["/v1/push"]["post"]["requestBody"]["content"]["application/json"]
    assert push["schema"] == {"$ref": "#/components/schemas/PushBody"}


async def test_security_schemes(http):
    doc = await document(http)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["app"]["type"] == "http" and schemes["app"]["scheme"] == "basic"
    assert schemes["admin"]["type"] == "http" and schemes["admin"]["scheme"] == "bearer"
    assert doc["paths"]["/v1/apps"]["post"]["security"] == [{"admin": []}]


async def test_docs_page(http):
    response = await http.get("/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text


async def test_query_parameters_and_new_bodies(http):
    doc = await document(http)
    schemas = doc["components"]["schemas"]
    records = {p["name"]: p for p in doc["paths"]["/v1/tasks"]["get"]["parameters"]}
    assert set(records) == {"since_ms", "until_ms", "audience", "state", "limit"}
    assert all(p["in"] == "query" and not p["required"] for p in records.values())
    limit = records["limit"]["schema"]
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == (
        "integer", 1, 500, 100)
    for name in ("since_ms", "until_ms"):
        # Optional, not nullable: a call leaves it out.
        assert records[name]["schema"]["type"] == "integer" and "anyOf" not in str(records)
    state = records["state"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schemas[state]["enum"]) == {"queued", "scheduled", "running", "done", "stopped",
                                           "recalled", "rejected"}
    audience = records["audience"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schemas[audience]["enum"]) == {"all", "accounts", "registration_ids", "filter"}
    daily = {p["name"]: p for p in doc["paths"]["/v1/stats/daily"]["get"]["parameters"]}
    assert set(daily) == {"from", "to"}
    assert all(p["required"] and p["schema"]["format"] == "date" for p in daily.values())
    assert set(schemas["CallbackBody"]["properties"]) == {"url", "stages"}
    assert schemas["CallbackBody"]["additionalProperties"] is False
    assert "secret" not in schemas["CallbackInfo"]["properties"]
    assert "secret" in schemas["CallbackConfigured"]["required"]
    recall = doc["paths"]["/v1/tasks/{task_id}/recall"]["post"]
    assert recall["requestBody"]["required"] is False
    assert set(recall["responses"]) == {"202", "400", "401", "404", "409", "413", "415"}
