"""``AudienceStore`` on Redis. Key layout: ``proto.keys`` (all of an app's keys share the hash
tag ``{app}``, so multi-key commands work in Redis Cluster).

Indexes: per tag, per ``(attribute, value)`` and per automatic tag a set of members, so a
condition is a few set operations over exactly the sets it names; per account its tags and
attribute values (what to unindex on change or removal); first and last seen in sorted sets,
so "new" and "active" windows are one range each.

Writes that depend on what is stored (limits, old attribute values, old automatic tags) WATCH
the keys they read, read them in one round trip, check every limit, then write everything in
one MULTI/EXEC: a refused call stores nothing, and a concurrent change makes the transaction
fail and start over instead of leaving an index that disagrees with its account.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import WatchError

from herald.audience_store import RESOLVED_TTL_S
from proto import keys
from proto.audience import (
    DEFAULT_LIMITS,
    AttributeCondition,
    Audience,
    AudienceError,
    AudienceLimits,
    Code,
    DeviceCondition,
    ResolvedAudience,
    TagCondition,
    Unit,
    auto_tags,
    check_accounts,
    check_attribute_names,
    check_attribute_value,
    check_declared,
    check_tags,
    validate_audience,
)
from proto.envelopes import DeviceRecord

# The members of each set and the fields of each hash among KEYS, in one round trip (the keys
# are watched meanwhile, so what the write is planned on cannot change unnoticed).
_READ = """
local out = {}
for i, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key).ok
  if kind == 'set' then out[i] = redis.call('SMEMBERS', key)
  elseif kind == 'hash' then out[i] = redis.call('HGETALL', key)
  else out[i] = {} end
