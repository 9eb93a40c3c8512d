"""The routing decision for the devices of one push, without I/O."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from herald.store import DeviceState
from proto.envelopes import VendorTarget
from proto.events import Channel, Reason


class Decision(StrEnum):
    """What happens to one device (the label of ``herald_router_decisions_total``)."""

    ONLINE = "online"
    VENDOR = "vendor"
    INBOX = "inbox"
    OFFLINE = "offline"
    NO_CHANNEL = "no_channel"


@dataclass(slots=True)
class Plan:
    """Where each device of one push goes."""

    nodes: dict[str, list[str]] = field(default_factory=dict)
    vendors: dict[str, list[VendorTarget]] = field(default_factory=dict)
    inbox: list[str] = field(default_factory=list)
    lost: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[Decision, int] = field(default_factory=dict)

    def count(self, decision: Decision) -> None:
        """Count one device's decision."""
        self.counts[decision] = self.counts.get(decision, 0) + 1

    def sendable(self) -> dict[str, list[str]]:
        """The devices that have a way to be reached, by channel."""
        return {Channel.ONLINE: [rid for rids in self.nodes.values() for rid in rids],
                Channel.INBOX: self.inbox,
                **{vendor: [t.registration_id for t in targets]
                   for vendor, targets in self.vendors.items()}}


@dataclass(frozen=True, slots=True)
class Policy:
    """What the push asks for when a device is not reachable online."""

    push_flag: int
    #: The push may still wait in the offline inbox (it has a lifetime that has not ended).
    can_wait: bool
    #: The reason recorded when a device gets the push nowhere.
    lost_reason: str = ""


def decide(policy: Policy, devices: Sequence[str], states: Sequence[DeviceState],
           alive: Collection[str]) -> Plan:
    """Online devices (on a live node) go to their node. The others: PushFlag 0 and a vendor
    channel -> the vendor; else a lifetime -> the offline inbox; else nowhere, with a reason."""
    plan = Plan()
    for rid, state in zip(devices, states, strict=True):
        presence = state.presence
        record = state.record
        if presence is not None and presence.node in alive:
            plan.nodes.setdefault(presence.node, []).append(rid)
            plan.count(Decision.ONLINE)
        elif policy.push_flag == 0 and record is not None and record.vendor:
            target = VendorTarget(rid, record.vendor_token)
            plan.vendors.setdefault(record.vendor, []).append(target)
            plan.count(Decision.VENDOR)
        elif policy.can_wait:
            plan.inbox.append(rid)
            plan.count(Decision.INBOX)
        elif policy.push_flag == 1:
            plan.lost.append((rid, policy.lost_reason or Reason.OFFLINE))
            plan.count(Decision.OFFLINE)
        else:
            plan.lost.append((rid, policy.lost_reason or Reason.NO_CHANNEL))
            plan.count(Decision.NO_CHANNEL)
    return plan


def by_platform(devices: Sequence[str], states: Sequence[DeviceState]) -> dict[str, list[str]]:
    """The devices by the platform of their record ('' for a device without one)."""
    groups: dict[str, list[str]] = {}
    for rid, state in zip(devices, states, strict=True):
        groups.setdefault(state.record.platform if state.record is not None else "",
                          []).append(rid)
    return groups


def take_back(devices: Sequence[str], states: Sequence[DeviceState], alive: Collection[str]
              ) -> tuple[dict[str, list[str]], dict[str, list[VendorTarget]]]:
    """Where a recall reaches each device: its node if it is online on a live one, else its
    vendor channel if it has one (else nowhere: its inbox was emptied already)."""
    nodes: dict[str, list[str]] = {}
    vendors: dict[str, list[VendorTarget]] = {}
    for rid, state in zip(devices, states, strict=True):
        if state.presence is not None and state.presence.node in alive:
            nodes.setdefault(state.presence.node, []).append(rid)
        elif state.record is not None and state.record.vendor:
            vendors.setdefault(state.record.vendor, []).append(
                VendorTarget(rid, state.record.vendor_token))
    return nodes, vendors
