"""Accounts and tags over HTTP: import, add, remove, clear and query, every limit (a refused
call stores nothing) and tenancy."""

from __future__ import annotations

from proto import keys
from tests.api.helpers import auth, dump, refused


async def test_import_counts_new_accounts(http, app, redis_client):
    response = await http.post("/v1/accounts/import", json={"accounts": ["a1", "a2", "a2"]},
                               auth=auth(app))
    assert response.status_code == 200 and response.json() == {"new": 2}
    again = await http.post("/v1/accounts/import", json={"accounts": ["a2", "a3"]},
                            auth=auth(app))
    assert again.json() == {"new": 1}
    members = await redis_client.smembers(keys.all_accounts(app.app_id))
    assert members == {b"a1", b"a2", b"a3"}


async def test_import_limits(http, app, redis_client):
    before = await dump(redis_client, app.app_id)
    most = [f"acc{i}" for i in range(1001)]
    refused(await http.post("/v1/accounts/import", json={"accounts": most}, auth=auth(app)),
            400, "too_many_accounts")
    refused(await http.post("/v1/accounts/import", json={"accounts": []}, auth=auth(app)),
            400, "empty")
    refused(await http.post("/v1/accounts/import", json={"accounts": ["ok", "not ok"]},
                            auth=auth(app)), 400, "bad_account")
    assert await dump(redis_client, app.app_id) == before
    full = await http.post("/v1/accounts/import", json={"accounts": most[:1000]},
                           auth=auth(app))
    assert full.json() == {"new": 1000}


async def test_add_remove_clear_and_query(http, app):
    accounts = ["u1", "u2"]
    response = await http.post("/v1/tags/add", json={"accounts": accounts,
                                                     "tags": ["vip", "北京", "beta"]},
                               auth=auth(app))
    assert response.status_code == 204
    query = await http.post("/v1/tags/query", json={"accounts": ["u1", "u2", "u3"]},
                            auth=auth(app))
    assert query.json() == {"u1": ["beta", "vip", "北京"], "u2": ["beta", "vip", "北京"],
                            "u3": []}
    await http.post("/v1/tags/remove", json={"accounts": ["u1"], "tags": ["vip", "absent"]},
                    auth=auth(app))
    query = await http.post("/v1/tags/query", json={"accounts": accounts}, auth=auth(app))
    assert query.json() == {"u1": ["beta", "北京"], "u2": ["beta", "vip", "北京"]}
    response = await http.post("/v1/tags/clear", json={"accounts": ["u2"]}, auth=auth(app))
    assert response.status_code == 204
    query = await http.post("/v1/tags/query", json={"accounts": accounts}, auth=auth(app))
    assert query.json() == {"u1": ["beta", "北京"], "u2": []}


async def test_tag_limits_store_nothing(http, app, redis_client):
    full = [f"t{i}" for i in range(100)]
    assert (await http.post("/v1/tags/add", json={"accounts": ["full"], "tags": full},
                            auth=auth(app))).status_code == 204
    # 50 bytes of UTF-8 is the longest tag: 16 three-byte characters and two bytes more.
    longest = "界" * 16 + "ab"
    assert (await http.post("/v1/tags/add", json={"accounts": ["u1"], "tags": [longest]},
                            auth=auth(app))).status_code == 204
    before = await dump(redis_client, app.app_id)
    # Only adding can take an account past its limit.
    refused(await http.post("/v1/tags/add", json={"accounts": ["full", "u1"],
                                                  "tags": ["one-more"]}, auth=auth(app)),
            400, "too_many_tags")
    cases = [
        ({"accounts": ["u1"], "tags": [f"n{i}" for i in range(101)]}, "too_many_tags"),
        ({"accounts": ["u1"], "tags": [longest + "c"]}, "tag_too_long"),
        ({"accounts": ["u1"], "tags": ["x" * 51]}, "tag_too_long"),
        ({"accounts": ["u1"], "tags": ["two words"]}, "bad_tag"),
        ({"accounts": ["u1"], "tags": ["tab\there"]}, "bad_tag"),
        ({"accounts": ["u1"], "tags": []}, "empty"),
        ({"accounts": [], "tags": ["x"]}, "empty"),
        ({"accounts": [f"a{i}" for i in range(101)], "tags": ["x"]}, "too_many_accounts"),
        ({"accounts": ["bad account"], "tags": ["x"]}, "bad_account"),
    ]
    for body, code in cases:
        for route in ("/v1/tags/add", "/v1/tags/remove"):
            refused(await http.post(route, json=body, auth=auth(app)), 400, code)
    many = {"accounts": [f"a{i}" for i in range(101)]}
    refused(await http.post("/v1/tags/clear", json=many, auth=auth(app)), 400,
            "too_many_accounts")
    refused(await http.post("/v1/tags/query", json=many, auth=auth(app)), 400,
            "too_many_accounts")
    refused(await http.post("/v1/tags/clear", json={"accounts": []}, auth=auth(app)), 400,
            "empty")
    assert await dump(redis_client, app.app_id) == before
    # A hundred accounts is the most one call may name.
    hundred = {"accounts": [f"a{i}" for i in range(100)], "tags": ["x"]}
    assert (await http.post("/v1/tags/add", json=hundred, auth=auth(app))).status_code == 204


async def test_another_apps_tags_are_out_of_reach(http, app, other, redis_client):
    await http.post("/v1/tags/add", json={"accounts": ["shared"], "tags": ["theirs"]},
                    auth=auth(other))
    before = await dump(redis_client, other.app_id)
    mine = await http.post("/v1/tags/query", json={"accounts": ["shared"]}, auth=auth(app))
    assert mine.json() == {"shared": []}
    await http.post("/v1/tags/remove", json={"accounts": ["shared"], "tags": ["theirs"]},
                    auth=auth(app))
    await http.post("/v1/tags/clear", json={"accounts": ["shared"]}, auth=auth(app))
    await http.post("/v1/tags/add", json={"accounts": ["shared"], "tags": ["mine"]},
                    auth=auth(app))
    assert await dump(redis_client, other.app_id) == before
    theirs = await http.post("/v1/tags/query", json={"accounts": ["shared"]}, auth=auth(other))
    assert theirs.json() == {"shared": ["theirs"]}
