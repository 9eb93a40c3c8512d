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


def message_devices(app_id: str, msg_id: str) -> str:
    """Set of the devices whose offline inbox got message ``msg_id``: whom a recall empties."""
    return f"{PREFIX}:{{{app_id}}}:msg:{msg_id}:devices"


def account(app_id: str, account_id: str) -> str:
    """Set of the registration ids bound to an account."""
    return f"{PREFIX}:{{{app_id}}}:account:{account_id}"


def idempotency(app_id: str, key: str) -> str:
    """String: the task id that first used the idempotency key (``proto.limits``)."""
    return f"{PREFIX}:{{{app_id}}}:idempotency:{key}"


def vendor_tokens(app_id: str, vendor: str) -> str:
    """Hash of the app's vendor tokens at ``vendor``: token -> registration id, for receipts,
    which name tokens. Written apart from the device records (another Cluster slot), so a hit
    is confirmed against the record."""
    return f"{PREFIX}:{{{app_id}}}:vendor-tokens:{vendor}"


def node_inbox(node: str) -> str:
    """Stream of ``NodeEntry`` records for the gateway node ``node``."""
    return f"{PREFIX}:node:{{{node}}}:inbox"


def node_alive(node: str) -> str:
    """Exists while the node runs (renewed every sixth of ``NODE_ALIVE_TTL_MS``)."""
    return f"{PREFIX}:node:{{{node}}}:alive"


def credentials(app_id: str, vendor: str) -> str:
    """JSON object of the app's credentials for ``vendor`` (string values; secrets)."""
    return f"{PREFIX}:app:{{{app_id}}}:credentials:{vendor}"


def daily_quota(app_id: str, vendor: str, day: str) -> str:
    """Counter of the devices the app sent to through ``vendor`` on ``day`` (YYYY-MM-DD)."""
    return f"{PREFIX}:app:{{{app_id}}}:quota:{vendor}:{day}"


# Audiences (``herald.redis_audience``). Every key is hash-tagged by the app alone, so that the
# set operations that resolve an audience (SINTERSTORE, SUNIONSTORE, SDIFFSTORE) find all of an
# app's sets in one Redis Cluster slot, and no key names another app. Account ids and attribute
# names cannot contain ':', so a key ending in one of them never reads as another key.


def all_accounts(app_id: str) -> str:
    """Set of the app's known accounts: imported, tagged, given attributes, or seen on a device."""
    return f"{PREFIX}:{{{app_id}}}:accounts"


def all_devices(app_id: str) -> str:
    """Set of the app's registration ids."""
    return f"{PREFIX}:{{{app_id}}}:devices"


def account_tags(app_id: str, account_id: str) -> str:
    """Set of the tags of an account."""
    return f"{PREFIX}:{{{app_id}}}:account-tags:{account_id}"


def tag(app_id: str, name: str) -> str:
    """Set of the accounts that carry the tag ``name`` (any printable text, last in the key)."""
    return f"{PREFIX}:{{{app_id}}}:tag:{name}"


def attribute_names(app_id: str) -> str:
    """Set of the attribute names the app declared."""
    return f"{PREFIX}:{{{app_id}}}:attributes"


def account_attributes(app_id: str, account_id: str) -> str:
    """Hash of an account's attribute values by name."""
    return f"{PREFIX}:{{{app_id}}}:account-attributes:{account_id}"


def attribute(app_id: str, name: str, value: str) -> str:
    """Set of the accounts whose attribute ``name`` is ``value``."""
    return f"{PREFIX}:{{{app_id}}}:attribute:{name}:{value}"


def auto_tag(app_id: str, kind: str, value: str) -> str:
    """Set of the registration ids whose automatic tag ``kind`` (platform, ...) is ``value``."""
    return f"{PREFIX}:{{{app_id}}}:auto:{kind}:{value}"


def device_auto_tags(app_id: str, rid: str) -> str:
    """Hash of the automatic tags a device is indexed under, by kind: where to remove it from
    when its data changes."""
    return f"{PREFIX}:{{{app_id}}}:device-auto:{rid}"


def first_seen(app_id: str) -> str:
    """Sorted set of registration ids by the earliest time (ms) a device was seen."""
    return f"{PREFIX}:{{{app_id}}}:first-seen"


