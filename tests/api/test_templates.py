"""Templates over HTTP: create, list, read, replace, delete within the app only, every refusal
storing nothing; a push naming a template is published with its message filled in, and a push
whose template does not fit is refused before anything is claimed, stored or published."""

from __future__ import annotations

import pytest

from proto.envelopes import PushRequest
from proto.limits import MAX_TEMPLATES, MAX_TITLE
from proto.message import Localized, Message
from proto.templates import Template
from tests.api.helpers import auth, dump, published, refused
from tests.harness import eventually

TEMPLATE = {
    "template_id": "order-shipped",
    "message": {"title": "Order {{order}} shipped", "body": "Hi {{name}}, it arrives {{day}}",
                "data": {"order": "{{order}}"},
                "locales": {"de": {"title": "Bestellung {{order}} versandt",
                                   "body": "Hallo {{name}}, sie kommt {{day}}"}}},
    "variables": {"order": {}, "name": {"default": "there"}, "day": {"default": "soon"}},
}


async def create(http, app, body: dict = TEMPLATE) -> dict:
    response = await http.post("/v1/templates", json=body, auth=auth(app))
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_read_list_replace_delete(http, app):
    assert await create(http, app) == TEMPLATE
    second = {"template_id": "a-first", "message": {"body": "{{x}}"}, "variables": {"x": {}}}
    await create(http, app, second)
    got = await http.get("/v1/templates/order-shipped", auth=auth(app))
    assert got.status_code == 200 and got.json() == TEMPLATE
    listed = await http.get("/v1/templates", auth=auth(app))
    assert listed.json() == {"templates": [second, TEMPLATE]}
    content = {"message": {"title": "Shipped: {{order}}"}, "variables": {"order": {}}}
    replaced = await http.put("/v1/templates/order-shipped", json=content, auth=auth(app))
    assert replaced.status_code == 200
    assert replaced.json() == {"template_id": "order-shipped", **content}
    got = await http.get("/v1/templates/order-shipped", auth=auth(app))
    assert got.json() == {"template_id": "order-shipped", **content}
    assert (await http.delete("/v1/templates/order-shipped", auth=auth(app))).status_code == 204
    refused(await http.get("/v1/templates/order-shipped", auth=auth(app)), 404,
            "unknown_template")
    assert (await http.get("/v1/templates", auth=auth(app))).json() == {"templates": [second]}


async def test_refused_template_calls_store_nothing(http, app, redis_client):
    await create(http, app)
    too_long = {**TEMPLATE, "template_id": "long", "message": {"title": "x" * (MAX_TITLE + 1)}}
    cases = [
        ("post", "/v1/templates", TEMPLATE, 409, "template_exists"),
        ("post", "/v1/templates", {**TEMPLATE, "template_id": "new",
                                   "variables": {"order": {}}}, 400, "undeclared_placeholder"),
        ("post", "/v1/templates", {**TEMPLATE, "template_id": "bad id"}, 400,
         "invalid_template"),
        ("post", "/v1/templates", {**TEMPLATE, "template_id": "new",
                                   "variables": {"9lives": {}}}, 400, "invalid_template"),
        ("post", "/v1/templates", {**TEMPLATE, "template_id": "new",
                                   "variables": {"order": {"default": [1]}}}, 400,
         "invalid_template"),
        ("post", "/v1/templates", {**TEMPLATE, "template_id": "new", "extra": 1}, 400,
         "invalid_template"),
        ("post", "/v1/templates", {"template_id": "new"}, 400, "invalid_template"),
        ("post", "/v1/templates", too_long, 400, "invalid_template"),
        ("put", "/v1/templates/order-shipped", {"message": {"title": "{{nope}}"}}, 400,
         "undeclared_placeholder"),
        ("put", "/v1/templates/order-shipped", {"message": {}}, 400, "invalid_template"),
        ("put", "/v1/templates/order-shipped", TEMPLATE, 400, "invalid_template"),
        ("put", "/v1/templates/missing", {"message": {"title": "x"}}, 404, "unknown_template"),
        ("put", "/v1/templates/bad%20id", {"message": {"title": "x"}}, 400, "bad_template_id"),
        ("delete", "/v1/templates/missing", None, 404, "unknown_template"),
        ("delete", "/v1/templates/bad%20id", None, 400, "bad_template_id"),
        ("get", "/v1/templates/bad%20id", None, 400, "bad_template_id"),
    ]
    before = await dump(redis_client, app.app_id)
    for method, path, body, status, code in cases:
        response = await http.request(method, path, json=body, auth=auth(app))
        refused(response, status, code)
    text = await http.post("/v1/templates", content=b"{}", auth=auth(app),
                           headers={"content-type": "text/plain"})
    refused(text, 415, "unsupported_media_type")
    assert await dump(redis_client, app.app_id) == before
    # The API still serves the app.
    got = await http.get("/v1/templates/order-shipped", auth=auth(app))
    assert got.status_code == 200 and got.json() == TEMPLATE


async def test_an_app_keeps_at_most_max_templates(http, app, store, redis_client):
    one = Template(template_id="t", message=Message(title="x"))
    for n in range(MAX_TEMPLATES):
        await store.add_template(app.app_id, Template(template_id=f"t{n:04}",
                                                      message=one.message), MAX_TEMPLATES)
    before = await dump(redis_client, app.app_id)
    refused(await http.post("/v1/templates", json={**TEMPLATE, "template_id": "more"},
                            auth=auth(app)), 409, "too_many_templates")
    assert await dump(redis_client, app.app_id) == before
    assert (await http.delete("/v1/templates/t0000", auth=auth(app))).status_code == 204
    await create(http, app, {**TEMPLATE, "template_id": "more"})


