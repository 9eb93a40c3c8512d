"""Pushes and tasks over HTTP: a valid push is on ``push.requests`` as the router reads it and
its task is queued; an invalid one is neither published nor recorded; tasks are read and
stopped within their app only."""

from __future__ import annotations

from herald.task_store import Progress
from proto.audience import Audience, TagCondition
from proto.envelopes import PushRequest
from proto.message import Message
from tests.api.helpers import auth, dump, published, refused
from tests.harness import eventually

MESSAGE = {"title": "Hello", "body": "from the API"}


async def test_push_is_published_and_queued(http, app, uid, requests_topic):
    task_id = f"task-{uid}"
    body = {"task_id": task_id, "registration_ids": ["r1", "r2"], "message": MESSAGE,
            "push_flag": 1, "lifetime_s": 3600}
    response = await http.post("/v1/push", json=body, auth=auth(app))
    assert response.status_code == 202 and response.json() == {"task_id": task_id}
    [record] = await eventually(lambda: published(requests_topic, task_id), 10,
                                "the push on push.requests")
    assert record == PushRequest(task_id=task_id, app_id=app.app_id,
                                 registration_ids=["r1", "r2"], message=Message(**MESSAGE),
                                 push_flag=1, lifetime_s=3600)
    status = await http.get(f"/v1/tasks/{task_id}", auth=auth(app))
    assert status.status_code == 200
    assert status.json()["state"] == "queued"
    assert status.json()["task_id"] == task_id and status.json()["app_id"] == app.app_id
    assert status.json()["accepted_ms"] > 0


async def test_push_without_task_id_gets_one(http, app, requests_topic):
    body = {"app_id": app.app_id, "message": MESSAGE,
            "audience": {"tags": {"and": ["vip"], "not": ["churned"]}}}
    response = await http.post("/v1/push", json=body, auth=auth(app))
    assert response.status_code == 202
    task_id = response.json()["task_id"]
    assert len(task_id) == 32 and int(task_id, 16) >= 0
    [record] = await eventually(lambda: published(requests_topic, task_id), 10,
                                "the push on push.requests")
    assert record.app_id == app.app_id
    assert record.audience == Audience(tags=TagCondition(and_=["vip"], not_=["churned"]))
    assert (await http.get(f"/v1/tasks/{task_id}", auth=auth(app))).json()["state"] == "queued"


async def test_attribute_audiences_need_declared_names(http, app, uid,
                                                      requests_topic):
    await http.put("/v1/attributes", json={"names": ["city"]}, auth=auth(app))
    task_id = f"task-{uid}"
    audience = {"attributes": {"or": [{"name": "city", "value": "Paris"},
                                      {"name": "tier", "value": "gold"}]}}
    body = {"task_id": task_id, "message": MESSAGE, "audience": audience}
    refused(await http.post("/v1/push", json=body, auth=auth(app)), 400, "unknown_attribute")
    await http.put("/v1/attributes", json={"names": ["tier"]}, auth=auth(app))
    assert (await http.post("/v1/push", json=body, auth=auth(app))).status_code == 202
    # Both went to the partition of the task id, in order: only the accepted one is there.
    [record] = await eventually(lambda: published(requests_topic, task_id), 10,
                                "the push on push.requests")
    assert record.audience is not None and record.audience.attributes is not None


async def test_invalid_pushes_are_not_published(http, app, other, uid, redis_client,
                                                requests_topic):
    valid = {"message": MESSAGE, "registration_ids": ["r1"]}

    def audience(**fields) -> dict:
        return {"message": MESSAGE, "audience": fields}

    many = [f"r{i}" for i in range(1001)]
    cases = [
        ({**valid, "lifetime_s": 7 * 24 * 3600 + 1}, 400, "invalid_push"),
        ({**valid, "lifetime_s": -1}, 400, "invalid_push"),
        ({**valid, "registration_ids": many}, 400, "invalid_push"),
        ({**valid, "registration_ids": ["bad id"]}, 400, "invalid_push"),
        ({**valid, "registration_ids": []}, 400, "invalid_push"),
        ({**valid, "audience": {"all": True}}, 400, "invalid_push"),
        ({**valid, "message": {}}, 400, "invalid_push"),
        ({**valid, "message": {"kind": "data"}}, 400, "invalid_push"),
        ({**valid, "push_flag": 2}, 400, "invalid_push"),
        ({**valid, "unknown": 1}, 400, "invalid_push"),
        (audience(registration_ids=many), 400, "too_many_registration_ids"),
        (audience(accounts=[f"u{i}" for i in range(501)]), 400, "too_many_accounts"),
        (audience(accounts=["bad account"]), 400, "bad_account"),
        (audience(tags={"or": [f"t{i}" for i in range(11)]}), 400, "too_many_terms"),
        (audience(tags={"and": ["x" * 51]}), 400, "tag_too_long"),
        (audience(tags={}), 400, "empty"),
        (audience(all=True, accounts=["u1"]), 400, "invalid_audience"),
        (audience(), 400, "invalid_audience"),
        (audience(device={"new_within_days": 0}), 400, "bad_window"),
        (audience(attributes={"and": [{"name": "x" * 51, "value": "v"}]}), 400,
         "attribute_too_long"),
        ({**valid, "app_id": other.app_id}, 403, "wrong_app"),
    ]
    before = await dump(redis_client, app.app_id)
    task_ids = [f"bad-{uid}-{i}" for i in range(len(cases))]
    for task_id, (body, status, code) in zip(task_ids, cases, strict=True):
        response = await http.post("/v1/push", json={**body, "task_id": task_id},
                                   auth=auth(app))
        refused(response, status, code)
    assert await dump(redis_client, app.app_id) == before
    # Had a refused push been published, it would come before this one in its partition; had
    # it been recorded, this one would be refused as a duplicate.
    for task_id in task_ids:
        response = await http.post("/v1/push", json={**valid, "task_id": task_id},
                                   auth=auth(app))
        assert response.status_code == 202
    await eventually(lambda: all(published(requests_topic, t) for t in task_ids), 10,
                     "the valid pushes on push.requests")
    for task_id in task_ids:
        assert [r.registration_ids for r in published(requests_topic, task_id)] == [["r1"]]


