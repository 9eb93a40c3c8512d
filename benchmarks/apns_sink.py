"""A fast local APNs endpoint (``benchmarks.h2sink``: h2 over TLS) in its own process, and what the
APNs variant of the ``vendor`` scenario needs around it: a self-signed certificate, an app's
token-auth credentials (a fresh ES256 key) and vendor jobs for 64-hex device tokens.

The endpoint answers from ASGI-shaped requests, no framework: it answers ``200`` to ``POST
/3/device/<64 hex digits>`` over HTTP/2 with an ``apns-topic`` and a provider token
(``authorization: bearer <JWT>``). The JWT check is cheap but real: each DISTINCT token is
verified once (ES256 signature against the app's public key, ``kid``, ``iss``), then
remembered, so a sender that reuses its token (as APNs asks, and as ``vendors.apns`` does)
costs one verification per run, not one per request. Anything else gets APNs's status and
``{"reason": ...}`` and is not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import jwt
import msgspec
import uvloop
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from benchmarks.h2sink import H2Endpoint, Headers, serve_h2
from benchmarks.producer import Bulk
from benchmarks.sink import Slot, _Window

TEAM_ID = "BENCHTEAM1"
KEY_ID = "BENCHKEY01"
BUNDLE_ID = "dev.herald.bench"
_PATH = re.compile(r"/3/device/[0-9a-fA-F]{64}\Z")
_OK_HEADERS = [(b"content-length", b"0")]


@dataclass(frozen=True, slots=True)
class ApnsSinkSpec:
    """Listen on 127.0.0.1:``port`` with this certificate; accept JWTs signed by the key whose
    public half is ``public_key_pem``."""

    port: int
    certfile: str
    keyfile: str
    public_key_pem: str


@dataclass(frozen=True, slots=True)
class ApnsJobs(Bulk):
    """Vendor jobs on ``push.vendor.apns`` whose device tokens are 64 hex digits."""

    VENDOR = "apns"

    def token(self, device: int) -> str:
        """The APNs device token: 64 hex digits of device number ``device``."""
        return f"{device:064x}"


def credentials() -> tuple[dict[str, str], str]:
    """APNs credentials of a fresh ES256 key (production environment), and its public key
    (PEM) for the endpoint."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return ({"team_id": TEAM_ID, "key_id": KEY_ID, "bundle_id": BUNDLE_ID,
             "environment": "production", "private_key": private}, public.decode())


class _Apns(H2Endpoint):
    """The endpoint: check, count, answer."""

    def __init__(self, spec: ApnsSinkSpec, counters: Any, window: _Window) -> None:
        super().__init__(counters)
        self._public_key = serialization.load_pem_public_key(spec.public_key_pem.encode())
        self._window = window
        self._good_jwts: set[bytes] = set()

    def answer(self, scope: dict[str, Any], body: bytes) -> tuple[int, Headers, bytes]:
        """200 with no body for a request APNs would take, else its status and reason."""
        status, reason = self._check(scope)
        if status == 200:
            self._counters[Slot.REQUESTS] += 1
            self._counters[Slot.TOKENS] += 1
            self._window.seen()
            return 200, _OK_HEADERS, b""
        answer = msgspec.json.encode({"reason": reason})
        return status, [(b"content-type", b"application/json"),
                        (b"content-length", str(len(answer)).encode())], answer

    def _check(self, scope: dict[str, Any]) -> tuple[int, str]:
        if scope["method"] != "POST":
            return 405, "MethodNotAllowed"
        if not _PATH.match(scope["path"]):
            return 400, "BadDeviceToken"
        if scope.get("http_version") != "2":
            return 400, "BadPath"
        headers = dict(scope["headers"])
        if not headers.get(b"apns-topic"):
            return 400, "MissingTopic"
        auth = headers.get(b"authorization", b"")
        if not auth.startswith(b"bearer "):
            return 403, "MissingProviderToken"
        token = auth[7:]
        if token not in self._good_jwts:
            try:
                header = jwt.get_unverified_header(token)
                claims = jwt.decode(token, self._public_key,  # type: ignore[arg-type]
                                    algorithms=["ES256"])
            except jwt.PyJWTError:
                return 403, "InvalidProviderToken"
            if header.get("kid") != KEY_ID or claims.get("iss") != TEAM_ID:
                return 403, "InvalidProviderToken"
            self._good_jwts.add(token)
        return 200, ""


def main(spec: ApnsSinkSpec, counters: Any, conn: Connection) -> None:
    """Entry point of the endpoint process."""
    uvloop.run(_run(spec, counters, conn))


async def _run(spec: ApnsSinkSpec, counters: Any, conn: Connection) -> None:
    # As many streams as APNs grants once a valid token was seen.
    await serve_h2(lambda window: _Apns(spec, counters, window), spec.port, spec.certfile,
                   spec.keyfile, 1000, conn)