async def test_templates_are_out_of_other_apps_reach(http, app, other, uid, redis_client,
                                                    requests_topic):
    await create(http, app)
    before = await dump(redis_client, app.app_id)
    refused(await http.get("/v1/templates/order-shipped", auth=auth(other)), 404,
            "unknown_template")
    refused(await http.put("/v1/templates/order-shipped", json={"message": {"title": "x"}},
                           auth=auth(other)), 404, "unknown_template")
    refused(await http.delete("/v1/templates/order-shipped", auth=auth(other)), 404,
            "unknown_template")
    assert (await http.get("/v1/templates", auth=auth(other))).json() == {"templates": []}
    push = {"task_id": f"cross-{uid}", "registration_ids": ["r1"],
            "template": {"template_id": "order-shipped", "variables": {"order": "1"}}}
    refused(await http.post("/v1/push", json=push, auth=auth(other)), 404, "unknown_template")
    assert await dump(redis_client, app.app_id) == before
    # The other app can have a template of the same id, apart from the first app's.
    await create(http, other, {"template_id": "order-shipped", "message": {"title": "mine"}})
    got = await http.get("/v1/templates/order-shipped", auth=auth(app))
    assert got.json() == TEMPLATE


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/v1/templates"), ("get", "/v1/templates"), ("get", "/v1/templates/x"),
    ("put", "/v1/templates/x"), ("delete", "/v1/templates/x")])
async def test_template_calls_need_credentials(http, app, method, path):
    refused(await http.request(method, path, json=TEMPLATE), 401, "unauthorized")
    wrong = (app.app_id, "not-the-secret")
    refused(await http.request(method, path, json=TEMPLATE, auth=wrong), 401, "unauthorized")


async def test_a_templated_push_is_published_filled_in(http, app, uid, requests_topic):
    await create(http, app)
    task_id = f"task-{uid}"
    body = {"task_id": task_id, "registration_ids": ["r1"], "lifetime_s": 60,
            "template": {"template_id": "order-shipped",
                         "variables": {"order": 1234, "name": "Ann"}}}
    response = await http.post("/v1/push", json=body, auth=auth(app))
    assert response.status_code == 202 and response.json() == {"task_id": task_id}
    [record] = await eventually(lambda: published(requests_topic, task_id), 10,
                                "the push on push.requests")
    assert record == PushRequest(
        task_id=task_id, app_id=app.app_id, registration_ids=["r1"], lifetime_s=60,
        message=Message(title="Order 1234 shipped", body="Hi Ann, it arrives soon",
                        data={"order": "1234"},
                        locales={"de": Localized(title="Bestellung 1234 versandt",
                                                 body="Hallo Ann, sie kommt soon")}))
    status = await http.get(f"/v1/tasks/{task_id}", auth=auth(app))
    assert status.json()["state"] == "queued"
    # A template changed afterwards changes no push accepted before.
    await http.put("/v1/templates/order-shipped", json={"message": {"title": "new"}},
                   auth=auth(app))
    assert published(requests_topic, task_id)[0].message == record.message


async def test_a_push_whose_template_does_not_fit_is_refused_and_stores_nothing(
        http, app, uid, redis_client, requests_topic):
    await create(http, app)
    ref = {"template_id": "order-shipped", "variables": {"order": "7"}}

    def push(**template) -> dict:
        return {"registration_ids": ["r1"], "idempotency_key": f"key-{uid}",
                "template": {**ref, **template}}

    cases = [
        (push(template_id="nope"), 404, "unknown_template"),
        (push(variables={}), 400, "missing_variable"),
        (push(variables={"order": "7", "colour": "red"}), 400, "unknown_variable"),
        (push(variables={"order": True}), 400, "bad_variable"),
        (push(variables={"order": None}), 400, "bad_variable"),
        (push(variables={"order": {"a": 1}}), 400, "bad_variable"),
        (push(variables={"order": "x" * 1025}), 400, "bad_variable"),
        (push(variables={"order": "x" * MAX_TITLE}), 400, "rendered_invalid"),
        (push(template_id="bad id"), 400, "invalid_push"),
        ({**push(), "message": {"title": "both"}}, 400, "invalid_push"),
        ({"registration_ids": ["r1"]}, 400, "invalid_push"),
    ]
    before = await dump(redis_client, app.app_id)
    task_ids = [f"bad-{uid}-{i}" for i in range(len(cases))]
    for task_id, (body, status, code) in zip(task_ids, cases, strict=True):
        response = await http.post("/v1/push", json={**body, "task_id": task_id},
                                   auth=auth(app))
        reason = refused(response, status, code)["reason"]
        if code in ("missing_variable", "unknown_variable", "bad_variable"):
            assert "'order'" in reason or "'colour'" in reason, reason
    assert await dump(redis_client, app.app_id) == before
    # Nothing was claimed: the idempotency key is free, and each task id is new; had a
    # refused push been published, it would come first in its task's partition.
    for task_id in task_ids:
        response = await http.post("/v1/push", json={**push(), "task_id": task_id,
                                                     "idempotency_key": f"k-{task_id}"},
                                   auth=auth(app))
        assert response.status_code == 202, response.text
    response = await http.post("/v1/push", json={**push(), "task_id": f"good-{uid}"},
                               auth=auth(app))
    assert response.json() == {"task_id": f"good-{uid}"}
    await eventually(lambda: all(published(requests_topic, t) for t in task_ids), 10,
                     "the valid pushes on push.requests")
    for task_id in task_ids:
        [record] = published(requests_topic, task_id)
        assert record.message is not None and record.message.title == "Order 7 shipped"

