"""The receipt body Huawei Push Kit posts, which Honor's receipts are taken to mirror. No I/O.

Huawei documents two versions of the body, both ``{"statuses": [...]}`` (up to 100 entries in
V2, up to 1000 merged results in V1):

- V1: ``{"biTag", "appid", "token", "status", "timestamp", "requestId"}``;
- V2: ``{"token", "pushType", "appPackageName", "biTag", "requestId",
  "deliveryStatus": {"result", "timestamp"}}`` (and ``formStatus`` for card refreshes).

``biTag`` is what the send request carried as ``bi_tag`` (``biTag`` at Honor); ``status`` or
``deliveryStatus.result`` is the receipt state:

=====  ===============================================  =====================================
state  Huawei's meaning                                 Herald
=====  ===============================================  =====================================
0      delivered                                        delivered
2      app uninstalled                                  failed, token_invalid
5      token not of the device's (Android) user         failed, token_invalid
22     token of another local user                      failed, token_invalid
6      notifications off (app, channel or minors mode)  failed, vendor_error
10     inactive device (not on Push Kit for 30 days)    failed, vendor_error
15     offline message replaced (collapse key, or over  failed, vendor_error
       the 120 cached messages)
31     the page the message opens is not in the app     failed, not_supported
102    frequency control, 256 frequency limit           failed, rate_limited
144    unknown profile id, 259 content refused          failed, rejected
27     data message cached until the app runs           ignored: it may still arrive
51     device not unlocked since it restarted           ignored: it may still arrive
201    held by Push Kit until the device lifts control  ignored: it may still arrive
other  (14 other error, 188 app not started, ...)       failed, vendor_error
=====  ===============================================  =====================================

The ``detail`` of an event names the vendor and the state (``huawei state 2``).

Sources: "消息回执" (message receipt guide, the states above),
https://developer.huawei.com/consumer/cn/doc/HMSCore-Guides/msg-receipt-guide-0000001050040176
and https://developer.huawei.com/consumer/cn/doc/harmonyos-guides/push-msg-receipt; "Sending
Receipts for Downlink Messages" (V1 body), https://developer.huawei.com/consumer/en/doc/
HMSCore-References-V5/https-send-receipt-api-0000001051066120-V5; "消息回执" API (V2 body),
https://developer.huawei.com/consumer/cn/doc/doccenter-references/api/push-api-msg-receipt.
"""

from __future__ import annotations

import msgspec

from proto.events import Reason, Stage
from vendors.receipts.errors import Malformed
from vendors.receipts.model import Receipt, decode

DELIVERED = 0
#: States of a message that is held or cached and may still arrive: no event.
PENDING = frozenset({27, 51, 201})
FAILURES = {
    **dict.fromkeys((2, 5, 22), Reason.TOKEN_INVALID),
    **dict.fromkeys((6, 10, 15), Reason.VENDOR_ERROR),
    31: Reason.NOT_SUPPORTED,
    **dict.fromkeys((102, 256), Reason.RATE_LIMITED),
    **dict.fromkeys((144, 259), Reason.REJECTED),
}


class _Delivery(msgspec.Struct):
    result: int
    timestamp: int = 0


class Status(msgspec.Struct, rename={"bi_tag": "biTag", "delivery": "deliveryStatus",
                                     "form": "formStatus"}):
    """One entry of ``statuses`` (V1 or V2; fields Herald does not read are skipped)."""

    token: str
    bi_tag: str = ""
    status: int | None = None
    delivery: _Delivery | None = None
    form: _Delivery | None = None

    @property
    def state(self) -> int:
        """The receipt state, whichever version carried it."""
        for found in (self.status, self.delivery and self.delivery.result,
                      self.form and self.form.result):
            if found is not None:
                return found
        raise Malformed("a status carries no state (status or deliveryStatus.result)")


class _Body(msgspec.Struct):
    statuses: list[Status]


def statuses(body: bytes, vendor: str) -> list[Status]:
    """The statuses of a receipt post; ``Malformed`` when it is not one."""
    return decode(body, _Body, vendor).statuses


def receipt(status: Status, task_id: str, vendor: str) -> Receipt:
    """What a status says of the message of ``task_id`` ("" when it is none of Herald's)."""
    state = status.state
    detail = f"{vendor} state {state}"
    tokens = (status.token,)
    if not task_id or state in PENDING:
        return Receipt(task_id, tokens, None, detail=detail)
    if state == DELIVERED:
        return Receipt(task_id, tokens, Stage.DELIVERED, detail=detail)
    return Receipt(task_id, tokens, Stage.FAILED, FAILURES.get(state, Reason.VENDOR_ERROR),
                   detail)
