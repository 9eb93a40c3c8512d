"""Attributes over HTTP: declare, list, set, query and remove, every limit (a refused call
stores nothing) and tenancy."""

from __future__ import annotations

from tests.api.helpers import auth, dump, refused


async def test_declare_set_query_remove(http, app):
    response = await http.put("/v1/attributes", json={"names": ["city", "level"]},
                              auth=auth(app))
    assert response.status_code == 200 and response.json() == {"names": ["city", "level"]}
    again = await http.put("/v1/attributes", json={"names": ["age", "city"]}, auth=auth(app))
    assert again.json() == {"names": ["age", "city", "level"]}
    assert (await http.get("/v1/attributes", auth=auth(app))).json() == {
        "names": ["age", "city", "level"]}

    values = {"u1": {"city": "New York", "level": "3"}, "u2": {"city": "深圳"}}
    response = await http.post("/v1/attributes/set", json={"values": values}, auth=auth(app))
    assert response.status_code == 204
    query = await http.post("/v1/attributes/query", json={"accounts": ["u1", "u2", "u3"]},
                            auth=auth(app))
    assert query.json() == {**values, "u3": {}}

    await http.post("/v1/attributes/set", json={"values": {"u1": {"city": "Paris"}}},
                    auth=auth(app))
    response = await http.post("/v1/attributes/remove",
                               json={"accounts": ["u1", "u2"], "names": ["level"]},
                               auth=auth(app))
    assert response.status_code == 204
    query = await http.post("/v1/attributes/query", json={"accounts": ["u1", "u2"]},
                            auth=auth(app))
    assert query.json() == {"u1": {"city": "Paris"}, "u2": {"city": "深圳"}}


async def test_attribute_limits_store_nothing(http, app, redis_client):
    ten = [f"n{i}" for i in range(10)]
    assert (await http.put("/v1/attributes", json={"names": ten[:9]},
                           auth=auth(app))).status_code == 200
    before = await dump(redis_client, app.app_id)
    declares = [
        ({"names": [*ten[9:], "eleventh"]}, "too_many_attributes"),
        ({"names": [f"m{i}" for i in range(11)]}, "too_many_attributes"),
        ({"names": ["a" * 51]}, "attribute_too_long"),
        ({"names": ["9starts-with-digit"]}, "bad_attribute_name"),
        ({"names": ["has:colon"]}, "bad_attribute_name"),
        ({"names": []}, "empty"),
    ]
    for body, code in declares:
        refused(await http.put("/v1/attributes", json=body, auth=auth(app)), 400, code)
    sets = [
        ({"u1": {"n0": "v" * 51}}, "attribute_too_long"),
        ({"u1": {"n0": " padded"}}, "bad_attribute_value"),
        ({"u1": {"n0": "line\nbreak"}}, "bad_attribute_value"),
        ({"u1": {"n0": "ok", "undeclared": "x"}}, "unknown_attribute"),
        ({"u1": {}}, "empty"),
        ({}, "empty"),
        ({f"a{i}": {"n0": "x"} for i in range(101)}, "too_many_accounts"),
        ({"bad account": {"n0": "x"}}, "bad_account"),
    ]
    for values, code in sets:
        refused(await http.post("/v1/attributes/set", json={"values": values},
                                auth=auth(app)), 400, code)
    removals = [
        ({"accounts": ["u1"], "names": ["undeclared"]}, "unknown_attribute"),
        ({"accounts": [f"a{i}" for i in range(101)], "names": ["n0"]}, "too_many_accounts"),
        ({"accounts": ["u1"], "names": []}, "empty"),
    ]
    for body, code in removals:
        refused(await http.post("/v1/attributes/remove", json=body, auth=auth(app)), 400, code)
    refused(await http.post("/v1/attributes/query",
                            json={"accounts": [f"a{i}" for i in range(101)]}, auth=auth(app)),
            400, "too_many_accounts")
    assert await dump(redis_client, app.app_id) == before
    # The tenth name and a value of 50 bytes are within the limits.
    assert (await http.put("/v1/attributes", json={"names": ten[9:]},
                           auth=auth(app))).status_code == 200
    assert (await http.post("/v1/attributes/set", json={"values": {"u1": {"n0": "v" * 50}}},
                            auth=auth(app))).status_code == 204


async def test_another_apps_attributes_are_out_of_reach(http, app, other, redis_client):
    await http.put("/v1/attributes", json={"names": ["secret"]}, auth=auth(other))
    await http.post("/v1/attributes/set", json={"values": {"shared": {"secret": "theirs"}}},
                    auth=auth(other))
    before = await dump(redis_client, other.app_id)
    assert (await http.get("/v1/attributes", auth=auth(app))).json() == {"names": []}
    mine = await http.post("/v1/attributes/query", json={"accounts": ["shared"]},
                           auth=auth(app))
    assert mine.json() == {"shared": {}}
    refused(await http.post("/v1/attributes/set",
                            json={"values": {"shared": {"secret": "mine"}}}, auth=auth(app)),
            400, "unknown_attribute")
    refused(await http.post("/v1/attributes/remove",
                            json={"accounts": ["shared"], "names": ["secret"]}, auth=auth(app)),
            400, "unknown_attribute")
    assert await dump(redis_client, other.app_id) == before
