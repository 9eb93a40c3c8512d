"""Honor Push receipts: read the statuses, open Herald's signed biTag. No I/O.

What could be read: Honor's send guide points to a "消息回执" page for receipts (republished
at https://my.oschina.net/u/5873522/blog/10140231), the receipt address is added in the Honor
developer console ("开放服务 > 推送服务 > 应用回执 > 新增回执", per a push provider's guide,
https://uniapp.dcloud.io/unipush_vendor_config.html), and providers list Honor as sending
delivery and click receipts. Honor's receipt page itself could not be read.

Assumed, and to be checked against Honor's page: Honor posts the body of Huawei Push Kit, which
its API mirrors elsewhere (``{"statuses": [{"biTag", "token", "status" | "deliveryStatus",
...}]}``, states as Huawei's, ``vendors.receipts.hms``), and signs nothing Herald knows how to
check. So Herald signs instead: when the app's Honor credentials give ``receipt_key``, the
sender puts a tag (``vendors.receipts.tags``) in ``android.biTag``, and a status is Herald's
when its ``biTag`` is a tag that opens under that key. A tag that does not open is forged
(401); an app without ``receipt_key`` cannot have its tags verified (403); a ``biTag`` that is
no tag at all (a console test, a push sent without receipts) is ignored. Click receipts are
not read: their shape is not known. Nor is a length limit of ``biTag``: a tag is the task id
and 11 characters more.
"""

from __future__ import annotations

from collections.abc import Mapping

from vendors.receipts import hms
from vendors.receipts.model import Post, Receipt
from vendors.receipts.tags import task_of

NAME = "honor"


def read(post: Post, credentials: Mapping[str, str], app_id: str) -> list[Receipt]:
    """The receipts of a post whose tags verify (see the module docstring)."""
    return [hms.receipt(s, task_of(credentials, "", NAME, app_id, s.bi_tag), NAME)
            for s in hms.statuses(post.body, NAME)]
