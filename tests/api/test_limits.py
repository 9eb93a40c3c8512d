"""Configured limits: an API started with small ``HERALD_*`` limits applies them, and one
without an admin token refuses app creation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.helpers import ADMIN_TOKEN, Api, auth, dump, refused, serving

LIMITS = {"HERALD_TAGS_PER_ACCOUNT": "3", "HERALD_TAG_BYTES": "5",
          "HERALD_ACCOUNTS_PER_CALL": "2", "HERALD_ACCOUNTS_PER_IMPORT": "4",
          "HERALD_ATTRIBUTES_PER_APP": "2", "HERALD_ATTRIBUTE_BYTES": "6",
          "HERALD_TERMS_PER_LIST": "2", "HERALD_AUDIENCE_ACCOUNTS": "2",
          "HERALD_AUDIENCE_REGISTRATION_IDS": "3", "HERALD_MAX_BODY_BYTES": "2000",
          "HERALD_ADMIN_TOKEN": ""}


@pytest.fixture(scope="module")
async def small(tmp_path_factory) -> AsyncIterator[Api]:
    async with serving(tmp_path_factory.mktemp("small"), "small", **LIMITS) as running:
        yield running


@pytest.fixture(scope="module")
async def client(small) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=small.url, timeout=10) as client:
        yield client


async def test_configured_limits_apply(client, app, redis_client):
    ok = await client.post("/v1/tags/add", json={"accounts": ["u1"], "tags": ["a", "b", "c"]},
                           auth=auth(app))
    assert ok.status_code == 204
    await client.put("/v1/attributes", json={"names": ["city"]}, auth=auth(app))
    before = await dump(redis_client, app.app_id)
    message = {"title": "x"}
    cases = [
        ("POST", "/v1/tags/add", {"accounts": ["u1"], "tags": ["d"]}, "too_many_tags"),
        ("POST", "/v1/tags/add", {"accounts": ["u2"], "tags": ["a", "b", "c", "d"]},
         "too_many_tags"),
        ("POST", "/v1/tags/add", {"accounts": ["u2"], "tags": ["sixsix"]}, "tag_too_long"),
        ("POST", "/v1/tags/add", {"accounts": ["u1", "u2", "u3"], "tags": ["a"]},
         "too_many_accounts"),
        ("POST", "/v1/tags/query", {"accounts": ["u1", "u2", "u3"]}, "too_many_accounts"),
        ("POST", "/v1/accounts/import", {"accounts": ["a", "b", "c", "d", "e"]},
         "too_many_accounts"),
        ("PUT", "/v1/attributes", {"names": ["level", "tier"]}, "too_many_attributes"),
        ("PUT", "/v1/attributes", {"names": ["sevenxx"]}, "attribute_too_long"),
        ("POST", "/v1/attributes/set", {"values": {"u1": {"city": "Berlin!"}}},
         "attribute_too_long"),
        ("POST", "/v1/push", {"message": message, "audience": {"accounts": ["a", "b", "c"]}},
         "too_many_accounts"),
        ("POST", "/v1/push", {"message": message, "registration_ids": ["r1", "r2", "r3", "r4"]},
         "too_many_registration_ids"),
        ("POST", "/v1/push", {"message": message,
                              "audience": {"tags": {"or": ["a", "b", "c"]}}}, "too_many_terms"),
    ]
    for method, path, body, code in cases:
        refused(await client.request(method, path, json=body, auth=auth(app)), 400, code)
    big = {"accounts": ["u1"], "tags": ["a" * 2000]}
    refused(await client.post("/v1/tags/add", json=big, auth=auth(app)), 413, "body_too_large")
    assert await dump(redis_client, app.app_id) == before
    # At the limits, calls pass.
    four = await client.post("/v1/accounts/import", json={"accounts": ["a", "b", "c", "d"]},
                             auth=auth(app))
    assert four.json() == {"new": 4}
    push = await client.post("/v1/push", json={"message": message,
                                               "registration_ids": ["r1", "r2", "r3"]},
                             auth=auth(app))
    assert push.status_code == 202


async def test_app_creation_is_off_without_an_admin_token(client, uid, redis_client):
    for headers in ({}, {"authorization": f"Bearer {ADMIN_TOKEN}"},
                    {"authorization": "Basic Zm9vOmJhcg=="}):
        response = await client.post("/v1/apps", json={"app_id": f"x-{uid}"}, headers=headers)
        refused(response, 403, "forbidden")
    assert await dump(redis_client, f"x-{uid}") == {}