end
return out
"""
# Copy the members of sorted set KEYS[1] scored at least ARGV[1] into set KEYS[2]: set algebra
# takes sets only. SADD goes in slices because Lua's unpack has a stack limit (8000).
_SCORED_SINCE = """
redis.call('DEL', KEYS[2])
local members = redis.call('ZRANGE', KEYS[1], ARGV[1], '+inf', 'BYSCORE')
for i = 1, #members, 1000 do
  redis.call('SADD', KEYS[2], unpack(members, i, math.min(i + 999, #members)))
end
return #members
"""
# Index a device seen at ARGV[2]. KEYS[1]: the hash of the automatic tags it is indexed under;
# KEYS[2..5]: the app's devices, first seen, last seen, the app's accounts; KEYS[6..]: the sets
# of its automatic tags, whose kind and value are ARGV[4 + 2 * (i - 6)] and the next one.
# ARGV[1]: registration id; ARGV[3]: its account or ''. If the device is indexed under a value
# it no longer has, nothing is written and those kinds and values return, for _UNINDEX.
_OBSERVE = """
local new = {}
for i = 4, #ARGV, 2 do new[ARGV[i]] = ARGV[i + 1] end
local indexed = redis.call('HGETALL', KEYS[1])
local stale = {}
for i = 1, #indexed, 2 do
  if new[indexed[i]] ~= indexed[i + 1] then
    stale[#stale + 1] = indexed[i]
    stale[#stale + 1] = indexed[i + 1]
  end
end
if #stale > 0 then return stale end
for i = 6, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[1])
  redis.call('HSET', KEYS[1], ARGV[2 * i - 8], ARGV[2 * i - 7])
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 'LT', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], 'GT', ARGV[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('SADD', KEYS[5], ARGV[3]) end
return stale
"""
# Take device ARGV[1] out of the sets KEYS[2..] of automatic tags it no longer has, whose kind
# and value are ARGV[2 * i - 2] and ARGV[2 * i - 1], where its hash KEYS[1] still says so (a
# concurrent observation may have moved it already).
_UNINDEX = """
for i = 2, #KEYS do
  local kind, value = ARGV[2 * i - 2], ARGV[2 * i - 1]
  if redis.call('HGET', KEYS[1], kind) == value then
    redis.call('SREM', KEYS[i], ARGV[1])
    redis.call('HDEL', KEYS[1], kind)
  end
end
"""
# The devices in the account device sets KEYS[2..] that are also in set KEYS[1].
_BOUND_WITHIN = """
local out = {}
for i = 2, #KEYS do
  for _, rid in ipairs(redis.call('SINTER', KEYS[i], KEYS[1])) do out[#out + 1] = rid end
end
return out
"""
#: Transactions that lose a WATCH race start over this often before the call gives up.
_TRIES = 8
_DAY_MS = 24 * 3600 * 1000

T = TypeVar("T")
Write = Callable[[Pipeline, T], None]


def _text(items: list[bytes] | set[bytes]) -> list[str]:
    return sorted(item.decode() for item in items)


def _fields(flat: list[bytes]) -> dict[str, str]:
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


class RedisAudience:
    """Redis implementation of ``herald.audience_store.AudienceStore`` on a client the caller
    owns (and closes)."""

    def __init__(self, client: redis.Redis, limits: AudienceLimits = DEFAULT_LIMITS) -> None:
        self._redis = client
        self._limits = limits
        self._read = client.register_script(_READ)
        self._scored_since = client.register_script(_SCORED_SINCE)
        self._observe = client.register_script(_OBSERVE)
        self._unindex = client.register_script(_UNINDEX)
        self._bound_within = client.register_script(_BOUND_WITHIN)

    async def _transact(self, watched: Sequence[str], read: Callable[[Pipeline], Awaitable[T]],
                        write: Write[T]) -> None:
        """WATCH ``watched``, ``read``, and queue ``write`` of what was read in one MULTI/EXEC;
        start over if a watched key changed. ``read`` or ``write`` raise to refuse: nothing is
        sent."""
        for _ in range(_TRIES):
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.watch(*watched)
                seen = await read(pipe)
                pipe.multi()
                write(pipe, seen)
                try:
                    await pipe.execute()
                except WatchError:
                    continue
                return
        raise _conflict()

    async def _read_keys(self, pipe: Pipeline, watched: Sequence[str]) -> list[list[bytes]]:
        return await self._read(keys=watched, client=pipe)

    def _accounts(self, accounts: Sequence[str]) -> list[str]:
        return check_accounts(accounts, self._limits.accounts_per_call)

    # Accounts and devices

    async def import_accounts(self, app_id: str, accounts: Sequence[str]) -> int:
        """See ``AudienceStore.import_accounts``."""
        unique = check_accounts(accounts, self._limits.accounts_per_import)
        return await self._redis.sadd(keys.all_accounts(app_id), *unique)

    async def add_device(self, app_id: str, registration_id: str) -> None:
        """See ``AudienceStore.add_device``."""
        await self._redis.sadd(keys.all_devices(app_id), registration_id)

    async def observe_device(self, app_id: str, registration_id: str, record: DeviceRecord,
                             now_ms: int) -> None:
        """See ``AudienceStore.observe_device``: one script in the common case (nothing
        changed, or a first sighting). A device whose data changed first leaves the sets of
        its old values (a second script, since their keys must be declared), so for that
        moment it is in neither its old nor its new set. First seen keeps the smallest time
        and last seen the largest, so observations arriving out of order move neither back."""
        tags = auto_tags(record)
        indexed = keys.device_auto_tags(app_id, registration_id)
        fixed = [indexed, keys.all_devices(app_id), keys.first_seen(app_id),
                 keys.last_seen(app_id), keys.all_accounts(app_id)]
        sets = [keys.auto_tag(app_id, kind, value) for kind, value in tags.items()]
        pairs = [part for pair in tags.items() for part in pair]
        for _ in range(_TRIES):
            stale = await self._observe(keys=[*fixed, *sets],
                                        args=[registration_id, now_ms, record.account, *pairs])
            if not stale:
                return
            old = [keys.auto_tag(app_id, stale[i].decode(), stale[i + 1].decode())
                   for i in range(0, len(stale), 2)]
            await self._unindex(keys=[indexed, *old], args=[registration_id, *stale])
        raise _conflict()

    # Tags of accounts

    async def add_tags(self, app_id: str, accounts: Sequence[str], tags: Sequence[str]) -> None:
        """See ``AudienceStore.add_tags``."""
        accounts, tags = self._accounts(accounts), check_tags(tags, self._limits)
        owned = [keys.account_tags(app_id, a) for a in accounts]
        most = self._limits.tags_per_account

        def write(pipe: Pipeline, current: list[list[bytes]]) -> None:
            for account, have in zip(accounts, current, strict=True):
                after = len({t.decode() for t in have} | set(tags))
                if after > most:
                    raise AudienceError(Code.TOO_MANY_TAGS,
                                        f"account {account!r} would have {after} tags; "
                                        f"at most {most}")
            for key in owned:
                pipe.sadd(key, *tags)
            for name in tags:
                pipe.sadd(keys.tag(app_id, name), *accounts)
            pipe.sadd(keys.all_accounts(app_id), *accounts)

        await self._transact(owned, lambda pipe: self._read_keys(pipe, owned), write)

    async def remove_tags(self, app_id: str, accounts: Sequence[str],
                          tags: Sequence[str]) -> None:
        """See ``AudienceStore.remove_tags``: one MULTI/EXEC, nothing to read first."""
        accounts, tags = self._accounts(accounts), check_tags(tags, self._limits)
        async with self._redis.pipeline(transaction=True) as pipe:
            for account in accounts:
                pipe.srem(keys.account_tags(app_id, account), *tags)
            for name in tags:
                pipe.srem(keys.tag(app_id, name), *accounts)
            await pipe.execute()

    async def remove_all_tags(self, app_id: str, accounts: Sequence[str]) -> None:
        """See ``AudienceStore.remove_all_tags``."""
        accounts = self._accounts(accounts)
        owned = [keys.account_tags(app_id, a) for a in accounts]

        def write(pipe: Pipeline, current: list[list[bytes]]) -> None:
            for account, have in zip(accounts, current, strict=True):
                for name in have:
                    pipe.srem(keys.tag(app_id, name.decode()), account)
            pipe.delete(*owned)

        await self._transact(owned, lambda pipe: self._read_keys(pipe, owned), write)

    async def tags(self, app_id: str, accounts: Sequence[str]) -> dict[str, list[str]]:
        """See ``AudienceStore.tags``."""
        accounts = self._accounts(accounts)
        async with self._redis.pipeline(transaction=False) as pipe:
            for account in accounts:
                pipe.smembers(keys.account_tags(app_id, account))
            found = await pipe.execute()
        return {a: _text(members) for a, members in zip(accounts, found, strict=True)}

    # Attributes of accounts

    async def declare_attributes(self, app_id: str, names: Sequence[str]) -> None:
        """See ``AudienceStore.declare_attributes``."""
        names = check_attribute_names(names, self._limits)
        declared = keys.attribute_names(app_id)
        most = self._limits.attributes_per_app

        async def read(pipe: Pipeline) -> set[bytes]:
            return await pipe.smembers(declared)

        def write(pipe: Pipeline, current: set[bytes]) -> None:
            after = {n.decode() for n in current} | set(names)
            if len(after) > most:
                raise AudienceError(Code.TOO_MANY_ATTRIBUTES,
                                    f"the app would have {len(after)} attributes; at most {most}")
            pipe.sadd(declared, *names)

        await self._transact([declared], read, write)

    async def attributes(self, app_id: str) -> list[str]:
        """See ``AudienceStore.attributes``."""
        return _text(await self._redis.smembers(keys.attribute_names(app_id)))

    async def set_attributes(self, app_id: str,
                             values: Mapping[str, Mapping[str, str]]) -> None:
        """See ``AudienceStore.set_attributes``: moves each account between the value indexes."""
        accounts = self._accounts(list(values))
        for account in accounts:
            if not values[account]:
                raise AudienceError(Code.EMPTY, f"no attributes given for account {account!r}")
            check_attribute_names(values[account], self._limits)
            for value in values[account].values():
                check_attribute_value(value, self._limits)
        names = {name for account in accounts for name in values[account]}

        def write(pipe: Pipeline, current: list[dict[str, str]]) -> None:
            for account, before in zip(accounts, current, strict=True):
                for name, value in values[account].items():
                    old = before.get(name)
                    if old == value:
                        continue
                    if old is not None:
                        pipe.srem(keys.attribute(app_id, name, old), account)
                    pipe.sadd(keys.attribute(app_id, name, value), account)
                pipe.hset(keys.account_attributes(app_id, account), mapping=dict(values[account]))
            pipe.sadd(keys.all_accounts(app_id), *accounts)

        await self._change_attributes(app_id, accounts, names, write)

    async def get_attributes(self, app_id: str,
                             accounts: Sequence[str]) -> dict[str, dict[str, str]]:
        """See ``AudienceStore.get_attributes``."""
        accounts = self._accounts(accounts)
        async with self._redis.pipeline(transaction=False) as pipe:
            for account in accounts:
                pipe.hgetall(keys.account_attributes(app_id, account))
            found = await pipe.execute()
        return {a: {k.decode(): v.decode() for k, v in fields.items()}
                for a, fields in zip(accounts, found, strict=True)}

    async def remove_attributes(self, app_id: str, accounts: Sequence[str],
                                names: Sequence[str]) -> None:
        """See ``AudienceStore.remove_attributes``."""
        accounts = self._accounts(accounts)
        names = check_attribute_names(names, self._limits)

        def write(pipe: Pipeline, current: list[dict[str, str]]) -> None:
            for account, before in zip(accounts, current, strict=True):
                for name in names:
                    if name in before:
                        pipe.srem(keys.attribute(app_id, name, before[name]), account)
                pipe.hdel(keys.account_attributes(app_id, account), *names)

        await self._change_attributes(app_id, accounts, set(names), write)

    async def _change_attributes(self, app_id: str, accounts: list[str], names: set[str],
                                 write: Write[list[dict[str, str]]]) -> None:
        """Run ``write`` on the accounts' current values, if every name is declared."""
        owned = [keys.account_attributes(app_id, a) for a in accounts]
        watched = [keys.attribute_names(app_id), *owned]

        async def read(pipe: Pipeline) -> list[dict[str, str]]:
            declared, *current = await self._read_keys(pipe, watched)
            check_declared(names, (n.decode() for n in declared))
            return [_fields(flat) for flat in current]

        await self._transact(watched, read, write)

    # Audiences

    async def resolve(self, app_id: str, audience: Audience, now_ms: int,
                      ttl_s: int = RESOLVED_TTL_S) -> ResolvedAudience:
        """See ``AudienceStore.resolve``. ``all`` is the app's live device set, not a copy:
        copying the largest set would cost the most, and SSCAN returns every member present
        from the first page to the last. Everything else is one MULTI/EXEC of set operations
        into ``keys.audience``; explicit lists are kept as given, so that the fan-out can
        report each unknown target."""
        validate_audience(audience, self._limits)
        if audience.all:
            return ResolvedAudience(Unit.DEVICES)
        if audience.attributes:
            declared = await self._redis.smembers(keys.attribute_names(app_id))
            pairs = [*audience.attributes.and_, *audience.attributes.or_]
            check_declared((p.name for p in pairs), (n.decode() for n in declared))
        plan = _Plan(app_id, uuid.uuid4().hex, self._scored_since)
        async with self._redis.pipeline(transaction=True) as pipe:
            resolved = await plan.build(pipe, audience, now_ms)
            plan.finish(pipe, ttl_s)
            await pipe.execute()
        return resolved

    async def scan_devices(self, app_id: str, resolved: ResolvedAudience, cursor: int,
                           count: int) -> tuple[int, list[str]]:
        """See ``AudienceStore.scan_devices``: SSCAN, then for a page of accounts one command
        over all their device sets (SUNION, or a script of SINTERs with the audience's device
        set if ``filtered``): two round trips a page."""
        if resolved.unit is Unit.DEVICES:
            source = (keys.audience(app_id, resolved.token) if resolved.token
                      else keys.all_devices(app_id))
            cursor, members = await self._redis.sscan(source, cursor, count=count)
            return cursor, _text(members)
        cursor, accounts = await self._redis.sscan(keys.audience(app_id, resolved.token),
                                                   cursor, count=count)
        if not accounts:
            return cursor, []
        bound = [keys.account(app_id, account.decode()) for account in accounts]
        if resolved.filtered:
            narrow = keys.audience_devices(app_id, resolved.token)
            return cursor, _text(await self._bound_within(keys=[narrow, *bound]))
        return cursor, _text(await self._redis.sunion(bound))

    async def discard(self, app_id: str, resolved: ResolvedAudience) -> None:
        """See ``AudienceStore.discard``. The live set of ``all`` is never deleted."""
        if resolved.token:
            await self._redis.delete(keys.audience(app_id, resolved.token),
                                     keys.audience_devices(app_id, resolved.token))


def _conflict() -> AudienceError:
    return AudienceError(Code.CONFLICT, f"the data changed under {_TRIES} attempts; retry")


class _Plan:
    """Queues the set operations of one resolution on a MULTI pipeline. Intermediate results go
    to keys of their own, deleted in the same transaction."""

    def __init__(self, app_id: str, token: str, scored_since: AsyncScript) -> None:
        self._app = app_id
        self._token = token
        self._scored_since = scored_since
        self._scratch: list[str] = []
        self._results: list[str] = []

    async def build(self, pipe: Pipeline, audience: Audience, now_ms: int) -> ResolvedAudience:
        """Queue the operations that fill the audience's set(s); say what they will hold."""
        out = self._result(keys.audience(self._app, self._token))
        if audience.accounts or audience.registration_ids:
            pipe.sadd(out, *audience.accounts, *audience.registration_ids)
            unit = Unit.ACCOUNTS if audience.accounts else Unit.DEVICES
            return ResolvedAudience(unit, self._token)
        device = audience.device
        if audience.tags or audience.attributes:
            self._accounts(pipe, out, audience.tags, audience.attributes)
            if device:
                narrow = self._result(keys.audience_devices(self._app, self._token))
                await self._devices(pipe, narrow, device, now_ms)
            return ResolvedAudience(Unit.ACCOUNTS, self._token, filtered=device is not None)
        # A filter without tags or attributes has device conditions alone (validate_audience):
        # its result is devices, bound to an account or not.
        assert device is not None
        await self._devices(pipe, out, device, now_ms)
        return ResolvedAudience(Unit.DEVICES, self._token)

    def finish(self, pipe: Pipeline, ttl_s: int) -> None:
        """Drop the intermediates and give the results their TTL."""
        if self._scratch:
            pipe.delete(*self._scratch)
        for key in self._results:
            pipe.expire(key, ttl_s)

    def _result(self, key: str) -> str:
        self._results.append(key)
        return key

    def _scratch_key(self) -> str:
        key = keys.audience(self._app, f"{self._token}.{len(self._scratch)}")
        self._scratch.append(key)
        return key

    def _union(self, pipe: Pipeline, sources: list[str]) -> str:
        if len(sources) == 1:
            return sources[0]
        key = self._scratch_key()
        pipe.sunionstore(key, sources)
        return key

    def _accounts(self, pipe: Pipeline, out: str, tags: TagCondition | None,
                  attributes: AttributeCondition | None) -> None:
        required: list[str] = []
        if tags:
            required += [keys.tag(self._app, t) for t in tags.and_]
            if tags.or_:
                required.append(self._union(pipe, [keys.tag(self._app, t) for t in tags.or_]))
        if attributes:
            required += [keys.attribute(self._app, p.name, p.value) for p in attributes.and_]
            if attributes.or_:
                required.append(self._union(pipe, [keys.attribute(self._app, p.name, p.value)
                                                   for p in attributes.or_]))
        # Only exclusions: they are taken from every account of the app.
        pipe.sinterstore(out, required or [keys.all_accounts(self._app)])
        if tags and tags.not_:
            pipe.sdiffstore(out, [out, *(keys.tag(self._app, t) for t in tags.not_)])

    async def _devices(self, pipe: Pipeline, out: str, device: DeviceCondition,
                       now_ms: int) -> None:
        required = [self._union(pipe, [keys.auto_tag(self._app, kind, v) for v in values])
                    for kind, values in device.values().items()]
        for days, seen in ((device.new_within_days, keys.first_seen(self._app)),
                           (device.active_within_days, keys.last_seen(self._app))):
            if days is not None:
                window = self._scratch_key()
                await self._scored_since(keys=[seen, window], args=[now_ms - days * _DAY_MS],
                                         client=pipe)
                required.append(window)
        pipe.sinterstore(out, required)
