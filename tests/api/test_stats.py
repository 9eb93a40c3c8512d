"""Statistics over HTTP: a task's funnel, one delivery's trace and the app's daily totals, as
``herald stats`` folded them into the store; never another app's."""

from __future__ import annotations

import calendar

import msgspec
import pytest

from proto import keys
from proto.events import Channel, Event, Reason, Stage
from proto.stats import Funnel, TaskStats
from tests.api.helpers import auth, dump, refused

# 2024-03-01 12:00 UTC.
MARCH_1 = calendar.timegm((2024, 3, 1, 12, 0, 0)) * 1000
DAY_MS = 24 * 3600 * 1000


def delivery(app_id: str, task_id: str, ts_ms: int) -> list[Event]:
    """Three devices of a task: r1 (android) delivered and clicked online, r2 (android) sent
    online without an ACK, r3 (ios) without a channel."""
    def event(stage: Stage, **fields) -> Event:
        return Event(stage=stage, task_id=task_id, app_id=app_id, ts_ms=ts_ms, **fields)

    return [
        event(Stage.TARGETED, registration_ids=["r1", "r2"], platform="android"),
        event(Stage.TARGETED, registration_id="r3", platform="ios"),
        event(Stage.SENDABLE, registration_ids=["r1", "r2"], channel=Channel.ONLINE),
        event(Stage.SENT, registration_ids=["r1", "r2"], channel=Channel.ONLINE, node="n1"),
        event(Stage.DELIVERED, registration_id="r1", channel=Channel.ONLINE, node="n1"),
        event(Stage.CLICKED, registration_id="r1", channel=Channel.ONLINE, node="n1"),
        event(Stage.FAILED, registration_id="r2", channel=Channel.ONLINE,
              reason=Reason.ACK_TIMEOUT, node="n1"),
        event(Stage.FAILED, registration_id="r3", reason=Reason.NO_CHANNEL),
    ]


@pytest.fixture
async def counted(store, app, uid) -> str:
    """A task of ``app`` whose events are counted."""
    task_id = f"task-{uid}"
    await store.accept_task(app.app_id, task_id, MARCH_1)
    await store.fold(delivery(app.app_id, task_id, MARCH_1), keys.TRACE_TTL_S)
    return task_id


async def test_task_stats_are_the_counted_funnel(http, app, store, counted):
    response = await http.get(f"/v1/tasks/{counted}/stats", auth=auth(app))
    assert response.status_code == 200
    body = response.json()
    assert body == msgspec.to_builtins(await store.task_stats(app.app_id, counted))
    assert (body["task_id"], body["app_id"]) == (counted, app.app_id)
    assert body["funnel"] == {"targeted": 3, "sendable": 2, "sent": 2, "delivered": 1,
                              "clicked": 1, "send_rate": 1.0, "delivery_rate": 0.5,
                              "click_rate": 1.0}
    assert body["platforms"]["android"]["delivered"] == 1
    assert body["platforms"]["ios"]["targeted"] == 1 and body["platforms"]["ios"]["sent"] == 0
    assert body["channels"]["online"]["sent"] == 2
    assert body["lost"] == {"ack_timeout": 1, "no_channel": 1}
    assert body["losses"] == {"online": {"ack_timeout": 1}, "routing": {"no_channel": 1}}


async def test_a_task_without_events_has_a_zero_funnel(http, app, store, uid):
    task_id = f"task-{uid}"
    await store.accept_task(app.app_id, task_id, MARCH_1)
    response = await http.get(f"/v1/tasks/{task_id}/stats", auth=auth(app))
    assert response.status_code == 200
    assert response.json() == msgspec.to_builtins(
        TaskStats(task_id=task_id, app_id=app.app_id, funnel=Funnel()))


async def test_trace_is_every_hop_oldest_first(http, app, store, counted):
    response = await http.get(f"/v1/tasks/{counted}/trace/r1", auth=auth(app))
    assert response.status_code == 200
    body = response.json()
    assert body == msgspec.to_builtins(await store.trace(app.app_id, counted, "r1"))
    assert (body["registration_id"], body["platform"]) == ("r1", "android")
    assert [(h["stage"], h["channel"]) for h in body["hops"]] == [
        ("targeted", "routing"), ("sendable", "online"), ("sent", "online"),
        ("delivered", "online"), ("clicked", "online")]
    assert body["hops"][3]["node"] == "n1"
    failed = (await http.get(f"/v1/tasks/{counted}/trace/r3", auth=auth(app))).json()
    assert failed["hops"][-1] == {"stage": "failed", "channel": "routing", "ts_ms": MARCH_1,
                                  "node": "", "reason": "no_channel"}


async def test_unknown_and_malformed_stats_and_traces(http, app, counted, redis_client):
    before = await dump(redis_client, app.app_id)
    refused(await http.get("/v1/tasks/nothing-here/stats", auth=auth(app)), 404,
            "unknown_task")
    refused(await http.get(f"/v1/tasks/{counted}/trace/nobody", auth=auth(app)), 404,
            "unknown_trace")
    refused(await http.get("/v1/tasks/nothing-here/trace/r1", auth=auth(app)), 404,
            "unknown_trace")
    for bad in ("has:colon", "x" * 65, "%20"):
        refused(await http.get(f"/v1/tasks/{bad}/stats", auth=auth(app)), 400, "bad_task_id")
        refused(await http.get(f"/v1/tasks/{bad}/trace/r1", auth=auth(app)), 400,
                "bad_task_id")
        refused(await http.get(f"/v1/tasks/{counted}/trace/{bad}", auth=auth(app)), 400,
                "bad_registration_id")
    assert await dump(redis_client, app.app_id) == before


