"""The shared sender loop, as a real `herald vendor sandbox` process on the real Kafka."""

from __future__ import annotations

from herald.redis_store import RedisStore
from proto import topics
from proto.envelopes import DeviceRecord, VendorJob, VendorTarget, encode_internal
from proto.events import decode_event
from proto.message import Message
from tests.harness import (
    REDIS,
    Role,
    TopicWatcher,
    eventually,
    eventually_async,
    free_port,
    metric,
    scrape,
)


def _job(task: str, *tokens: str) -> bytes:
    return encode_internal(VendorJob(
        app_id="app", task_id=task, msg_id=task, message=Message(title="hi"),
        targets=[VendorTarget(f"rid-{t}", t) for t in tokens]))


def _stages(watcher: TopicWatcher, task: str) -> list[tuple[str, str, str]]:
    events = [decode_event(r.value) for r in watcher.records]
    return sorted((e.registration_id, e.stage, e.reason) for e in events if e.task_id == task)


async def test_retries_then_outcomes_and_dead_letters(producer, redis_client, sandbox, logdir,
                                                      uid):
    store = RedisStore(REDIS)
    await store.put_device("app", f"rid-bad-{uid}",
                           DeviceRecord(platform="android", vendor="sandbox",
                                        vendor_token=f"bad-{uid}"))
    events = await TopicWatcher(topics.EVENTS).start()
    dead = await TopicWatcher(topics.DEADLETTER).start()
    metrics_port = free_port()
    sender = Role(["vendor", "sandbox"], {
        "HERALD_SANDBOX_URL": sandbox.url, "HERALD_METRICS_PORT": str(metrics_port),
        "HERALD_MAX_ATTEMPTS": "3", "HERALD_BACKOFF_BASE_S": "0.01"}, logdir / "vendor.log")
    topic = topics.vendor_topic("sandbox")
    try:
        await sender.wait_log("partitions assigned")
        # 429 then 500 then success: two retries, then per-device outcomes.
        sandbox.statuses = [429, 500]
        sandbox.invalid_tokens = {f"bad-{uid}"}
        retried = f"retry-{uid}"
        await producer.send_and_wait(topic, _job(retried, f"ok-{uid}", f"bad-{uid}"))
        assert await eventually(lambda: len(_stages(events, retried)) == 2 and
                                _stages(events, retried), 20, "outcomes") == [
            (f"rid-bad-{uid}", "failed", "token_invalid"), (f"rid-ok-{uid}", "sent", "")]
        assert len([r for r in sandbox.requests if r["task_id"] == retried]) == 3

        async def token_forgotten() -> bool:
            record = await store.get_device("app", f"rid-bad-{uid}")
            return record == DeviceRecord(platform="android")

        # The invalid token is removed from its device, which then has no vendor channel.
        await eventually_async(token_forgotten, 10, "the invalid token to be removed")

        # Failing every attempt: the job is parked with its reason, every device failed.
        sandbox.statuses = [500, 500, 500]
        parked = f"park-{uid}"
        await producer.send_and_wait(topic, _job(parked, f"x-{uid}"))
        assert await eventually(lambda: _stages(events, parked), 20, "failure") == [
            (f"rid-x-{uid}", "failed", "vendor_error")]
        # An undecodable job is parked too, and the partition keeps flowing.
        await producer.send_and_wait(topic, b"\x93 garbage", key=b"k")
        after = f"after-{uid}"
        await producer.send_and_wait(topic, _job(after, f"y-{uid}"), key=b"k")
        assert await eventually(lambda: _stages(events, after), 20, "the job after garbage") == [
            (f"rid-y-{uid}", "sent", "")]
        reasons = await eventually(lambda: len(dead.records) >= 2 and [
            dict(r.headers)[topics.DL_REASON].decode() for r in dead.records], 20, "dead letters")
        assert reasons[0].startswith("vendor_error: HTTP 500")
        assert reasons[0].endswith("(after 3 attempts)")
        assert reasons[1].startswith("invalid vendor job")

        text = scrape(metrics_port)
        assert metric(text, "herald_vendor_retries_total", vendor="sandbox") == 4
        assert metric(text, "herald_vendor_dead_letters_total", vendor="sandbox") == 2
        assert metric(text, "herald_vendor_sends_total", vendor="sandbox",
                      result="token_invalid") == 1
        assert metric(text, "herald_vendor_tokens_invalidated_total", vendor="sandbox") == 1
        assert metric(text, "herald_vendor_requests_total", vendor="sandbox", app="app",
                      result="TransientError") == 4
        assert metric(text, "herald_vendor_rate_limit_waits_total", vendor="sandbox",
                      source="vendor") == 1
    finally:
        code = await sender.stop()
        await events.stop()
        await dead.stop()
        await store.close()
    assert code == 0
