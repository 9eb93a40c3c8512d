"""``herald receipts``: the endpoint vendors post delivery and click receipts to.

A vendor that reports what became of a message (Huawei, Honor, Xiaomi, OPPO, vivo) posts its
receipts to ``POST /receipts/{vendor}/{app_id}``. The app id names whose credentials verify
them. Per vendor a small module reads and verifies a post without I/O (``huawei``, ``honor``,
``xiaomi``, ``oppo``, ``vivo``, the first two sharing ``hms``); ``tags`` is the signed task tag
Herald asks vendors to echo, shared with the vendor clients that ask for receipts;
``directory`` finds the device of a vendor token; ``events`` turns receipts into
``proto.events.Event`` records; ``app`` is the HTTP shell; ``main`` the entry point.
"""