def last_seen(app_id: str) -> str:
    """Sorted set of registration ids by the latest time (ms) a device was seen."""
    return f"{PREFIX}:{{{app_id}}}:last-seen"


def audience(app_id: str, token: str) -> str:
    """Temporary set of a resolved audience's members (accounts or registration ids)."""
    return f"{PREFIX}:{{{app_id}}}:audience:{token}"


def audience_devices(app_id: str, token: str) -> str:
    """Temporary set of the devices a resolved audience of accounts is narrowed to."""
    return f"{PREFIX}:{{{app_id}}}:audience:{token}:devices"


# Push tasks (``herald.redis_tasks``).

#: A task's record outlives its last write by this long: the window in which its status can be
#: read and a replayed record of it is recognised.
TASK_TTL_S = 30 * 24 * 3600


def task(app_id: str, task_id: str) -> str:
    """Hash of a push task's progress (field names in ``proto.tasks``)."""
    return f"{PREFIX}:{{{app_id}}}:task:{task_id}"


def task_shards(app_id: str, task_id: str) -> str:
    """Set of the names of a task's shards that have been routed."""
    return f"{PREFIX}:{{{app_id}}}:task:{task_id}:shards"


# Push statistics (``herald.redis_stats``).

#: A delivery's trace is kept this long by default (``HERALD_TRACE_TTL_S``): a trace costs
#: about 200 bytes a device, so a 10-million-device broadcast keeps 2 GB for this long.
TRACE_TTL_S = 3 * 24 * 3600
#: Daily totals are kept for a little over a year.
DAILY_TTL_S = 400 * 24 * 3600


def task_stats(app_id: str, task_id: str) -> str:
    """Hash of a task's counters (field names in ``proto.stats``)."""
    return f"{PREFIX}:{{{app_id}}}:stats:{task_id}"


def trace(app_id: str, task_id: str, rid: str) -> str:
    """Hash of one delivery's hops (field names in ``proto.stats``): also what makes the
    counting idempotent, since a hop is counted only when its field is new."""
    return f"{PREFIX}:{{{app_id}}}:trace:{task_id}:{rid}"


def daily(app_id: str, day: str) -> str:
    """Hash of the app's devices per stage on ``day`` (YYYY-MM-DD, UTC), over all its tasks."""
    return f"{PREFIX}:{{{app_id}}}:daily:{day}"


def tasks(app_id: str) -> str:
    """Sorted set of the app's task ids by the time they were accepted or started (ms)."""
    return f"{PREFIX}:{{{app_id}}}:tasks"


def callback(app_id: str) -> str:
    """JSON ``CallbackConfig`` of the app (with its signing secret)."""
    return f"{PREFIX}:app:{{{app_id}}}:callback"


# Timers: records to publish later (``herald.redis_timers``): scheduled pushes, paced fan-out
# shards and steps, pushes held through quiet hours. Not hash-tagged by app: one sorted set
# orders every app's timers, so one query finds what is due.


def timers() -> str:
    """Sorted set of timer ids by the time (ms) they are due, or their lease ends."""
    return f"{PREFIX}:timers"


def timer(timer_id: str) -> str:
    """Hash of a timer's record: topic ``t``, key ``k``, value ``v``; for a scheduled push
    also the index ``i`` that lists it and its member ``m`` there."""
    return f"{PREFIX}:timer:{timer_id}"


def scheduled(app_id: str) -> str:
    """Sorted set of the app's scheduled task ids by their send time (ms)."""
    return f"{PREFIX}:{{{app_id}}}:scheduled"


# Delivery policy (``herald.redis_policy``): quiet hours and the frequency cap.


def policy(app_id: str) -> str:
    """JSON ``proto.policy.AppPolicy`` of the app."""
    return f"{PREFIX}:app:{{{app_id}}}:policy"


def cap(app_id: str, subject: str) -> str:
    """Sorted set of the task ids that reached ``subject`` (``proto.policy.cap_subject``: an
    account, or a device without one) within the cap's period, scored by time (ms)."""
    return f"{PREFIX}:{{{app_id}}}:cap:{subject}"


# Push templates (``herald.redis_templates``).


def templates(app_id: str) -> str:
    """Hash of the app's templates: template id to JSON ``proto.templates.Template``."""
    return f"{PREFIX}:{{{app_id}}}:templates"
