"""What the router consumes, decoded: pushes to route, fan-outs to start, planning steps.

No I/O. A push request naming its devices becomes a ``Push`` routed at once; one naming an
audience to resolve becomes a ``Start``; a fallback becomes a ``Push`` for the offline path
only; a fan-out shard becomes a ``Push`` of its devices (of a recall, if the fan-out is one);
a request to send later becomes a ``Later``; a planning step stays a ``FanoutStep``; a recall
request stays a ``RecallRequest``. A request naming a template is filled in first, from the
batch's templates (``router.templating``).
Undecodable records raise ``DecodeError``, refused audiences ``AudienceError``, templates that
do not fit ``TemplateError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import msgspec

from herald.bus import Record
from herald.store import DeviceState
from herald.task_store import Progress
from proto import frames, topics
from proto.audience import Audience, AudienceLimits, validate_audience
from proto.envelopes import (
    FanoutPush,
    FanoutShard,
    FanoutStep,
    PushRequest,
    RecallRequest,
    decode_fallback,
    decode_fanout,
    decode_push_request,
    decode_recall_request,
    encode_push_request,
)
from proto.errors import DecodeError
from proto.events import Reason, now_ms
from proto.message import Message, localize
from router import templating
from router.decide import Policy

_NOW_MS = 1000


@dataclass(frozen=True, slots=True)
class Push:
    """One push to route, from a request or a fallback."""

    app_id: str
    task_id: str
    msg_id: str
    message: Message
    frame: bytes
    registration_ids: list[str]
    push_flag: int
    expires_at_ms: int
    policy: Policy
    #: False for fallbacks: the device was just not reachable online, so only offline paths.
    online: bool
    #: What routing this push does for its task (its decisions are added once made); None for
    #: fallbacks, whose devices were counted when they were first routed, and for recalls.
    progress: Progress | None = None
    #: A recall of the push: ``frame`` is the RECALL frame, ``message`` what vendors get.
    recall: bool = False
    #: With ``recall``: ``message`` replaces the recalled notification where the channel can.
    replace: bool = False
    #: The request's idempotency key, if it has one.
    idempotency_key: str = ""
    #: The request's ``urgent``: the push passes quiet hours and the frequency cap.
    urgent: bool = False
    #: Its devices were held through their quiet hours already (``router.quiet``).
    released: bool = False

    @property
    def shard(self) -> str:
        """The name of the shard of its task this push is ('0' for a direct push, its task's
        only step and shard); '' for fallbacks and recalls, which count nothing."""
        return self.progress.shard if self.progress is not None else ""

    @property
    def kind(self) -> str:
        """``shard`` of a fan-out, or ``push`` routed whole (the label of its metrics)."""
        return "shard" if self.progress is not None and self.progress.step is None else "push"


@dataclass(frozen=True, slots=True)
class Later:
    """A push request whose send time is still ahead: kept as a timer until then."""

    record: Record
    request: PushRequest


@dataclass(frozen=True, slots=True)
class Start:
    """A push whose audience must be resolved before it fans out."""

    record: Record
    request: PushRequest
    push: FanoutPush


def decode(record: Record, limits: AudienceLimits, templates: templating.Templates | None = None
           ) -> Push | Start | Later | FanoutStep | RecallRequest:
    """What ``record`` asks the router to do, by its topic; ``templates`` holds the templates
    the batch's requests name (``router.templating.fetch``)."""
    if record.topic == topics.RECALLS:
        return decode_recall_request(record.value)
    if record.topic == topics.FANOUT:
        item = decode_fanout(record.value)
        return _shard(item) if isinstance(item, FanoutShard) else item
    if record.topic == topics.FALLBACK:
        return _fallback(record)
    named = decode_push_request(record.value)
    req = templating.rendered(named, templates or {})
    message = req.message
    assert message is not None  # filled in from its template if it named one
    if req.audience is not None:
        validate_audience(req.audience, limits)
    # Within a second is now: the request a timer publishes at its send time is then routed
    # even by a router whose clock is a little behind the one that published it.
    if req.send_at_ms is not None and req.send_at_ms > now_ms() + _NOW_MS:
        if req is not named:
            # Kept filled in: the push sends what its template said when it was accepted.
            record = dataclasses.replace(record, value=encode_push_request(req))
        return Later(record, req)
    # The message id is the task id: a device sees one message per task, and a push
    # routed again (after a crash) carries the same id, so the device drops the copy.
    msg_id = req.task_id
    expires = now_ms() + req.lifetime_s * 1000 if req.lifetime_s else 0
    frame = frames.encode(frames.Push(mid=msg_id, task=req.task_id,
                                      msg=frames.message_map(message), ts=now_ms()))
    targets = req.targets()
    # A paced push fans out even to listed devices: its shards carry the pace.
    if targets is None or req.speed:
        return Start(record, req, FanoutPush(app_id=req.app_id, task_id=req.task_id,
                                             msg_id=msg_id, message=message, frame=frame,
                                             push_flag=req.push_flag, expires_at_ms=expires,
                                             speed=req.speed or 0, started_ms=now_ms(),
                                             urgent=req.urgent))
    rids = list(dict.fromkeys(targets))
    progress = Progress(req.app_id, req.task_id, audience=req.audience_kind(),
                        target=target_of(req), step=0, shards=1, devices=len(rids), last=True,
                        shard="0")
    return Push(req.app_id, req.task_id, msg_id, message, frame, rids, req.push_flag,
                expires, Policy(req.push_flag, can_wait=bool(expires)), online=True,
                progress=progress, idempotency_key=req.idempotency_key or "",
                urgent=req.urgent)


