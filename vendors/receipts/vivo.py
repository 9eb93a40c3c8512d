"""vivo push receipts (消息回执): read the posted receipts, open Herald's tags. No I/O.

What vivo documents in its message fields: ``extra.callback`` (the URL delivery receipts are
posted to) and ``extra.callback.param`` (a string echoed in them); ``vendors.vivo`` sets both,
on the single push or on the saved list payload, when the credentials give ``receipt_url``.
vivo posts a JSON object keyed by vivo's task id, each value ``{"param", "targets"}``,
``targets`` the regIds (Herald's vendor tokens) delivered to, comma separated: vivo's receipts
(the "old" receipts, set by URL in the message) report deliveries only. vivo's documents name
no signature of the post, so Herald's tag in ``param`` is what makes a receipt Herald's
(``vendors.receipts.tags``): one that does not open under the app's receipt key
(``receipt_key``, else ``app_secret``) is forged; a ``param`` that is no tag is ignored.

Not used: vivo's "new" receipts (from January 2023, a receipt address registered in the vivo
console and named by ``extra.callback.id``), whose body could not be read; the old receipts
stop for an app once it turns the new ones on.

Sources: vivo Open Platform, "PUSH-UPS-API接口文档" (``extra.callback``,
``extra.callback.param``), https://dev.vivo.com.cn/documentCenter/doc/362; vivo's receipt
page could not be read here: the body is taken from public clients of the API, and Herald
keeps the tag within 64 characters (one public client states 192 for ``callback.param``).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from proto.events import Stage
from vendors.receipts.model import Post, Receipt, decode, targets
from vendors.receipts.tags import task_of

NAME = "vivo"
SECRET_FIELD = "app_secret"


class _Receipt(msgspec.Struct):
    param: str = ""
    targets: str | list[str] = ""


def read(post: Post, credentials: Mapping[str, str], app_id: str) -> list[Receipt]:
    """The receipts of a post whose tags verify (see the module docstring)."""
    receipts = []
    for vivo_task, item in decode(post.body, dict[str, _Receipt], NAME).items():
        task_id = task_of(credentials, SECRET_FIELD, NAME, app_id, item.param)
        receipts.append(Receipt(task_id, targets(item.targets),
                                Stage.DELIVERED if task_id else None,
                                detail=f"{NAME} task {vivo_task[:40]}"))
    return receipts
