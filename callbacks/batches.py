"""Cutting a batch of wanted events into posts: per app, in the order consumed. No I/O.

A post names ``MAX_BATCH`` devices at most, not only ``MAX_BATCH`` events: an event may name
many devices (the router's ``targeted`` for a shard of a thousand), and a receiver's body limit
is in bytes. An event naming more devices than a post may carry goes as several events of the
same stage, each naming a part of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import msgspec

from callbacks.poster import Post
from herald.bus import Record
from proto.callbacks import MAX_BATCH, CallbackBatch, CallbackConfig, encode_batch
from proto.events import Event

Wanted = tuple[Event, Record]


def plan(wanted: Sequence[Wanted], configs: Mapping[str, CallbackConfig]) -> list[Post]:
    """The posts of a batch: ``wanted`` are events whose app in ``configs`` asked for them."""
    per_app: dict[str, list[Wanted]] = {}
    for event, record in wanted:
        per_app.setdefault(event.app_id, []).extend((part, record) for part in _parts(event))
    posts: list[Post] = []
    for app_id, items in per_app.items():
        config = configs[app_id]
        for chunk in _chunks(items):
            body = encode_batch(CallbackBatch(app_id=app_id, events=[e for e, _ in chunk]))
            posts.append(Post(app_id, config.url, config.secret, body, len(chunk),
                              source_of([r for _, r in chunk])))
    return posts


def source_of(records: Sequence[Record]) -> str:
    """Where ``records`` were consumed, one ``topic/partition/first-last`` per partition."""
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for r in records:
        low, high = spans.get((r.topic, r.partition), (r.offset, r.offset))
        spans[(r.topic, r.partition)] = (min(low, r.offset), max(high, r.offset))
    return ",".join(f"{topic}/{partition}/{low}-{high}"
                    for (topic, partition), (low, high) in sorted(spans.items()))


def _weight(event: Event) -> int:
    # A task-level event (no device) still takes a place in the post.
    return max(1, len(event.devices()))


def _parts(event: Event) -> list[Event]:
    devices = event.devices()
    if len(devices) <= MAX_BATCH:
        return [event]
    return [msgspec.structs.replace(event, registration_id="",
                                    registration_ids=devices[i:i + MAX_BATCH])
            for i in range(0, len(devices), MAX_BATCH)]


def _chunks(items: list[Wanted]) -> Iterator[list[Wanted]]:
    chunk: list[Wanted] = []
    weight = 0
    for item in items:
        w = _weight(item[0])
        if chunk and weight + w > MAX_BATCH:
            yield chunk
            chunk, weight = [], 0
        chunk.append(item)
        weight += w
    if chunk:
        yield chunk