def target_of(req: PushRequest) -> str:
    """The audience of a request as its task keeps it: what a recall reaches again."""
    audience = req.audience or Audience(registration_ids=req.registration_ids)
    return msgspec.json.encode(audience).decode()


def _fallback(record: Record) -> Push:
    fallback = decode_fallback(record.value)
    push = frames.decode_server(fallback.frame)
    if not isinstance(push, frames.Push):
        raise DecodeError("fallback frame is not a PUSH")
    alive = fallback.expires_at_ms > now_ms()
    reason = fallback.reason if alive or not fallback.expires_at_ms else Reason.EXPIRED
    return Push(fallback.app_id, fallback.task_id, fallback.msg_id, frames.message_of(push),
                fallback.frame, list(dict.fromkeys(fallback.registration_ids)),
                fallback.push_flag, fallback.expires_at_ms,
                Policy(fallback.push_flag, can_wait=alive, lost_reason=reason), online=False)


def _shard(shard: FanoutShard) -> Push:
    push = shard.push
    # A recall's fan-out records no progress: sent again after a replay, a RECALL or a revoke
    # does no harm, and its task is marked recalled, which would skip its shards.
    progress = None if push.recall else Progress(push.app_id, push.task_id, shard=shard.shard)
    return Push(push.app_id, push.task_id, push.msg_id, push.message, push.frame,
                shard.registration_ids, push.push_flag, push.expires_at_ms,
                Policy(push.push_flag, can_wait=push.expires_at_ms > now_ms()), online=True,
                progress=progress, recall=push.recall, replace=push.replace,
                urgent=push.urgent, released=push.released)


def by_language(push: Push, states: Sequence[DeviceState]) -> list[tuple[Push, list[DeviceState]]]:
    """The push cut by the language each device gets it in (``proto.message.localize`` of its
    record's locale), each part with its message and its PUSH frame encoded once; the push
    whole if its message has one language."""
    if not push.message.locales:
        return [(push, list(states))]
    groups: dict[str, tuple[Message, list[str], list[DeviceState]]] = {}
    for rid, state in zip(push.registration_ids, states, strict=True):
        tag, message = localize(push.message, state.record.locale if state.record else "")
        group = groups.setdefault(tag, (message, [], []))
        group[1].append(rid)
        group[2].append(state)
    sent = frames.decode_server(push.frame)
    ts = sent.ts if isinstance(sent, frames.Push) else now_ms()
    return [(dataclasses.replace(push, message=message, registration_ids=rids,
                                 frame=frames.encode(frames.Push(
                                     mid=push.msg_id, task=push.task_id,
                                     msg=frames.message_map(message), ts=ts))), part)
            for message, rids, part in groups.values()]


def per_push(pushes: Sequence[Push], states: Sequence[DeviceState]
             ) -> Iterator[tuple[Push, list[DeviceState]]]:
    """Each push with the states of its devices, from ``states`` in the order of the pushes'
    devices (as one lookup of a batch answers them)."""
    offset = 0
    for push in pushes:
        count = len(push.registration_ids)
        yield push, list(states[offset:offset + count])
        offset += count
