"""The sender's recall jobs, on the in-memory bus and store of ``test_sender_decisions`` with a
scripted client: a revoke where the vendor has one, the replacement under the recalled
notification's collapse id where the vendor replaces, nothing (and no loss) elsewhere."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from proto.envelopes import VendorJob, recall_message
from proto.message import Message
from tests.vendors.fakes import ScriptedClient, stages
from tests.vendors.test_sender_decisions import job, run
from tests.vendors.test_sender_decisions import store as store  # the fixture, re-exported
from vendors.errors import TransientError


class Revoking(ScriptedClient):
    can_revoke = True

    def __init__(self, *failures: Exception) -> None:
        super().__init__()
        self.failures = list(failures)
        self.revoked: list[VendorJob] = []

    async def revoke(self, job: VendorJob, credentials: Mapping[str, str]) -> None:
        self.revoked.append(job)
        if self.failures:
            raise self.failures.pop(0)


class Replacing(ScriptedClient):
    can_replace = True


def recall(task: str, *tokens: str, replacement: Message | None = None) -> VendorJob:
    return msgspec.structs.replace(job(task, *tokens),
                                   message=replacement or recall_message(task), recall=True,
                                   replace=replacement is not None)


async def test_a_vendor_that_revokes_gets_a_revoke_retried_like_a_send(store):
    client = Revoking(TransientError("busy"))
    bus = await run(client, store, recall("t1", "a", "b"))
    assert stages(bus) == [("rid-a", "recalled", ""), ("rid-b", "recalled", "")]
    assert len(client.revoked) == 2 and not client.sent
    assert [t.token for t in client.revoked[-1].targets] == ["a", "b"]


async def test_a_vendor_that_replaces_gets_the_replacement_under_the_collapse_id(store):
    client = Replacing()
    bus = await run(client, store, recall("t1", "a", replacement=Message(title="new")),
                    recall("t2", "b", replacement=Message(title="n", collapse_id="c7")))
    assert stages(bus) == [("rid-a", "recalled", ""), ("rid-b", "recalled", "")]
    sent = {j.task_id: j.message for j, _ in client.sent}
    assert sent["t1"] == Message(title="new", collapse_id="t1")
    assert sent["t2"] == Message(title="n", collapse_id="c7")


async def test_a_recall_the_vendor_cannot_do_is_no_request_and_no_loss(store):
    # Neither revokes, and a replacing vendor with nothing to replace with.
    plain, replacing = ScriptedClient(), Replacing()
    for client in (plain, replacing):
        bus = await run(client, store, recall("t1", "a"))
        assert stages(bus) == [] and not client.sent
        assert bus.committed


async def test_a_refused_revoke_is_no_loss_of_the_push(store):
    client = Revoking(*[TransientError("down")] * 5)
    bus = await run(client, store, recall("t1", "a"))
    # Retried up to max_attempts (3), then given up: no event at all, not a "failed" one.
    assert len(client.revoked) == 3
    assert stages(bus) == [] and bus.committed
