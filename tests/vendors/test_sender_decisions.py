"""The sender's decisions per error class, on in-memory bus and store with a scripted client."""

from __future__ import annotations

import asyncio
import time

import pytest

from herald.settings import VendorSettings
from proto.envelopes import DeviceRecord, VendorJob, VendorTarget, decode_vendor_job
from proto.message import Message
from tests.harness import eventually
from tests.vendors.fakes import (
    MemoryBus,
    MemoryStore,
    ScriptedClient,
    record_of,
    results_where,
    stages,
)
from vendors.errors import (
    AuthError,
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from vendors.sender import Sender

APP = "app-1"
CREDS = {"key": "s3cret-value"}


def job(task: str = "t1", *tokens: str, expires_at_ms: int = 0) -> VendorJob:
    return VendorJob(app_id=APP, task_id=task, msg_id=task, message=Message(title="hi"),
                     targets=[VendorTarget(f"rid-{t}", t) for t in tokens or ("a",)],
                     expires_at_ms=expires_at_ms)


def settings(**overrides: object) -> VendorSettings:
    values = {"max_attempts": 3, "backoff_base_s": 0.001, "backoff_max_s": 0.002,
              "rate_limit_max_wait_s": 1.0, **overrides}
    return VendorSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.credentials[APP, "fake"] = dict(CREDS)
    return store


async def run(client: ScriptedClient, store: MemoryStore, *jobs: VendorJob,
              **overrides: object) -> MemoryBus:
    """Run a sender until it committed ``jobs``; the bus holds what it published."""
    bus = MemoryBus()
    bus.pending = [record_of(j, offset) for offset, j in enumerate(jobs)]
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(
        Sender(settings(**overrides), client, bus, store).run(stop))  # type: ignore[arg-type]
    try:
        await eventually(lambda: len(bus.committed) == len(jobs) or task.done(), 10, "commit")
    finally:
        stop.set()
        await task
    return bus


async def test_sends_with_the_apps_stored_credentials(store):
    client = ScriptedClient()
    bus = await run(client, store, job("t1", "a", "b"))
    assert stages(bus) == [("rid-a", "sent", ""), ("rid-b", "sent", "")]
    (sent, creds), = client.sent
    assert creds == CREDS and [t.token for t in sent.targets] == ["a", "b"]
    assert {e.channel for e in bus.events()} == {"fake"}


async def test_missing_credentials_fail_every_device_without_a_request(store):
    store.credentials.clear()
    client = ScriptedClient()
    bus = await run(client, store, job("t1", "a", "b"))
    assert stages(bus) == [("rid-a", "failed", "no_credentials"),
                           ("rid-b", "failed", "no_credentials")]
    assert client.sent == [] and bus.dead_letters() == []


async def test_credentials_are_read_once_while_fresh(store):
    client = ScriptedClient()
    await run(client, store, job("t1"), job("t2"), job("t3"))
    assert store.credential_reads == 1


async def test_transient_errors_back_off_then_park_the_job(store):
    client = ScriptedClient(*(TransientError("HTTP 503") for _ in range(3)))
    bus = await run(client, store, job("t1", "a"))
    assert len(client.sent) == 3
    assert stages(bus) == [("rid-a", "failed", "vendor_error")]
    (parked,) = bus.dead_letters()
    reason = dict(parked.headers)["herald-reason"].decode()
    assert reason == "vendor_error: HTTP 503 (after 3 attempts)"
    assert decode_vendor_job(parked.value).targets == [VendorTarget("rid-a", "a")]


async def test_a_transient_error_that_passes_delivers(store):
    client = ScriptedClient(TransientError("reset"))
    bus = await run(client, store, job("t1", "a"))
    assert stages(bus) == [("rid-a", "sent", "")] and len(client.sent) == 2


async def test_rate_limit_waits_the_vendors_retry_after(store):
    client = ScriptedClient(RateLimitedError("429", retry_after_s=0.3))
    started = time.monotonic()
    bus = await run(client, store, job("t1", "a"))
    assert time.monotonic() - started >= 0.3
    assert stages(bus) == [("rid-a", "sent", "")]


async def test_rate_limit_longer_than_the_cap_parks_at_once(store):
    client = ScriptedClient(RateLimitedError("quota", retry_after_s=3600))
    bus = await run(client, store, job("t1", "a"))
    assert len(client.sent) == 1
    assert stages(bus) == [("rid-a", "failed", "rate_limited")]
    (parked,) = bus.dead_letters()
    assert "over the 1 s cap" in dict(parked.headers)["herald-reason"].decode()


async def test_a_wait_past_the_pushs_expiry_parks(store):
    client = ScriptedClient(RateLimitedError("429", retry_after_s=0.9))
    expires = int(time.time() * 1000) + 500
    bus = await run(client, store, job("t1", "a", expires_at_ms=expires))
    assert stages(bus) == [("rid-a", "failed", "rate_limited")]
    assert "expires before a retry" in dict(bus.dead_letters()[0].headers)[
        "herald-reason"].decode()


async def test_an_expired_job_is_not_sent(store):
    client = ScriptedClient()
    bus = await run(client, store, job("t1", "a", expires_at_ms=int(time.time() * 1000) - 1))
    assert stages(bus) == [("rid-a", "failed", "expired")] and client.sent == []


async def test_auth_failure_alerts_and_fails_without_retry(store):
    client = ScriptedClient(AuthError("credentials refused after a refresh: 80200003"))
    bus = await run(client, store, job("t1", "a", "b"))
    assert len(client.sent) == 1 and bus.dead_letters() == []
    assert stages(bus) == [("rid-a", "failed", "auth"), ("rid-b", "failed", "auth")]
    assert {e.detail for e in bus.events()} == {
        "credentials refused after a refresh: 80200003"}


@pytest.mark.parametrize(("error", "reason"), [
    (RejectedError("80100003 Illegal payload"), "rejected"),
    (PayloadTooLargeError("5000 bytes over 4096"), "payload_too_large")])
async def test_refusals_fail_with_their_reason_and_no_retry(store, error, reason):
    client = ScriptedClient(error)
    bus = await run(client, store, job("t1", "a"))
    assert len(client.sent) == 1 and bus.dead_letters() == []
    (event,) = bus.events()
    assert (event.stage, event.reason, event.detail) == ("failed", reason, error.reason)


async def test_only_the_retriable_devices_are_sent_again(store):
    client = ScriptedClient(results_where(b={"error": "HTTP 500", "retriable": True},
                                          c={"error": "Unregistered", "token_invalid": True}))
    bus = await run(client, store, job("t1", "a", "b", "c"))
    assert [[t.token for t in j.targets] for j, _ in client.sent] == [["a", "b", "c"], ["b"]]
    assert stages(bus) == [("rid-a", "sent", ""), ("rid-b", "sent", ""),
                           ("rid-c", "failed", "token_invalid")]


async def test_retriable_devices_failing_every_attempt_are_parked_alone(store):
    flaky = results_where(b={"error": "HTTP 500", "retriable": True})
    client = ScriptedClient(flaky, flaky, flaky)
    bus = await run(client, store, job("t1", "a", "b"))
    assert stages(bus) == [("rid-a", "sent", ""), ("rid-b", "failed", "vendor_error")]
    (parked,) = bus.dead_letters()
    assert [t.token for t in decode_vendor_job(parked.value).targets] == ["b"]


async def test_invalid_tokens_are_removed_if_still_the_devices(store):
    store.devices[APP, "rid-a"] = DeviceRecord(vendor="fake", vendor_token="a")
    store.devices[APP, "rid-b"] = DeviceRecord(vendor="fake", vendor_token="b-renewed")
    client = ScriptedClient(results_where(a={"error": "gone", "token_invalid": True},
                                          b={"error": "gone", "token_invalid": True}))
    bus = await run(client, store, job("t1", "a", "b"))
    assert stages(bus) == [("rid-a", "failed", "token_invalid"),
                           ("rid-b", "failed", "token_invalid")]
    assert store.devices[APP, "rid-a"] == DeviceRecord()
    assert store.devices[APP, "rid-b"].vendor_token == "b-renewed"


async def test_a_job_over_the_clients_batch_goes_as_several_requests(store):
    client = ScriptedClient(max_batch=2)
    bus = await run(client, store, job("t1", "a", "b", "c", "d", "e"))
    assert sorted(len(j.targets) for j, _ in client.sent) == [1, 2, 2]
    assert len(bus.events()) == 5


async def test_the_daily_quota_parks_what_does_not_fit(store):
    client = ScriptedClient()
    bus = await run(client, store, job("t1", "a", "b"), job("t2", "c", "d"),
                    app_daily_quota=3)
    assert len(client.sent) == 1
    assert sorted(e.reason for e in bus.events()) == ["", "", "quota_exceeded",
                                                      "quota_exceeded"]
    (parked,) = bus.dead_letters()
    assert dict(parked.headers)["herald-reason"].startswith(b"quota_exceeded: daily quota of 3")


async def test_a_client_bug_is_retried_then_parked_without_its_message(store):
    client = ScriptedClient(*(KeyError("s3cret-value") for _ in range(3)))
    bus = await run(client, store, job("t1", "a"))
    (event,) = bus.events()
    assert event.reason == "vendor_error" and "s3cret" not in event.detail
    assert "client raised KeyError" in event.detail
