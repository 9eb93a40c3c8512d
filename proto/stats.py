"""Push statistics: the funnel of a task, its losses, the trace of one delivery, daily totals.

No I/O. ``herald stats`` folds ``push.events`` into counters in the store (``herald.stats_store``)
under the field names built here; ``funnel_of`` and ``trace_of`` read them back. Counts are of
distinct devices: a device written online and, after its ACK timed out, sent by its vendor is
one ``sent`` device, and one on each channel.

Definitions (as Tencent Push and JPush report them): sendable devices had a way to be reached;
``send_rate`` = sent / sendable, ``delivery_rate`` = delivered / sent, ``click_rate`` = clicked
/ delivered (0 when the denominator is 0).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from proto.events import Stage

#: The funnel's stages, in order.
FUNNEL = (Stage.TARGETED, Stage.SENDABLE, Stage.SENT, Stage.DELIVERED, Stage.CLICKED)
#: The channel of a loss the router decided (no channel, offline, ack timeout, expired, ...).
ROUTING = "routing"
#: Platform of a device whose platform is not known (it was never registered, say).
UNKNOWN = "unknown"

#: Field of a trace: the device's platform.
PLATFORM = "platform"


def total(stage: str) -> str:
    """Counter of the devices that reached ``stage``."""
    return f"t/{stage}"


def by_channel(stage: str, channel: str) -> str:
    """Counter of the devices that reached ``stage`` on ``channel``."""
    return f"c/{stage}/{channel or ROUTING}"


def by_platform(platform: str, stage: str) -> str:
    """Counter of the devices of ``platform`` that reached ``stage``."""
    return f"p/{platform or UNKNOWN}/{stage}"


def lost(channel: str, reason: str) -> str:
    """Counter of the devices lost on ``channel`` (``routing`` for the router) for ``reason``."""
    return f"l/{channel or ROUTING}/{reason}"


def hop(stage: str, channel: str) -> str:
    """Field of a trace: when the delivery reached ``stage`` on ``channel``."""
    return f"{stage}/{channel or ROUTING}"


class Funnel(msgspec.Struct, kw_only=True, frozen=True):
    """Devices at each stage of the funnel, and the rates between them."""

    targeted: int = 0
    sendable: int = 0
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    send_rate: float = 0.0
    delivery_rate: float = 0.0
    click_rate: float = 0.0


class TaskStats(msgspec.Struct, kw_only=True, frozen=True):
    """A task's funnel, the same per channel and per platform, and its losses: ``lost`` by
    reason in all, ``losses`` by channel (``routing`` for the router's decisions) and reason;
    after a recall, the devices it was taken back from, in all and by channel."""

    task_id: str
    app_id: str
    funnel: Funnel
    channels: dict[str, Funnel] = {}
    platforms: dict[str, Funnel] = {}
    lost: dict[str, int] = {}
    losses: dict[str, dict[str, int]] = {}
    recalled: int = 0
    recalled_by_channel: dict[str, int] = {}


class Hop(msgspec.Struct, kw_only=True, frozen=True):
    """One hop of a delivery's trace."""

    stage: str
    channel: str
    ts_ms: int
    node: str = ""
    reason: str = ""


class Trace(msgspec.Struct, kw_only=True, frozen=True):
    """Every hop of one task's delivery to one device, oldest first."""

    task_id: str
    app_id: str
    registration_id: str
    platform: str = ""
    hops: list[Hop] = []


def hop_value(ts_ms: int, node: str, reason: str) -> str:
    """What a trace keeps of a hop."""
    return f"{ts_ms}|{node}|{reason}"


def _funnel(counts: Mapping[str, int]) -> Funnel:
    """A funnel from counts by stage name, with its rates."""
    def rate(part: int, whole: int) -> float:
        return round(part / whole, 6) if whole else 0.0

    n = {stage.value: counts.get(stage.value, 0) for stage in FUNNEL}
    return Funnel(**n, send_rate=rate(n["sent"], n["sendable"]),
                  delivery_rate=rate(n["delivered"], n["sent"]),
                  click_rate=rate(n["clicked"], n["delivered"]))


def funnel_of(app_id: str, task_id: str, fields: Mapping[str, str]) -> TaskStats:
    """A task's statistics from its counters."""
    totals: dict[str, int] = {}
    channels: dict[str, dict[str, int]] = {}
    platforms: dict[str, dict[str, int]] = {}
    losses: dict[str, dict[str, int]] = {}
    for name, value in fields.items():
        kind, _, rest = name.partition("/")
        first, _, second = rest.partition("/")
        count = int(value)
        if kind == "t":
            totals[first] = count
        elif kind == "c":
            channels.setdefault(second, {})[first] = count
        elif kind == "p":
            platforms.setdefault(first, {})[second] = count
        elif kind == "l":
            losses.setdefault(first, {})[second] = count
    lost_by_reason: dict[str, int] = {}
    for reasons in losses.values():
        for reason, count in reasons.items():
            lost_by_reason[reason] = lost_by_reason.get(reason, 0) + count
    recall = Stage.RECALLED.value
    return TaskStats(task_id=task_id, app_id=app_id, funnel=_funnel(totals),
                     channels={c: _funnel(n) for c, n in sorted(channels.items())
                               if any(n.get(s.value) for s in FUNNEL)},
                     recalled=totals.get(recall, 0),
                     recalled_by_channel={c: n[recall] for c, n in sorted(channels.items())
                                          if n.get(recall)},
                     platforms={p: _funnel(n) for p, n in sorted(platforms.items())},
                     lost=dict(sorted(lost_by_reason.items())),
                     losses={c: dict(sorted(r.items())) for c, r in sorted(losses.items())})


def trace_of(app_id: str, task_id: str, registration_id: str,
             fields: Mapping[str, str]) -> Trace | None:
    """One delivery's trace from its stored hops, oldest first; None if nothing is stored."""
    if not fields:
        return None
    hops = []
    for name, value in fields.items():
        stage, sep, channel = name.partition("/")
        if not sep:
            continue
        ts, node, reason = value.split("|", 2)
        hops.append(Hop(stage=stage, channel=channel, ts_ms=int(ts), node=node, reason=reason))
    order = {stage.value: i for i, stage in enumerate(Stage)}
    hops.sort(key=lambda h: (h.ts_ms, order.get(h.stage, len(order))))
    return Trace(task_id=task_id, app_id=app_id, registration_id=registration_id,
                 platform=fields.get(PLATFORM, ""), hops=hops)
