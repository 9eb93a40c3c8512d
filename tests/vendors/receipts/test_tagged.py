"""Receipts that carry Herald's signed tag (Honor, Xiaomi, OPPO, vivo): posts whose tags verify
become events on push.events; forged tags, tags of another app and malformed posts are
refused and publish nothing; posts without a tag publish nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY

from proto.events import Reason, Stage
from tests.vendors.receipts.conftest import vendor_app
from tests.vendors.receipts.helpers import (
    oppo_event,
    outcomes,
    receipt_post,
    task_events,
    wait_events,
    xiaomi_body,
    xiaomi_receipt,
)
from vendors.receipts import oppo, tags, vivo, xiaomi
from vendors.receipts.model import Post


@dataclass(frozen=True)
class Kind:
    """A vendor whose receipts carry Herald's tag, and credentials that verify them."""

    vendor: str
    credentials: dict[str, str]
    #: The key the vendor senders sign tags with under these credentials.
    key: str
    #: Whether the vendor reports invalid tokens (vivo reports deliveries only).
    reports_invalid: bool
    malformed: tuple[bytes, ...]

    def __str__(self) -> str:
        return self.vendor


KINDS = [
    Kind("honor", {"app_id": "1044", "client_id": "c", "client_secret": "s",
                   "receipt_key": "honor receipt key"}, "honor receipt key", True,
         (b"{}", b'{"statuses": [{"biTag": "x"}]}')),
    Kind("xiaomi", {"app_secret": "xm-secret", "package_name": "com.example"}, "xm-secret",
         True, (b"data=not-json", b"other=1",
                b"data=%7B%22m%22%3A%7B%22param%22%3A%22x%22%7D%7D", b"\xff\xfe")),
    Kind("oppo", {"app_key": "k", "master_secret": "m", "receipt_key": "oppo key"},
         "oppo key", True, (b"[1]", b'[{"param": "x"}]', b"nope")),
    Kind("vivo", {"app_id": "1004", "app_key": "k", "app_secret": "vivo-secret"},
         "vivo-secret", False, (b"[]", b'{"vt": 3}', b"{")),
]


@pytest.fixture(params=KINDS, ids=str)
def kind(request) -> Kind:
    return request.param


@pytest.fixture
async def tagged(store, app, kind):
    return await vendor_app(store, app, kind.vendor, kind.credentials)


def _tag(kind: Kind, app_id: str, task: str, key: str = "") -> str:
    return tags.tag(key or kind.key, kind.vendor, app_id, task)


async def _post(receipts, kind: Kind, app_id: str, echoed: str, tokens: list[str], *,
                delivered: bool = True):
    body, headers = receipt_post(kind.vendor, echoed, tokens, delivered=delivered)
    return await receipts.post(f"/receipts/{kind.vendor}/{app_id}", content=body,
                               headers=headers)


async def test_verified_receipts_become_events(receipts, events, kind, tagged, uid):
    (a, ta), (b, tb), (c, tc) = tagged.devices
    task = f"task-{uid}"
    tag = _tag(kind, tagged.app_id, task)
    response = await _post(receipts, kind, tagged.app_id, tag, [ta, tb])
    assert response.status_code == 200, response.text
    expected = {("delivered", "", tuple(sorted([a, b])), kind.vendor)}
    if kind.reports_invalid:
        assert (await _post(receipts, kind, tagged.app_id, tag, [tc], delivered=False)
                ).is_success
        expected.add(("failed", "token_invalid", (c,), kind.vendor))
    found = await wait_events(events, task, len(expected))
    assert outcomes(found) == expected
    assert {(e.app_id, e.msg_id) for e in found} == {(tagged.app_id, task)}


@pytest.mark.parametrize("forgery", ["other-key", "other-app", "garbled"])
async def test_forged_tags_are_refused_and_publish_nothing(receipts, events, kind, tagged, uid,
                                                           forgery):
    (_a, ta), (b, tb), _ = tagged.devices
    task = f"task-{uid}"
    forged = {"other-key": _tag(kind, tagged.app_id, task, key="a guess"),
              "other-app": _tag(kind, "another-app", task),
              "garbled": _tag(kind, tagged.app_id, task)[:-1] + "~"}[forgery]
    refused = await _post(receipts, kind, tagged.app_id, forged, [ta])
    expected = 400 if forgery == "garbled" else 401
    assert refused.status_code == expected, refused.text
    genuine = await _post(receipts, kind, tagged.app_id, _tag(kind, tagged.app_id, task), [tb])
    assert genuine.is_success
    await wait_events(events, task, 1)
    assert [e.devices() for e in task_events(events, task)] == [[b]]


