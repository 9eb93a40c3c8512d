"""The Redis key layout.

Per-device keys put ``app:rid`` in a hash tag so that a device's keys share one Redis Cluster
slot (the connect and inbox scripts touch several of them atomically).
"""

PREFIX = "herald"

#: Presence lives this long unless a heartbeat sweep refreshes it.
PRESENCE_TTL_S = 30
#: A node's liveness key lives this long unless the node renews it (every second). The router
#: treats presence on a node without liveness as offline, so a dead node's devices read as
#: offline within this time, shorter than one heartbeat interval.
NODE_ALIVE_TTL_MS = 3000
#: A node inbox keeps at most this many entries (approximate trim) ...
NODE_INBOX_MAXLEN = 100_000
#: ... and disappears this long after its last write, so a dead node's inbox does not linger.
NODE_INBOX_TTL_S = 3600


def app(app_id: str) -> str:
    """msgpack ``AppRecord``."""
    return f"{PREFIX}:app:{{{app_id}}}"


def presence(app_id: str, rid: str) -> str:
    """String ``node:epoch`` of the node that holds the device's connection."""
    return f"{PREFIX}:{{{app_id}:{rid}}}:presence"


def epoch(app_id: str, rid: str) -> str:
    """Counter incremented by every connection of the device."""
    return f"{PREFIX}:{{{app_id}:{rid}}}:epoch"


def device(app_id: str, rid: str) -> str:
    """msgpack ``DeviceRecord``."""
    return f"{PREFIX}:{{{app_id}:{rid}}}:device"


def inbox(app_id: str, rid: str) -> str:
    """Sorted set of message ids waiting for the device, scored by the time they were stored."""
    return f"{PREFIX}:{{{app_id}:{rid}}}:inbox"


def message(app_id: str, msg_id: str) -> str:
    """The PUSH frame of an inbox message, stored once per message and expiring with it."""
    return f"{PREFIX}:{{{app_id}}}:msg:{msg_id}"


def account(app_id: str, account_id: str) -> str:
    """Set of the registration ids bound to an account."""
    return f"{PREFIX}:{{{app_id}}}:account:{account_id}"


def node_inbox(node: str) -> str:
    """Stream of ``NodeEntry`` records for the gateway node ``node``."""
    return f"{PREFIX}:node:{{{node}}}:inbox"


def node_alive(node: str) -> str:
    """Exists while the node runs (renewed every second, ``NODE_ALIVE_TTL_MS``)."""
    return f"{PREFIX}:node:{{{node}}}:alive"
