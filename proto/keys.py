"""The Redis key layout.

Per-device keys put ``app:rid`` in a hash tag so that a device's keys share one Redis Cluster
slot (the connect script touches several of them atomically).
"""

PREFIX = "herald"

#: Presence lives this long unless a heartbeat sweep refreshes it.
PRESENCE_TTL_S = 30
#: A node inbox keeps at most this many entries (approximate trim) ...
NODE_INBOX_MAXLEN = 100_000
#: ... and disappears this long after its last write, so a dead node's inbox does not linger.
NODE_INBOX_TTL_S = 3600


def presence(app: str, rid: str) -> str:
    """String ``node:epoch`` of the node that holds the device's connection."""
    return f"{PREFIX}:{{{app}:{rid}}}:presence"


def epoch(app: str, rid: str) -> str:
    """Counter incremented by every connection of the device."""
    return f"{PREFIX}:{{{app}:{rid}}}:epoch"


def device(app: str, rid: str) -> str:
    """msgpack ``DeviceRecord`` (platform, vendor, vendor token)."""
    return f"{PREFIX}:{{{app}:{rid}}}:device"


def node_inbox(node: str) -> str:
    """Stream of ``NodeDelivery`` entries for the gateway node ``node``."""
    return f"{PREFIX}:node:{{{node}}}:inbox"
