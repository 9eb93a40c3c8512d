"""Why a receipt post is refused. One root, ``ReceiptError``; the HTTP status and the metric
result hang on each class, so the app maps any refusal the same way:

    ReceiptError
     +-- Malformed      400  not what the vendor documents (nothing counted)
     +-- Forged         401  a signature or tag that does not verify (nothing counted)
     +-- Unverifiable   403  the app's credentials give no way to verify this vendor's receipts
     +-- UnknownApp     404  no such app, or no credentials of the app for the vendor
     +-- TooLarge       413  a body over ``HERALD_MAX_BODY_BYTES``
"""

from __future__ import annotations


class ReceiptError(Exception):
    """A receipt post refused; ``reason`` is safe to answer and log (no secret, no token)."""

    status = 400
    result = "malformed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Malformed(ReceiptError):
    """The body or a header is not what the vendor documents."""


class TooLarge(Malformed):
    """The body is larger than the endpoint takes."""

    status = 413


class Forged(ReceiptError):
    """A vendor signature or a Herald tag that does not verify."""

    status = 401
    result = "forged"


class Unverifiable(Forged):
    """Receipts the app's credentials cannot verify: nothing proves who posted them."""

    status = 403


class UnknownApp(ReceiptError):
    """No app by that id, or none with credentials for the vendor."""

    status = 404
    result = "unknown_app"
