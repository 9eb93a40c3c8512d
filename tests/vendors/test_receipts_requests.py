"""The vendor clients ask for receipts where the app's credentials say so, and the fake vendor
servers accept what they send: Xiaomi ``extra.callback*``, OPPO ``call_back_*``, vivo
``extra.callback*``, Huawei ``receipt_id``, Honor a signed ``biTag``; each tag opens under the
key ``herald receipts`` will verify it with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from proto.message import Message
from tests.vendors.helpers import Clock, job_factory, outcomes
from tests.vendors.servers import oppo as oppo_fake
from tests.vendors.servers import vivo as vivo_fake
from tests.vendors.servers.base import serve
from tests.vendors.servers.honor import TOKEN_PATH, honor_app
from tests.vendors.servers.huawei import huawei_app
from tests.vendors.servers.oppo import fake_oppo
from tests.vendors.servers.vivo import fake_vivo
from tests.vendors.servers.xiaomi import make_app as fake_xiaomi
from vendors.errors import AuthError
from vendors.honor import HonorClient
from vendors.huawei import HuaweiClient
from vendors.oppo import OppoClient
from vendors.receipts import tags
from vendors.vivo import VivoClient
from vendors.xiaomi import CALLBACK_TYPES, XiaomiClient

NOW = 1_700_000_000.0
URL = "https://receipts.example.com/receipts/{vendor}/app"
TASK = "0b7d6e2e-3f1a-4c55-9d0e-2b7f1f8f9a10"
job = job_factory(task_id=TASK, msg_id=TASK, message=Message(title="Hi", body="there"))


@asynccontextmanager
async def _client(asgi: Any, make: Callable[..., Any], **options: Any) -> AsyncIterator[Any]:
    async with serve(asgi, tls=True) as served:
        client = make(base_url=served.url, verify=served.verify, clock=Clock(NOW),
                      **{k: v.format(url=served.url) for k, v in options.items()})
        try:
            yield client
        finally:
            await client.close()


def _opens(param: str, key: str, vendor: str) -> bool:
    return tags.open_tag(key, vendor, "app", param) == TASK


@pytest.mark.parametrize("extra", [{}, {"receipt_key": "xm-receipt-key"}])
async def test_xiaomi_asks_for_receipts_with_a_signed_param(extra):
    asgi, state = fake_xiaomi("xm-secret", "com.example")
    creds = {"app_secret": "xm-secret", "package_name": "com.example",
             "receipt_url": URL.format(vendor="xiaomi"), **extra}
    async with _client(asgi, XiaomiClient) as client:
        assert outcomes(await client.send(job("a", "b"), creds)) == [
            ("rid-a", "", False), ("rid-b", "", False)]
        long = job_factory(task_id="t" * 54, message=Message(title="x", body="y"))
        assert outcomes(await client.send(long("a"), creds)) == [("rid-a", "", False)]
    asked, unasked = (r.form for r in state.requests)
    assert asked["extra.callback"] == URL.format(vendor="xiaomi")
    assert asked["extra.callback.type"] == str(CALLBACK_TYPES) == "243"
    assert _opens(asked["extra.callback.param"], extra.get("receipt_key", "xm-secret"), "xiaomi")
    assert not {k for k in unasked if k.startswith("extra.callback")}


async def test_oppo_asks_for_receipts_on_every_message_of_a_batch():
    clock = Clock(NOW)
    asgi, state = fake_oppo("oppo-key", "oppo-master", clock)
    creds = {"app_key": "oppo-key", "master_secret": "oppo-master",
             "receipt_url": URL.format(vendor="oppo")}
    async with _client(asgi, OppoClient) as client:
        assert [r.error for r in await client.send(job("a", "b"), creds)] == ["", ""]
        with pytest.raises(AuthError, match="receipt_url"):
            await client.send(job("a"), {**creds, "receipt_url": "https://r/" + "x" * 200})
    notes = [m["notification"] for m in state.batches[0].messages]
    assert {n["call_back_url"] for n in notes} == {URL.format(vendor="oppo")}
    assert all(_opens(n["call_back_parameter"], "oppo-master", "oppo") for n in notes)


async def test_vivo_asks_for_receipts_on_single_and_list_pushes():
    asgi, state = fake_vivo(1004, "vivo-key", "vivo-secret", Clock(NOW))
    creds = {"app_id": "1004", "app_key": "vivo-key", "app_secret": "vivo-secret",
             "receipt_url": URL.format(vendor="vivo"), "receipt_key": "vivo-receipts"}
    async with _client(asgi, VivoClient) as client:
        assert [r.error for r in await client.send(job("a"), creds)] == [""]
        assert [r.error for r in await client.send(job("a", "b"), creds)] == ["", ""]
    single, saved, _ = state.calls
    for call in (single, saved):
        assert call.body["extra"]["callback"] == URL.format(vendor="vivo")
        assert _opens(call.body["extra"]["callback.param"], "vivo-receipts", "vivo")


async def test_huawei_names_the_receipt_configuration_and_tags_the_task():
    asgi, state = huawei_app()
    creds = {"client_id": state.oauth.client_id, "client_secret": state.oauth.client_secret,
             "receipt_id": "RCP4C123456", "receipt_user": "u", "receipt_secret": "cw=="}
    async with _client(asgi, HuaweiClient, auth_url="{url}/oauth2/v3/token") as client:
        assert [r.error for r in await client.send(job("a"), creds)] == [""]
    android = state.sends[0]["body"]["message"]["android"]
    assert (android["receipt_id"], android["bi_tag"]) == ("RCP4C123456", TASK)


async def test_honor_signs_the_bi_tag_with_the_receipt_key():
    asgi, state = honor_app()
    creds = {"app_id": "104412345", "client_id": state.oauth.client_id,
             "client_secret": state.oauth.client_secret, "receipt_key": "honor-receipts"}
    async with _client(asgi, HonorClient, auth_url="{url}" + TOKEN_PATH) as client:
        assert [r.error for r in await client.send(job("a"), creds)] == [""]
    assert _opens(state.sends[0]["body"]["android"]["biTag"], "honor-receipts", "honor")


async def test_the_fakes_refuse_receipt_requests_the_vendors_would_refuse():
    asgi, _ = fake_xiaomi("xm-secret", "com.example")
    base = {"registration_id": "a", "restricted_package_name": "com.example",
            "pass_through": "1", "extra.callback": URL.format(vendor="xiaomi")}
    async with serve(asgi, tls=True) as served, httpx.AsyncClient(verify=served.verify) as http:
        for form, code in ((base | {"extra.callback.param": "p" * 64}, 0),
                           (base | {"extra.callback.param": "p" * 65}, 10017),
                           (base | {"extra.callback": "mailto:x"}, 10017),
                           ({**base, "extra.callback.type": "x"}, 10017)):
            answer = await http.post(f"{served.url}/v3/message/regid", data=form,
                                     headers={"authorization": "key=xm-secret"})
            assert answer.json()["code"] == code, form
    note = {"title": "t", "content": "c", "call_back_url": "https://r/x"}
    assert not oppo_fake._notification_problem(note | {"call_back_parameter": "p" * 50})
    assert oppo_fake._notification_problem(note | {"call_back_parameter": "p" * 51})
    assert oppo_fake._notification_problem({"title": "t", "content": "c",
                                            "call_back_parameter": "p"})
    assert vivo_fake._extra_problem({"callback": "https://r/x", "callback.param": "p"}) == ""
    assert vivo_fake._extra_problem({"callback": "https://r/x", "other": "p"})