async def test_malformed_posts_are_refused(receipts, kind, tagged):
    for body in kind.malformed:
        response = await receipts.post(f"/receipts/{kind.vendor}/{tagged.app_id}",
                                       content=body, headers=receipt_post(kind.vendor, "", [])[1])
        assert response.status_code == 400, (body, response.text)
        assert response.json()["code"] == "malformed"


async def test_receipts_without_a_tag_and_of_unknown_tokens_publish_nothing(
        receipts, events, kind, tagged, uid):
    (a, ta), _, _ = tagged.devices
    task = f"task-{uid}"
    before = _devices(kind.vendor, "unknown")
    tag = _tag(kind, tagged.app_id, task)
    assert (await _post(receipts, kind, tagged.app_id, task, [ta])).is_success
    assert (await _post(receipts, kind, tagged.app_id, tag, ["no-such-token"])).is_success
    assert _devices(kind.vendor, "unknown") == before + 1
    assert (await _post(receipts, kind, tagged.app_id, tag, [ta])).is_success
    await wait_events(events, task, 1)
    assert [e.devices() for e in task_events(events, task)] == [[a]]


async def test_an_app_without_a_receipt_key_cannot_have_honor_receipts(receipts, store, app,
                                                                       uid):
    await store.put_credentials(app.app_id, "honor", {"app_id": "1", "client_id": "c",
                                                      "client_secret": "s"})
    kind = KINDS[0]
    response = await _post(receipts, kind, app.app_id, _tag(kind, app.app_id, f"t-{uid}", "s"),
                           ["t"])
    assert response.status_code == 403


def _devices(vendor: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("herald_receipts_devices_total",
                                     {"vendor": vendor, "outcome": outcome}) or 0.0


def _read(module, body: bytes, credentials: dict[str, str]):
    return module.read(Post(body, {}, 0), credentials, "app")


def test_xiaomi_types_map_to_stages_and_the_secret_keys_tags_without_a_receipt_key():
    creds = {"app_secret": "xm"}
    tag = tags.tag("xm", "xiaomi", "app", "task")
    body = xiaomi_body({f"m{kind}": xiaomi_receipt(tag, kind, ["t"])
                        for kind in (1, 2, 16, 32, 64, 128, 4096)}
                       | {"ms": {"param": tag, "type": "2", "targets": ["t"]}})
    got = [(r.stage, r.reason) for r in _read(xiaomi, body, creds)]
    assert got == [(Stage.DELIVERED, ""), (Stage.CLICKED, ""),
                   (Stage.FAILED, Reason.TOKEN_INVALID), (Stage.FAILED, Reason.VENDOR_ERROR),
                   (Stage.FAILED, Reason.REJECTED), (Stage.FAILED, Reason.QUOTA_EXCEEDED),
                   (None, ""), (Stage.CLICKED, "")]


def test_oppo_reads_a_single_event_and_ignores_unknown_event_types():
    tag = tags.tag("m", "oppo", "app", "task")
    (one,) = _read(oppo, json.dumps(oppo_event(tag, "push_arrive", ["a", "b"])).encode(),
                   {"master_secret": "m"})
    assert (one.task_id, one.tokens, one.stage) == ("task", ("a", "b"), Stage.DELIVERED)
    (other,) = _read(oppo, json.dumps([oppo_event(tag, "push_click", ["a"])]).encode(),
                     {"master_secret": "m"})
    assert other.stage is None


def test_vivo_reads_targets_as_a_list_too():
    tag = tags.tag("v", "vivo", "app", "task")
    (one,) = _read(vivo, json.dumps({"vt": {"param": tag, "targets": ["a", "b"]}}).encode(),
                   {"app_secret": "v"})
    assert (one.tokens, one.stage) == (("a", "b"), Stage.DELIVERED)
