"""Push records over HTTP: the app's tasks of a time range, newest first, with their status and
funnels, filtered by audience and state; never another app's."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import pytest

from herald.task_store import Progress
from proto import keys
from proto.events import Event, Stage, now_ms
from proto.stats import Funnel
from tests.api.helpers import auth, dump, refused

DAY_MS = 24 * 3600 * 1000


@dataclass
class Tasks:
    """Tasks of one app in every state, by state; ``now`` is when they were made."""

    now: int
    ids: dict[str, str]


@pytest.fixture
async def tasks(store, app, uid) -> Tasks:
    """Five tasks accepted a second apart (queued first, recalled last) and one a week and a
    day old; the running one has counted events."""
    now = now_ms()
    ids = {state: f"{state}-{uid}" for state in
           ("queued", "running", "done", "stopped", "recalled", "old")}
    a = app.app_id
    for i, state in enumerate(("queued", "running", "done", "stopped", "recalled")):
        await store.accept_task(a, ids[state], now - (5 - i) * 1000)
    await store.accept_task(a, ids["old"], now - 8 * DAY_MS)
    await store.record_progress([
        Progress(a, ids["running"], audience="all"),
        Progress(a, ids["done"], audience="registration_ids", step=0, last=True),
        Progress(a, ids["stopped"], audience="accounts"),
        Progress(a, ids["recalled"], audience="filter"),
        Progress(a, ids["old"], audience="all"),
    ], now)
    await store.stop_task(a, ids["stopped"], now)
    await store.recall_task(a, ids["recalled"], now, 60_000)
    await store.fold([
        Event(stage=Stage.TARGETED, task_id=ids["running"], app_id=a, platform="ios",
              registration_ids=["r1", "r2"], ts_ms=now),
        Event(stage=Stage.SENDABLE, task_id=ids["running"], app_id=a, channel="apns",
              registration_id="r1", ts_ms=now),
    ], keys.TRACE_TTL_S)
    return Tasks(now, ids)


async def listed(http, app, **params) -> list[dict]:
    response = await http.get("/v1/tasks", params=params, auth=auth(app))
    assert response.status_code == 200, response.text
    return response.json()["records"]


def ids_of(records: list[dict]) -> list[str]:
    return [record["task_id"] for record in records]


async def test_records_are_newest_first_with_status_and_funnels(http, app, store, tasks):
    records = await listed(http, app)
    ids = tasks.ids
    assert ids_of(records) == [ids[s] for s in ("recalled", "stopped", "done", "running",
                                                "queued")]
    for record in records:
        status = await store.task_status(app.app_id, record["task_id"])
        stats = await store.task_stats(app.app_id, record["task_id"])
        funnels = {"funnel": Funnel(), "platforms": {}} if stats is None else {
            "funnel": stats.funnel, "platforms": stats.platforms}
        assert record == msgspec.to_builtins({**msgspec.structs.asdict(status), **funnels})
        assert record["state"] == next(s for s, i in ids.items() if i == record["task_id"])
    running = records[3]
    assert running["audience"] == "all" and running["started_ms"] == tasks.now
    assert running["funnel"]["targeted"] == 2 and running["funnel"]["sendable"] == 1
    assert running["platforms"] == {"ios": {**running["funnel"]}}


async def test_ranges_limits_and_filters(http, app, tasks):
    ids, now = tasks.ids, tasks.now
    assert ids_of(await listed(http, app, limit=2)) == [ids["recalled"], ids["stopped"]]
    assert ids_of(await listed(http, app, since_ms=now - 4500, until_ms=now - 2500)) == [
        ids["done"], ids["running"]]
    # The default range ends now and starts a week before its end.
    assert ids_of(await listed(http, app, until_ms=now - 4500)) == [ids["queued"]]
    everything = await listed(http, app, since_ms=now - 9 * DAY_MS)
    assert ids_of(everything)[-1] == ids["old"] and len(everything) == 6
    for state in ("queued", "running", "done", "stopped", "recalled"):
        assert ids_of(await listed(http, app, state=state)) == [ids[state]]
    assert ids_of(await listed(http, app, audience="accounts")) == [ids["stopped"]]
    assert ids_of(await listed(http, app, audience="all")) == [ids["running"]]
    assert ids_of(await listed(http, app, audience="all", since_ms=0)) == [ids["running"],
                                                                           ids["old"]]
    assert ids_of(await listed(http, app, audience="filter", state="recalled")) == [
        ids["recalled"]]
    assert await listed(http, app, audience="all", state="done") == []
    assert ids_of(await listed(http, app, audience="registration_ids", limit=1)) == [
        ids["done"]]
    assert await listed(http, app, since_ms=now + 1) == []


async def test_bad_parameters(http, app, tasks, redis_client):
    before = await dump(redis_client, app.app_id)
    cases = [
        ({"limit": 0}, "invalid_query"),
        ({"limit": 501}, "invalid_query"),
        ({"limit": "ten"}, "invalid_query"),
        ({"limit": ""}, "invalid_query"),
        ({"since_ms": -1}, "invalid_query"),
        ({"until_ms": "yesterday"}, "invalid_query"),
        ({"until_ms": 2**53 + 1}, "invalid_query"),
        ({"since_ms": "1.5"}, "invalid_query"),
        ({"state": "sleeping"}, "invalid_query"),
        ({"audience": "tags"}, "invalid_query"),
        ({"audience": ""}, "invalid_query"),
        ({"since_ms": tasks.now, "until_ms": tasks.now - 1}, "bad_range"),
        ({"since_ms": tasks.now + DAY_MS}, "bad_range"),
    ]
    for params, code in cases:
        response = await http.get("/v1/tasks", params=params, auth=auth(app))
        reason = refused(response, 400, code)["reason"]
        if code == "invalid_query":
            assert f"query.{next(iter(params))}" in reason, reason
    assert await dump(redis_client, app.app_id) == before
    assert len(await listed(http, app, limit=500)) == 5


async def test_another_apps_records_are_out_of_reach(http, other, tasks, redis_client, store,
                                                     uid):
    # ``tasks`` belong to ``app``; ``other`` has one task of its own.
    await store.accept_task(other.app_id, f"mine-{uid}", tasks.now)
    before = await dump(redis_client, other.app_id)
    assert ids_of(await listed(http, other, since_ms=0)) == [f"mine-{uid}"]
    assert ids_of(await listed(http, other, state="running")) == []
    assert await dump(redis_client, other.app_id) == before