def zero_day(day: str) -> dict:
    return {"day": day, "stages": {stage.value: 0 for stage in Stage}}


async def test_daily_totals_for_each_day(http, app, store, uid):
    await store.fold(delivery(app.app_id, f"a-{uid}", MARCH_1), keys.TRACE_TTL_S)
    await store.fold(delivery(app.app_id, f"b-{uid}", MARCH_1 + 2 * DAY_MS)[:3],
                     keys.TRACE_TTL_S)
    response = await http.get("/v1/stats/daily", params={"from": "2024-02-29", "to": "2024-03-03"},
                              auth=auth(app))
    assert response.status_code == 200
    days = response.json()["days"]
    assert [d["day"] for d in days] == ["2024-02-29", "2024-03-01", "2024-03-02", "2024-03-03"]
    assert days[0] == zero_day("2024-02-29") and days[2] == zero_day("2024-03-02")
    stored = await store.daily(app.app_id, ["2024-03-01", "2024-03-03"])
    assert days[1]["stages"] == {**zero_day("")["stages"], **stored["2024-03-01"]}
    assert days[1]["stages"]["targeted"] == 3 and days[1]["stages"]["clicked"] == 1
    assert days[1]["stages"]["failed"] == 2
    assert days[3]["stages"]["targeted"] == 3 and days[3]["stages"]["sendable"] == 2
    assert days[3]["stages"]["sent"] == 0
    one = await http.get("/v1/stats/daily", params={"from": "2024-03-01", "to": "2024-03-01"},
                         auth=auth(app))
    assert one.json() == {"days": [days[1]]}
    # A quarter is the longest range.
    longest = await http.get("/v1/stats/daily",
                             params={"from": "2024-01-01", "to": "2024-03-31"}, auth=auth(app))
    assert len(longest.json()["days"]) == 91 and longest.json()["days"][60] == days[1]
    full = await http.get("/v1/stats/daily", params={"from": "2024-01-01", "to": "2024-04-01"},
                          auth=auth(app))
    assert len(full.json()["days"]) == 92


async def test_bad_daily_ranges(http, app, redis_client):
    before = await dump(redis_client, app.app_id)
    cases = [
        ({"to": "2024-03-01"}, "invalid_query"),
        ({"from": "2024-03-01"}, "invalid_query"),
        ({}, "invalid_query"),
        ({"from": "2024-02-30", "to": "2024-03-01"}, "bad_date"),
        ({"from": "2024-3-1", "to": "2024-03-01"}, "bad_date"),
        ({"from": "20240301", "to": "2024-03-01"}, "bad_date"),
        ({"from": "0", "to": "2024-03-01"}, "bad_date"),
        ({"from": "2024-03-01T00:00:00", "to": "2024-03-01"}, "bad_date"),
        ({"from": "2024-03-01", "to": "yesterday"}, "bad_date"),
        ({"from": "2024-03-01", "to": ""}, "bad_date"),
        ({"from": "2024-03-02", "to": "2024-03-01"}, "bad_range"),
        ({"from": "2024-01-01", "to": "2024-04-02"}, "bad_range"),
        ({"from": "2000-01-01", "to": "2024-04-02"}, "bad_range"),
    ]
    for params, code in cases:
        response = await http.get("/v1/stats/daily", params=params, auth=auth(app))
        reason = refused(response, 400, code)["reason"]
        if code == "invalid_query":
            assert "query" in reason, reason
    assert await dump(redis_client, app.app_id) == before


async def test_another_apps_stats_are_out_of_reach(http, app, other, store, uid, redis_client):
    task_id = f"task-{uid}"
    await store.accept_task(other.app_id, task_id, MARCH_1)
    await store.fold(delivery(other.app_id, task_id, MARCH_1), keys.TRACE_TTL_S)
    before = await dump(redis_client, other.app_id)
    refused(await http.get(f"/v1/tasks/{task_id}/stats", auth=auth(app)), 404, "unknown_task")
    refused(await http.get(f"/v1/tasks/{task_id}/trace/r1", auth=auth(app)), 404,
            "unknown_trace")
    mine = await http.get("/v1/stats/daily", params={"from": "2024-03-01", "to": "2024-03-01"},
                          auth=auth(app))
    assert mine.json() == {"days": [zero_day("2024-03-01")]}
    assert await dump(redis_client, other.app_id) == before
    theirs = await http.get(f"/v1/tasks/{task_id}/stats", auth=auth(other))
    assert theirs.json()["funnel"]["targeted"] == 3
    theirs = await http.get("/v1/stats/daily", params={"from": "2024-03-01", "to": "2024-03-01"},
                            auth=auth(other))
    assert theirs.json()["days"][0]["stages"]["targeted"] == 3
