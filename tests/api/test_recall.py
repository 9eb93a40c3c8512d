"""Recall over HTTP: a recall marks the task recalled and is on ``push.recalls`` as the router
reads it; one refused (unknown, recalled already, past the window, another app's, a bad
body) is neither marked nor published."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner

from herald.task_store import Progress
from proto import topics
from proto.envelopes import RecallRequest, decode_recall_request
from proto.events import now_ms
from proto.message import Message
from tests.api.helpers import auth, dump, refused, serving
from tests.harness import TopicWatcher, end_offsets, eventually, metric, scrape

MESSAGE = {"title": "Sorry", "body": "that offer was not for you"}
WINDOW_S = 60


@pytest.fixture
async def recalls() -> AsyncIterator[TopicWatcher]:
    watcher = await TopicWatcher(topics.RECALLS).start()
    yield watcher
    await watcher.stop()


@pytest.fixture(scope="module")
async def brief_http(tmp_path_factory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an API whose recall window is a minute."""
    async with (serving(tmp_path_factory.mktemp("brief"), "brief",
                        HERALD_RECALL_WINDOW_S=str(WINDOW_S)) as brief,
                httpx.AsyncClient(base_url=brief.url, timeout=10) as client):
        yield client


def published(watcher: TopicWatcher, task_id: str) -> list[RecallRequest]:
    """The records on the topic keyed by ``task_id``, decoded."""
    return [decode_recall_request(r.value) for r in watcher.records
            if r.key == task_id.encode()]


async def keyed_alike(prefix: str, count: int) -> list[str]:
    """Task ids whose recalls all go to one partition of ``push.recalls``: a record published
    for any of them comes before one published later for another."""
    partitions = sorted(await end_offsets(topics.RECALLS))
    partition = DefaultPartitioner()

    def where(task_id: str) -> int:
        return partition(task_id.encode(), partitions, partitions)

    candidates = (f"{prefix}-{i}" for i in range(10_000))
    target = where(f"{prefix}-0")
    return [c for c in candidates if where(c) == target][:count]


async def started(store, app_id: str, task_id: str, at_ms: int) -> None:
    """A task accepted and started by a router at ``at_ms``."""
    await store.accept_task(app_id, task_id, at_ms)
    await store.record_progress([Progress(app_id, task_id, audience="registration_ids")], at_ms)


async def test_recall_is_published_and_marked(http, api, app, store, uid, recalls):
    task_id = f"task-{uid}"
    await started(store, app.app_id, task_id, now_ms() - 3_600_000)
    before = metric(scrape(api.metrics_port), "herald_api_recalls_total", outcome="recalled")
    response = await http.post(f"/v1/tasks/{task_id}/recall", json={"message": MESSAGE},
                               auth=auth(app))
    assert response.status_code == 202, response.text
    status = response.json()
    assert status["state"] == "recalled" and status["recalled_ms"] > 0
    assert status["task_id"] == task_id and status["app_id"] == app.app_id
    assert (await http.get(f"/v1/tasks/{task_id}", auth=auth(app))).json() == status
    [record] = await eventually(lambda: published(recalls, task_id), 10,
                                "the recall on push.recalls")
    assert record == RecallRequest(task_id=task_id, app_id=app.app_id,
                                   message=Message(**MESSAGE))
    line = await eventually(lambda: api.role.find("task recalled", task_id=task_id), 10,
                            "the recall's log line")
    assert line["app_id"] == app.app_id and line["replacement"] is True
    after = metric(scrape(api.metrics_port), "herald_api_recalls_total", outcome="recalled")
    assert after == before + 1


async def test_a_recall_without_a_replacement(http, app, store, uid, recalls):
    bodies = [{"content": b""}, {"json": {}}, {"json": {"message": None}},
              {"content": b"", "headers": {"content-type": "application/json"}},
              {"content": b"", "headers": {"content-type": "text/plain"}}]
    task_ids = [f"task-{uid}-{i}" for i in range(len(bodies))]
    for task_id, body in zip(task_ids, bodies, strict=True):
        await started(store, app.app_id, task_id, now_ms())
        response = await http.post(f"/v1/tasks/{task_id}/recall", auth=auth(app), **body)
        assert response.status_code == 202, (body, response.text)
    for task_id in task_ids:
        [record] = await eventually(lambda t=task_id: published(recalls, t), 10,
                                    "the recall on push.recalls")
        assert record == RecallRequest(task_id=task_id, app_id=app.app_id)