async def test_a_known_task_id_is_refused(http, app, uid, redis_client):
    task_id = f"task-{uid}"
    body = {"task_id": task_id, "message": MESSAGE, "registration_ids": ["r1"]}
    assert (await http.post("/v1/push", json=body, auth=auth(app))).status_code == 202
    before = await dump(redis_client, app.app_id)
    refused(await http.post("/v1/push", json=body, auth=auth(app)), 409, "task_exists")
    assert await dump(redis_client, app.app_id) == before


async def test_stop_a_task(http, app, uid):
    task_id = f"task-{uid}"
    await http.post("/v1/push", json={"task_id": task_id, "message": MESSAGE,
                                      "audience": {"all": True}}, auth=auth(app))
    stopped = await http.post(f"/v1/tasks/{task_id}/stop", auth=auth(app))
    assert stopped.status_code == 200
    assert stopped.json()["state"] == "stopped" and stopped.json()["stopped_ms"] > 0
    assert (await http.get(f"/v1/tasks/{task_id}", auth=auth(app))).json() == stopped.json()
    refused(await http.post(f"/v1/tasks/{task_id}/stop", auth=auth(app)), 409, "task_stopped")


async def test_a_done_task_cannot_be_stopped(http, app, store, uid, redis_client):
    task_id = f"task-{uid}"
    await store.accept_task(app.app_id, task_id, 1)
    # A router planned the whole (empty) audience: nothing is left to route.
    await store.record_progress([Progress(app.app_id, task_id, audience="all", step=0,
                                          last=True)], 2)
    assert (await http.get(f"/v1/tasks/{task_id}", auth=auth(app))).json()["state"] == "done"
    before = await dump(redis_client, app.app_id)
    refused(await http.post(f"/v1/tasks/{task_id}/stop", auth=auth(app)), 409, "task_done")
    assert await dump(redis_client, app.app_id) == before


async def test_unknown_and_malformed_tasks(http, app):
    refused(await http.get("/v1/tasks/nothing-here", auth=auth(app)), 404, "unknown_task")
    refused(await http.post("/v1/tasks/nothing-here/stop", auth=auth(app)), 404,
            "unknown_task")
    refused(await http.get("/v1/tasks/has:colon", auth=auth(app)), 400, "bad_task_id")
    refused(await http.post("/v1/tasks/has%20space/stop", auth=auth(app)), 400, "bad_task_id")


async def test_another_apps_tasks_are_out_of_reach(http, app, other, uid,
                                                  redis_client):
    task_id = f"task-{uid}"
    body = {"task_id": task_id, "message": MESSAGE, "audience": {"all": True}}
    assert (await http.post("/v1/push", json=body, auth=auth(other))).status_code == 202
    before = await dump(redis_client, other.app_id)
    refused(await http.get(f"/v1/tasks/{task_id}", auth=auth(app)), 404, "unknown_task")
    refused(await http.post(f"/v1/tasks/{task_id}/stop", auth=auth(app)), 404, "unknown_task")
    assert await dump(redis_client, other.app_id) == before
    assert (await http.get(f"/v1/tasks/{task_id}", auth=auth(other))).json()["state"] == (
        "queued")
    # The same task id is free in this app: task ids are per app.
    assert (await http.post("/v1/push", json=body, auth=auth(app))).status_code == 202


async def test_a_repeated_idempotency_key_answers_the_first_task(http, app, other, uid,
                                                                  requests_topic):
    body = {"message": MESSAGE, "registration_ids": ["r1"], "idempotency_key": f"k:{uid}"}
    first = await http.post("/v1/push", json=body, auth=auth(app))
    assert first.status_code == 202
    task_id = first.json()["task_id"]
    # Again, with and without another task id: the first task, and nothing published.
    again = await http.post("/v1/push", json=body, auth=auth(app))
    named = await http.post("/v1/push", json={**body, "task_id": f"new-{uid}"}, auth=auth(app))
    assert again.json() == named.json() == {"task_id": task_id}
    assert again.status_code == named.status_code == 202
    # Keys are per app: the other app's push with the same key is its own.
    theirs = await http.post("/v1/push", json=body, auth=auth(other))
    assert theirs.status_code == 202 and theirs.json()["task_id"] != task_id
    # A witness keyed like the refused one lands after it on the same partition.
    witness = await http.post("/v1/push", json={**body, "idempotency_key": f"w:{uid}",
                                                "task_id": f"new-{uid}-w"}, auth=auth(app))
    assert witness.status_code == 202
    await eventually(lambda: published(requests_topic, f"new-{uid}-w"), 10, "the witness")
    assert [r.idempotency_key for r in published(requests_topic, task_id)] == [f"k:{uid}"]
    assert published(requests_topic, f"new-{uid}") == []
    refused(await http.post("/v1/push", json={**body, "idempotency_key": "has space"},
                            auth=auth(app)), 400, "invalid_push")
