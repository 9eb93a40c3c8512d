"""Receipts to ``proto.events.Event`` records. No I/O.

One event per task, stage, reason and vendor detail, naming every device it is about
(``registration_id`` for one, ``registration_ids`` for more, as the router groups them), with
``channel`` the vendor id and ``msg_id`` the task id (Herald's message id is its task id). A
token no device holds cannot be named and is only counted (``unknown``); a receipt without a
stage is counted as ``ignored``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from proto.events import Event
from vendors.receipts.model import Receipt

IGNORED, UNKNOWN = "ignored", "unknown"


@dataclass
class Outcome:
    """The events of a post and its devices counted by outcome (stage, ignored, unknown)."""

    events: list[Event] = field(default_factory=list)
    devices: Counter[str] = field(default_factory=Counter)


def tokens_to_find(receipts: Sequence[Receipt]) -> list[str]:
    """The tokens whose devices are needed: those of receipts that become events."""
    return list(dict.fromkeys(t for r in receipts if r.stage is not None for t in r.tokens))


def events_of(vendor: str, app_id: str, receipts: Sequence[Receipt],
              devices: Mapping[str, str], now_ms: int) -> Outcome:
    """The events of ``receipts``; ``devices`` maps the tokens found to registration ids."""
    outcome = Outcome()
    groups: dict[tuple[str, str, str, str], dict[str, None]] = {}
    for receipt in receipts:
        if receipt.stage is None:
            outcome.devices[IGNORED] += len(receipt.tokens)
            continue
        group = groups.setdefault(
            (receipt.task_id, receipt.stage, receipt.reason, receipt.detail), {})
        for token in receipt.tokens:
            rid = devices.get(token)
            if rid is None:
                outcome.devices[UNKNOWN] += 1
            elif rid not in group:
                group[rid] = None
                outcome.devices[receipt.stage] += 1
    for (task_id, stage, reason, detail), rids in groups.items():
        if not rids:
            continue
        named = list(rids)
        one = named[0] if len(named) == 1 else ""
        outcome.events.append(Event(stage=stage, task_id=task_id, app_id=app_id,
                                    msg_id=task_id, registration_id=one,
                                    registration_ids=[] if one else named, channel=vendor,
                                    reason=reason, detail=detail, ts_ms=now_ms))
    return outcome
