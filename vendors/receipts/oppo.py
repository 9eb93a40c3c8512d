"""OPPO PUSH receipts (消息回执): read the posted events, open Herald's tags. No I/O.

What OPPO documents in its notification fields: ``call_back_url`` (where OPPO posts the
delivery receipts, at most 200 characters; only for pushes to registration ids or aliases) and
``call_back_parameter`` (a string of at most 50 characters echoed in them); ``vendors.oppo``
sets both on every message of a batch when the credentials give ``receipt_url``. OPPO posts a
JSON array of events ``{"messageId", "appId", "taskId", "registrationIds", "eventTime",
"param", "eventType"}``, ``registrationIds`` the registration ids (Herald's vendor tokens),
comma separated. OPPO signs nothing in it, so Herald's tag in ``param`` is what makes an event
Herald's (``vendors.receipts.tags``): one that does not open under the app's receipt key
(``receipt_key``, else ``master_secret``) is forged; a ``param`` that is no tag is ignored.

==============  ======================================  ===============================
eventType       OPPO's meaning                          Herald
==============  ======================================  ===============================
push_arrive     delivered to the device                 delivered
regid_invalid   the registration id is not valid        failed, token_invalid
other           not known                               ignored
==============  ======================================  ===============================

OPPO sends no click receipts.

Sources: OPPO Open Platform, "通知栏消息 / 消息体内容定义" (``call_back_url``,
``call_back_parameter``), https://open.oppomobile.com/new/developmentDoc/info?id=11236, and
OPPO's Java server SDK (``Notification.validate``: call_back_parameter 50); the receipt page
("消息回执事件") could not be read here: the body and the event types are taken from public
clients of the API and are to be checked against it. A single event object instead of an
array is read too.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from proto.events import Reason, Stage
from vendors.receipts.model import Post, Receipt, decode, targets
from vendors.receipts.tags import task_of

NAME = "oppo"
SECRET_FIELD = "master_secret"
STAGES = {"push_arrive": (Stage.DELIVERED, ""),
          "regid_invalid": (Stage.FAILED, Reason.TOKEN_INVALID)}


class _Event(msgspec.Struct, rename="camel"):
    event_type: str
    param: str = ""
    registration_ids: str | list[str] = ""


def read(post: Post, credentials: Mapping[str, str], app_id: str) -> list[Receipt]:
    """The receipts of a post whose tags verify (see the module docstring)."""
    events = decode(post.body, list[_Event] | _Event, NAME)
    receipts = []
    for event in events if isinstance(events, list) else [events]:
        task_id = task_of(credentials, SECRET_FIELD, NAME, app_id, event.param)
        stage, reason = STAGES.get(event.event_type, (None, ""))
        receipts.append(Receipt(task_id, targets(event.registration_ids),
                                stage if task_id else None, reason,
                                f"{NAME} {event.event_type[:40]}"))
    return receipts
