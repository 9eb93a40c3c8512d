"""The routing decision for one push request, without I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from herald.store import DeviceState
from proto.envelopes import PushRequest, VendorTarget
from proto.events import Reason


class Decision(StrEnum):
    """What happens to one device (the label of ``herald_router_decisions_total``)."""

    ONLINE = "online"
    VENDOR = "vendor"
    OFFLINE = "offline"
    NO_CHANNEL = "no_channel"


@dataclass(slots=True)
class Plan:
    """Where each device of one request goes."""

    nodes: dict[str, list[str]] = field(default_factory=dict)
    vendors: dict[str, list[VendorTarget]] = field(default_factory=dict)
    lost: list[tuple[str, Reason]] = field(default_factory=list)
    counts: dict[Decision, int] = field(default_factory=dict)

    def _count(self, decision: Decision) -> None:
        self.counts[decision] = self.counts.get(decision, 0) + 1


def decide(request: PushRequest, devices: Sequence[str],
           states: Sequence[DeviceState]) -> Plan:
    """Online devices go to their node; offline ones to their vendor (PushFlag 0) or nowhere."""
    plan = Plan()
    for rid, state in zip(devices, states, strict=True):
        if state.presence is not None:
            plan.nodes.setdefault(state.presence.node, []).append(rid)
            plan._count(Decision.ONLINE)
        elif request.push_flag == 1:
            plan.lost.append((rid, Reason.OFFLINE))
            plan._count(Decision.OFFLINE)
        elif state.record is None or not state.record.vendor:
            plan.lost.append((rid, Reason.NO_CHANNEL))
            plan._count(Decision.NO_CHANNEL)
        else:
            target = VendorTarget(rid, state.record.vendor_token)
            plan.vendors.setdefault(state.record.vendor, []).append(target)
            plan._count(Decision.VENDOR)
    return plan
