"""``TemplateStore`` on Redis: per app one hash of its templates (``proto.keys.templates``),
template id to JSON, hash-tagged by the app."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis

from herald.template_store import Created
from proto import keys
from proto.errors import DecodeError
from proto.templates import Template, decode_template, encode_template

# Create a template unless its id is taken or the app is full, in one step, so two racing
# creates of one id store one. KEYS[1]: the app's templates; ARGV: id, JSON, the most kept.
# Returns 1 (created), 0 (exists), -1 (full).
_ADD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
# Replace a template only if it exists: an update never creates one.
_REPLACE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
_CREATED = {1: Created.CREATED, 0: Created.EXISTS, -1: Created.FULL}


def _decoded(raw: bytes | None) -> Template | None:
    if raw is None:
        return None
    try:
        return decode_template(raw)
    except DecodeError:
        return None


class RedisTemplates:
    """Redis implementation of ``herald.template_store.TemplateStore`` on a client the caller
    owns."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._add = client.register_script(_ADD)
        self._replace = client.register_script(_REPLACE)

    async def add_template(self, app_id: str, template: Template, max_templates: int) -> Created:
        """See ``TemplateStore.add_template``."""
        done = await self._add(keys=[keys.templates(app_id)],
                               args=[template.template_id, encode_template(template),
                                     max_templates])
        return _CREATED[int(done)]

    async def replace_template(self, app_id: str, template: Template) -> bool:
        """See ``TemplateStore.replace_template``."""
        return bool(await self._replace(keys=[keys.templates(app_id)],
                                        args=[template.template_id, encode_template(template)]))

    async def get_template(self, app_id: str, template_id: str) -> Template | None:
        """See ``TemplateStore.get_template``."""
        return _decoded(await self._redis.hget(keys.templates(app_id), template_id))

    async def list_templates(self, app_id: str) -> list[Template]:
        """See ``TemplateStore.list_templates``."""
        stored = await self._redis.hgetall(keys.templates(app_id))
        found = (_decoded(raw) for _, raw in sorted(stored.items()))
        return [template for template in found if template is not None]

    async def delete_template(self, app_id: str, template_id: str) -> bool:
        """See ``TemplateStore.delete_template``."""
        return bool(await self._redis.hdel(keys.templates(app_id), template_id))

    async def get_templates(self, refs: Sequence[tuple[str, str]]) -> list[Template | None]:
        """See ``TemplateStore.get_templates``: a pipeline of HGETs (the apps' keys live in
        different Cluster slots)."""
        if not refs:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for app_id, template_id in refs:
                pipe.hget(keys.templates(app_id), template_id)
            raws = await pipe.execute()
        return [_decoded(raw) for raw in raws]
