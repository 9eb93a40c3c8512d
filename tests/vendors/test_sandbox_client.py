"""The sandbox vendor client against a local endpoint: each response class maps to its error."""

from __future__ import annotations

import pytest

from proto.envelopes import VendorJob, VendorTarget
from proto.message import Message
from tests.harness import free_port
from vendors.errors import RateLimitedError, RejectedError, TransientError
from vendors.sandbox import SandboxClient


def _job(*tokens: str) -> VendorJob:
    return VendorJob(app_id="app", task_id="t1", msg_id="t1",
                     message=Message(title="hi", data={"k": 1}),
                     targets=[VendorTarget(f"rid-{t}", t) for t in tokens])


@pytest.fixture
async def client(sandbox):
    client = SandboxClient(sandbox.url, timeout_s=5)
    yield client
    await client.close()


async def test_partial_success_reports_each_device(client, sandbox):
    sandbox.invalid_tokens = {"bad"}
    results = await client.send(_job("good", "bad"), {})
    assert [(r.registration_id, r.error, r.token_invalid) for r in results] == [
        ("rid-good", "", False), ("rid-bad", "invalid_token", True)]
    (request,) = sandbox.requests
    assert request == {"app_id": "app", "task_id": "t1", "msg_id": "t1",
                       "message": {"title": "hi", "data": {"k": 1}}, "tokens": ["good", "bad"]}


async def test_rate_limit_carries_retry_after(client, sandbox):
    sandbox.statuses, sandbox.retry_after = [429], "7"
    with pytest.raises(RateLimitedError) as err:
        await client.send(_job("a"), {})
    assert err.value.retriable and err.value.retry_after_s == 7


@pytest.mark.parametrize(("status", "error", "retriable"), [
    (500, TransientError, True), (503, TransientError, True), (400, RejectedError, False),
    (401, RejectedError, False)])
async def test_status_classes(client, sandbox, status, error, retriable):
    sandbox.statuses = [status]
    with pytest.raises(error) as err:
        await client.send(_job("a"), {})
    assert err.value.retriable is retriable
    assert str(status) in err.value.reason


async def test_unreachable_vendor_is_transient():
    client = SandboxClient(f"http://127.0.0.1:{free_port()}/push", timeout_s=2)
    with pytest.raises(TransientError, match="ConnectError"):
        await client.send(_job("a"), {})
    await client.close()
