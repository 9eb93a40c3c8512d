"""What Huawei Push Kit and Honor Push share (``vendors.hms``), tested once against both fakes:
the client-credentials token (reuse, single flight, refresh once), the HTTP error classes and
the 4096-byte limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from proto.message import Message
from tests.vendors.helpers import Clock
from tests.vendors.servers.base import serve
from tests.vendors.servers.honor import TOKEN_PATH, honor_app
from tests.vendors.servers.huawei import huawei_app
from tests.vendors.test_honor import CREDS as HONOR_CREDS
from tests.vendors.test_huawei import CREDS as HUAWEI_CREDS
from tests.vendors.test_huawei import NOW, _job
from vendors.errors import AuthError, PayloadTooLargeError, RateLimitedError, TransientError
from vendors.honor import HonorClient
from vendors.huawei import HuaweiClient


@dataclass
class Hms:
    client: HuaweiClient | HonorClient
    state: Any
    creds: dict[str, str]
    clock: Clock


@pytest.fixture(params=["huawei", "honor"])
async def hms(request) -> AsyncIterator[Hms]:
    clock = Clock(NOW)
    if request.param == "huawei":
        app, state = huawei_app()
        client_type, token_path, creds = HuaweiClient, "/oauth2/v3/token", HUAWEI_CREDS
    else:
        app, state = honor_app()
        client_type, token_path, creds = HonorClient, TOKEN_PATH, HONOR_CREDS
    async with serve(app, tls=True) as served:
        client = client_type(base_url=served.url, auth_url=served.url + token_path,
                             timeout_s=5, verify=served.verify, clock=clock)
        yield Hms(client, state, creds, clock)
        await client.close()


async def test_rate_limit_carries_retry_after(hms):
    hms.state.script.statuses, hms.state.script.retry_after = [429], "30"
    with pytest.raises(RateLimitedError) as err:
        await hms.client.send(_job("a"), hms.creds)
    assert err.value.retriable and err.value.retry_after_s == 30


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(hms, status):
    hms.state.script.statuses = [status]
    with pytest.raises(TransientError, match=str(status)):
        await hms.client.send(_job("a"), hms.creds)


async def test_expired_access_token_is_refreshed_once(hms):
    hms.state.script.expire_next = 1
    results = await hms.client.send(_job("a"), hms.creds)
    assert results[0].error == ""
    assert len(hms.state.oauth.requests) == 2
    (sent,) = hms.state.sends
    refused, fresh = hms.state.oauth.issued
    assert refused in hms.state.oauth.expired
    assert sent["headers"]["authorization"] == f"Bearer {fresh}"


async def test_second_refusal_is_auth_error(hms):
    hms.state.script.expire_next = 2
    with pytest.raises(AuthError, match="80200003") as err:
        await hms.client.send(_job("a"), hms.creds)
    assert not err.value.retriable
    assert len(hms.state.oauth.requests) == 2 and hms.state.sends == []
    await hms.client.send(_job("a"), hms.creds)  # the refused token is not tried again
    assert len(hms.state.oauth.requests) == 3 and hms.state.oauth.refusals == 2


@pytest.mark.parametrize("expires_in", [3600, 1800])
async def test_token_is_reused_until_near_expiry(hms, expires_in):
    hms.state.oauth.expires_in = expires_in
    await hms.client.send(_job("a"), hms.creds)
    hms.clock.now = NOW + expires_in - 61
    await hms.client.send(_job("a"), hms.creds)
    assert len(hms.state.oauth.requests) == 1
    hms.clock.now = NOW + expires_in - 59
    await hms.client.send(_job("a"), hms.creds)
    assert len(hms.state.oauth.requests) == 2
    tokens = [s["headers"]["authorization"] for s in hms.state.sends]
    assert tokens[0] == tokens[1] != tokens[2]


async def test_concurrent_sends_ask_for_one_token(hms):
    await asyncio.gather(*(hms.client.send(_job(f"t{i}"), hms.creds) for i in range(5)))
    assert len(hms.state.oauth.requests) == 1 and len(hms.state.sends) == 5


async def test_wrong_secret_is_auth_error_without_the_secret(hms):
    with pytest.raises(AuthError) as err:
        await hms.client.send(_job("a"), {**hms.creds, "client_secret": "not-it"})
    assert "invalid client" in err.value.reason.lower() and "not-it" not in err.value.reason
    assert hms.state.sends == []


async def test_missing_credentials_are_auth_error(hms):
    with pytest.raises(AuthError, match="client_secret"):
        await hms.client.send(_job("a"), {k: v for k, v in hms.creds.items()
                                          if k != "client_secret"})
    assert hms.state.oauth.requests == []


async def test_payload_too_large_is_refused_before_sending(hms):
    big = Message(title="t", body="b" * 300, data={"k": "x" * 3900})
    with pytest.raises(PayloadTooLargeError, match="4096"):
        await hms.client.send(_job("a", message=big), hms.creds)
    assert hms.state.sends == [] and hms.state.oauth.requests == []
