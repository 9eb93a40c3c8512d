"""Push requests naming a template, as the router consumes them from ``push.requests``.

Before a batch is decoded, ``fetch`` reads the templates its requests name from the store in
one round trip; ``rendered`` (no I/O) then fills each request's template in, so everything
after it sees a request with a message, as if the backend had sent that message. A request
whose template is unknown, or whose variables do not fit it, raises ``TemplateError``: the
router rejects the record (dead letter, task ``rejected``) and sends nothing.

The HTTP API renders its pushes itself before publishing them (``router.api.push``); this is
for backends that publish to Kafka directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from herald.bus import Record
from herald.store import Store
from proto import topics
from proto.envelopes import PushRequest, decode_push_request
from proto.errors import DecodeError
from proto.templates import Template, fill

#: The templates of a batch, by (app id, template id).
Templates = Mapping[tuple[str, str], Template]


def _may_name_template(value: bytes) -> bool:
    # Cheap before decoding: a request without the word (or an escape that could spell it)
    # names no template, and most requests carry a message.
    return b"template" in value or b"\\u" in value


def wanted(records: Sequence[Record]) -> list[tuple[str, str]]:
    """The (app id, template id) of each push request of ``records`` that names a template,
    each once; records that do not decode are left to ``router.intake`` to reject."""
    refs: dict[tuple[str, str], None] = {}
    for record in records:
        if record.topic != topics.REQUESTS or not _may_name_template(record.value):
            continue
        try:
            request = decode_push_request(record.value)
        except DecodeError:
            continue
        if request.template is not None:
            refs[(request.app_id, request.template.template_id)] = None
    return list(refs)


async def fetch(store: Store, records: Sequence[Record]) -> dict[tuple[str, str], Template]:
    """The templates the push requests of ``records`` name, in one round trip (none if they
    name none); a template that does not exist is absent."""
    refs = wanted(records)
    if not refs:
        return {}
    found = await store.get_templates(refs)
    return {ref: template for ref, template in zip(refs, found, strict=True)
            if template is not None}


def rendered(request: PushRequest, templates: Templates) -> PushRequest:
    """``request`` with its template filled in as its message (itself if it has a message).
    Raises ``TemplateError``."""
    ref = request.template
    if ref is None:
        return request
    return fill(request, templates.get((request.app_id, ref.template_id)))
