"""Malformed requests: every body route refuses bodies that are not the JSON object it takes,
in the one error shape and without storing anything; unknown routes and wrong methods too."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from tests.api.helpers import auth, dump, refused, register
from tests.harness import eventually

# Every route with a body: method, path, and a body it accepts.
ROUTES = [
    ("PUT", "/v1/devices/{rid}/account", {"account": "u1"}),
    ("POST", "/v1/accounts/import", {"accounts": ["u1"]}),
    ("POST", "/v1/tags/add", {"accounts": ["u1"], "tags": ["t"]}),
    ("POST", "/v1/tags/remove", {"accounts": ["u1"], "tags": ["t"]}),
    ("POST", "/v1/tags/clear", {"accounts": ["u1"]}),
    ("POST", "/v1/tags/query", {"accounts": ["u1"]}),
    ("PUT", "/v1/attributes", {"names": ["city"]}),
    ("POST", "/v1/attributes/set", {"values": {"u1": {"city": "x"}}}),
    ("POST", "/v1/attributes/query", {"accounts": ["u1"]}),
    ("POST", "/v1/attributes/remove", {"accounts": ["u1"], "names": ["city"]}),
    ("POST", "/v1/push", {"registration_ids": ["r1"], "message": {"title": "x"}}),
    ("PUT", "/v1/callback", {"url": "https://example.com/hook", "stages": ["delivered"]}),
    ("POST", "/v1/templates", {"template_id": "t", "message": {"title": "x"}}),
]
#: The code of a body that does not decode, where it is not ``invalid_body``.
INVALID = {"/v1/push": "invalid_push", "/v1/templates": "invalid_template"}

# Bodies that are not what any route takes, and words the reason must contain.
MALFORMED = [
    (b"", "truncated"),
    (b"not json", "malformed"),
    (b"[]", "got `array`"),
    (b'"a string"', "got `str`"),
    (b"null", "got `null`"),
    (b"\xff\xfe", "malformed"),
]


@pytest.fixture
async def device(app, uid) -> str:
    rid = f"dev-{uid}"
    await register(app.app_id, rid)
    return rid


@pytest.mark.parametrize(("method", "path", "good"), ROUTES)
async def test_malformed_bodies_store_nothing(http, app, device, redis_client, method, path,
                                             good):
    url = path.format(rid=device)
    code = INVALID.get(path, "invalid_body")
    # The app declares what the good bodies name, so that only the form of a body is wrong.
    await http.put("/v1/attributes", json={"names": ["city"]}, auth=auth(app))
    before = await dump(redis_client, app.app_id)
    json_type = {"content-type": "application/json"}
    truncated = json.dumps(good).encode()[:-2]
    for content, words in [*MALFORMED, (truncated, "truncated")]:
        response = await http.request(method, url, content=content, headers=json_type,
                                      auth=auth(app))
        reason = refused(response, 400, code)["reason"]
        assert words.lower() in reason.lower(), reason
    unknown = await http.request(method, url, json={**good, "extra": 1}, auth=auth(app))
    assert "extra" in refused(unknown, 400, code)["reason"]
    for field in good:
        wrong = await http.request(method, url, json={**good, field: 12345}, auth=auth(app))
        assert f"got `int` - at `$.{field}`" in refused(wrong, 400, code)["reason"]
    missing = await http.request(method, url, json={}, auth=auth(app))
    # A push names its content in one of two fields, neither of them required alone.
    words = "exactly one of message or template" if path == "/v1/push" else (
        "missing required field")
    assert words in refused(missing, 400, code)["reason"]
    for headers in ({"content-type": "text/plain"}, {"content-type": "application/xml"},
                    {"content-type": "application/x-www-form-urlencoded"}, {}):
        response = await http.request(method, url, content=b'{"accounts": ["u1"]}',
                                      headers=headers, auth=auth(app))
        refused(response, 415, "unsupported_media_type")
    huge = b'{"accounts": ["' + b"a" * (600 * 1024) + b'"]}'
    refused(await http.request(method, url, content=huge, headers=json_type, auth=auth(app)),
            413, "body_too_large")

    async def chunks():
        for _ in range(600):
            yield b" " * 1024

    # A chunked body (no Content-Length) is cut off at the limit too.
    refused(await http.request(method, url, content=chunks(), headers=json_type,
                               auth=auth(app)), 413, "body_too_large")
    assert await dump(redis_client, app.app_id) == before
    ok = await http.request(method, url, json=good,
                            headers={"content-type": "application/json; charset=utf-8"},
                            auth=auth(app))
    assert ok.status_code < 300, ok.text


async def test_wrong_types_name_the_field(http, app):
    response = await http.post("/v1/tags/add", json={"accounts": ["u1"], "tags": ["ok", 7]},
                               auth=auth(app))
    assert refused(response, 400, "invalid_body")["reason"] == (
        "Expected `str`, got `int` - at `$.tags[1]`")
    response = await http.post("/v1/push", json={"registration_ids": ["r1"],
                                                 "message": {"title": 5}}, auth=auth(app))
    assert "$.message.title" in refused(response, 400, "invalid_push")["reason"]


async def test_unknown_routes_and_methods(http, app):
    refused(await http.get("/v1/nothing", auth=auth(app)), 404, "not_found")
    refused(await http.get("/", auth=auth(app)), 404, "not_found")
    response = await http.delete("/v1/push", auth=auth(app))
    refused(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    refused(await http.patch("/v1/attributes", auth=auth(app)), 405, "method_not_allowed")


async def test_a_body_cut_short_is_the_callers_fault(api, app):
    host, port = api.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    token = base64.b64encode(f"{app.app_id}:{app.server_secret}".encode()).decode()
    writer.write(f"POST /v1/tags/query HTTP/1.1\r\nhost: {host}\r\n"
                 f"authorization: Basic {token}\r\ncontent-type: application/json\r\n"
                 "content-length: 100\r\n\r\n{\"acc".encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    line = await eventually(lambda: api.role.find("refused", path="/v1/tags/query",
                                                  app_id=app.app_id), 10, "the refusal")
    assert (line["status"], line["code"]) == (400, "invalid_body")
    assert api.role.find("request failed", path="/v1/tags/query") is None
