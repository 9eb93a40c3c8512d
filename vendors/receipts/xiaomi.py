"""Xiaomi MiPush receipts (消息回执): read the ``data`` form field, open Herald's tags. No I/O.

What Xiaomi documents, as its send API and the server SDKs built on it carry it: a message
asks for receipts with ``extra.callback`` (the URL receipts are posted to),
``extra.callback.param`` (a string of at most 64 bytes echoed in the receipts) and
``extra.callback.type`` (a bitmask of the receipt types wanted: ``vendors.xiaomi`` asks for
those of the table below). MiPush then posts ``application/x-www-form-urlencoded`` with one
field, ``data``: a JSON object keyed by MiPush's message id, each value ``{"param", "type",
"targets", "jobkey", "barStatus", "timestamp"}``, ``targets`` the regids (or aliases) the
receipt is about, comma separated. Xiaomi signs nothing in it, so Herald's tag in
``param`` is what makes a receipt Herald's (``vendors.receipts.tags``): one that does not open
under the app's receipt key (``receipt_key``, else ``app_secret``) is forged; a ``param`` that
is no tag at all is ignored (a receipt Herald did not ask for).

=====  ======================================================  ===========================
type   MiPush's meaning                                        Herald
=====  ======================================================  ===========================
1      delivered                                               delivered
2      clicked                                                 clicked
16     invalid target (regid unknown to MiPush)                failed, token_invalid
32     the app called disablePush on the device                failed, vendor_error
64     the device does not match the message's filters         failed, rejected
128    the device's daily limit of messages is reached         failed, quota_exceeded
other  not asked for; its meaning is not known                 ignored
=====  ======================================================  ===========================

Sources: MiPush "服务器API地址以及参数" (``extra.callback`` among the send fields),
https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1559; "服务端Java SDK文档" (the
"消息回执" section: callback.type, the posted ``data``), https://dev.mi.com/xiaomihyperos/
documentation/detail?pId=1558, which could not be read here: the body and the types above are
taken from public clients of the API (``callback.param`` "最大长度64字节"; types 1, 2 and 16;
Xiaomi's support on summing the bits, 1 + 2 + 16 + 32 + 64 + 128 = 243) and are to be checked
against that page.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs

import msgspec

from proto.events import Reason, Stage
from vendors.receipts.errors import Malformed
from vendors.receipts.model import Post, Receipt, code, decode, targets
from vendors.receipts.tags import task_of

NAME = "xiaomi"
SECRET_FIELD = "app_secret"
STAGES = {1: (Stage.DELIVERED, ""), 2: (Stage.CLICKED, ""),
          16: (Stage.FAILED, Reason.TOKEN_INVALID), 32: (Stage.FAILED, Reason.VENDOR_ERROR),
          64: (Stage.FAILED, Reason.REJECTED), 128: (Stage.FAILED, Reason.QUOTA_EXCEEDED)}


class _Receipt(msgspec.Struct):
    type: int | str
    param: str = ""
    targets: str | list[str] = ""


def read(post: Post, credentials: Mapping[str, str], app_id: str) -> list[Receipt]:
    """The receipts of a post whose tags verify (see the module docstring)."""
    try:
        form = parse_qs(post.body.decode(), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise Malformed("a xiaomi receipt is a urlencoded form") from None
    if len(form.get("data", [])) != 1:
        raise Malformed("a xiaomi receipt has one field data")
    receipts = []
    for msg_id, item in decode(form["data"][0], dict[str, _Receipt], NAME).items():
        kind = code(item.type)
        if kind is None:
            raise Malformed(f"xiaomi receipt {msg_id[:64]} has no numeric type")
        task_id = task_of(credentials, SECRET_FIELD, NAME, app_id, item.param)
        stage, reason = STAGES.get(kind, (None, ""))
        receipts.append(Receipt(task_id, targets(item.targets), stage if task_id else None,
                                reason, f"{NAME} type {kind}"))
    return receipts