async def test_refused_recalls_are_neither_marked_nor_published(http, app, other, store, uid,
                                                                 redis_client, recalls):
    again, theirs, unknown, bad_body, witness = await keyed_alike(f"task-{uid}", 5)
    for task_id in (again, bad_body, witness):
        await started(store, app.app_id, task_id, now_ms())
    await started(store, other.app_id, theirs, now_ms())
    assert (await http.post(f"/v1/tasks/{again}/recall", auth=auth(app))).status_code == 202
    await eventually(lambda: published(recalls, again), 10, "the first recall")
    mine, others = await dump(redis_client, app.app_id), await dump(redis_client, other.app_id)

    reason = refused(await http.post(f"/v1/tasks/{again}/recall", json={"message": MESSAGE},
                                     auth=auth(app)), 409, "recalled_already")["reason"]
    assert again in reason
    refused(await http.post(f"/v1/tasks/{theirs}/recall", auth=auth(app)), 404, "unknown_task")
    refused(await http.post(f"/v1/tasks/{unknown}/recall", auth=auth(app)), 404,
            "unknown_task")
    url = f"/v1/tasks/{bad_body}/recall"
    json_type = {"content-type": "application/json"}
    for content in (b"not json", b"[]", b'{"message": ', b'{"message": {}}',
                    b'{"message": {"title": 5}}', b'{"message": {"title": "x"}, "extra": 1}',
                    b'{"replacement": {"title": "x"}}', b"null"):
        refused(await http.post(url, content=content, headers=json_type, auth=auth(app)), 400,
                "invalid_body")
    refused(await http.post(url, content=b'{"message": {"title": "x"}}', auth=auth(app),
                            headers={"content-type": "text/plain"}), 415,
            "unsupported_media_type")
    refused(await http.post(url, content=b'{"message": {"body": "' + b"x" * 600_000 + b'"}}',
                            headers=json_type, auth=auth(app)), 413, "body_too_large")
    for bad in ("has:colon", "x" * 65):
        refused(await http.post(f"/v1/tasks/{bad}/recall", auth=auth(app)), 400, "bad_task_id")
    assert await dump(redis_client, app.app_id) == mine
    assert await dump(redis_client, other.app_id) == others

    # Every refused id is on the witness's partition: had one been published, it would be
    # there before the witness.
    assert (await http.post(f"/v1/tasks/{witness}/recall", auth=auth(app))).status_code == 202
    await eventually(lambda: published(recalls, witness), 10, "the witness recall")
    for task_id in (theirs, unknown, bad_body):
        assert published(recalls, task_id) == []
    assert len(published(recalls, again)) == 1
    # The other app can still recall its own task, and the bad body's task is recallable.
    assert (await http.post(f"/v1/tasks/{theirs}/recall", auth=auth(other))).status_code == 202
    assert (await http.post(url, json={"message": MESSAGE}, auth=auth(app))).status_code == 202


async def test_a_recalled_task_cannot_be_stopped(http, app, store, uid, redis_client):
    task_id = f"task-{uid}"
    await started(store, app.app_id, task_id, now_ms())
    assert (await http.post(f"/v1/tasks/{task_id}/recall", auth=auth(app))).status_code == 202
    before = await dump(redis_client, app.app_id)
    refused(await http.post(f"/v1/tasks/{task_id}/stop", auth=auth(app)), 409, "task_stopped")
    assert await dump(redis_client, app.app_id) == before


async def test_the_recall_window(brief_http, app, store, uid, redis_client, recalls):
    late, queued_late, fresh, witness = await keyed_alike(f"task-{uid}", 4)
    long_ago = now_ms() - 2 * WINDOW_S * 1000
    await started(store, app.app_id, late, long_ago)
    # Accepted long ago and not started yet: the window runs from its acceptance.
    await store.accept_task(app.app_id, queued_late, long_ago)
    await started(store, app.app_id, fresh, now_ms())
    await started(store, app.app_id, witness, now_ms())
    before = await dump(redis_client, app.app_id)
    for task_id in (late, queued_late):
        response = await brief_http.post(f"/v1/tasks/{task_id}/recall",
                                         json={"message": MESSAGE}, auth=auth(app))
        assert f"{WINDOW_S} s" in refused(response, 409, "recall_window_passed")["reason"]
    assert await dump(redis_client, app.app_id) == before
    response = await brief_http.post(f"/v1/tasks/{fresh}/recall", auth=auth(app))
    assert response.status_code == 202 and response.json()["state"] == "recalled"
    assert (await brief_http.post(f"/v1/tasks/{witness}/recall",
                                  auth=auth(app))).status_code == 202
    await eventually(lambda: published(recalls, witness), 10, "the witness recall")
    assert published(recalls, late) == published(recalls, queued_late) == []
    assert published(recalls, fresh) == [RecallRequest(task_id=fresh, app_id=app.app_id)]
