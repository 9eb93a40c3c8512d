"""A fast local FCM endpoint (``benchmarks.h2sink``: h2 over TLS) in its own process, and what
the FCM variant of the ``vendor`` scenario needs around it: an app's service account (a fresh
RSA key) and vendor jobs for FCM registration tokens.

The endpoint answers ASGI-shaped requests, no framework, on the two URLs ``vendors.fcm`` calls:

- ``POST /token``, Google's OAuth2 token endpoint for the JWT bearer grant
  (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>``): the assertion is
  checked as ``tests/vendors/servers/fcm.py`` checks it (RS256 under the account's public key,
  ``kid`` its key id, ``iss`` the account, the firebase.messaging scope, ``aud`` this URL, at
  most an hour from ``iat`` to ``exp``) and answered with a fresh random access token.
- ``POST /v1/projects/{project}/messages:send``: the bearer must be one of the access tokens
  handed out, compared in constant time (no RSA on the hot path; the cost is in the token
  exchange, once per hour, as with Google); the project the account's; the body
  ``{"message": {"token": ...}}`` with a well-formed registration token. A good send gets 200
  ``{"name": "projects/<project>/messages/0:<n>"}`` as FCM answers; anything else gets FCM's
  status and a google.rpc error body and is not counted.

The app's credentials carry ``token_uri`` = this endpoint's ``/token``, so the client mints its
access token here; ``HERALD_VENDOR_URL`` points its sends here.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import parse_qs

import jwt
import msgspec
import uvloop
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from benchmarks.h2sink import H2Endpoint, Headers, serve_h2
from benchmarks.producer import Bulk
from benchmarks.sink import Slot, _Window

PROJECT_ID = "herald-bench"
CLIENT_EMAIL = f"bench-sender@{PROJECT_ID}.iam.gserviceaccount.com"
KEY_ID = "benchkey0000000000000000000000000000000a"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Lifetime of an access token, as Google grants it.
TOKEN_LIFETIME_S = 3600
#: Google's front ends announce 100 concurrent streams per HTTP/2 connection.
MAX_STREAMS = 100
#: Counter slot of the access tokens handed out, after ``benchmarks.sink.Slot``'s.
GRANTS = len(Slot)
_SEND_PATH = re.compile(r"/v1/projects/([^/]+)/messages:send\Z")
_TOKEN_RE = re.compile(r"[\w:-]{8,4096}\Z")
_JSON = (b"content-type", b"application/json; charset=UTF-8")


@dataclass(frozen=True, slots=True)
class FcmSinkSpec:
    """Listen on 127.0.0.1:``port`` with this certificate; accept assertions signed by the key
    whose public half is ``public_key_pem``, for ``token_uri``."""

    port: int
    certfile: str
    keyfile: str
    public_key_pem: str
    token_uri: str


@dataclass(frozen=True, slots=True)
class FcmJobs(Bulk):
    """Vendor jobs on ``push.vendor.fcm`` whose device tokens look like FCM registration
    tokens (about 160 characters of ``[\\w:-]``)."""

    VENDOR = "fcm"

    def token(self, device: int) -> str:
        """The FCM registration token of device number ``device``."""
        return registration_token(device)


def registration_token(device: int) -> str:
    """A registration token of FCM's shape for device number ``device``."""
    return f"bench{device:017d}:APA91b{device:0128x}"


def credentials(token_uri: str) -> tuple[dict[str, str], str]:
    """A service account of a fresh RSA key, as its JSON key file holds it (token exchange at
    ``token_uri``), and its public key (PEM) for the endpoint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return ({"type": "service_account", "project_id": PROJECT_ID, "client_email": CLIENT_EMAIL,
             "private_key_id": KEY_ID, "private_key": private, "token_uri": token_uri},
            public.decode())


class _Send(msgspec.Struct):
    token: str


class _Body(msgspec.Struct):
    message: _Send


_decode_body = msgspec.json.Decoder(_Body).decode


def _error(status: int, canonical: str, message: str) -> tuple[int, bytes]:
    return status, msgspec.json.encode({"error": {"code": status, "message": message,
                                                  "status": canonical, "details": []}})


class _Fcm(H2Endpoint):
    """The ASGI app: check, count, answer."""

    def __init__(self, spec: FcmSinkSpec, counters: Any, window: _Window) -> None:
        super().__init__(counters)
        self._public_key = serialization.load_pem_public_key(spec.public_key_pem.encode())
        self._token_uri = spec.token_uri
        self._window = window
        #: Access tokens handed out, with their expiry (a sender mints one an hour).
        self._access: dict[bytes, float] = {}
        self._sent = 0

    def answer(self, scope: dict[str, Any], body: bytes) -> tuple[int, Headers, bytes]:
        """The token endpoint's or ``messages:send``'s answer."""
        if scope["method"] != "POST":
            status, answer = _error(405, "METHOD_NOT_ALLOWED", "Method not allowed.")
        elif scope["path"] == "/token":
            status, answer = self._token(body)
        else:
            status, answer = self._send(scope, body)
        return status, [_JSON, (b"content-length", str(len(answer)).encode())], answer

    def _token(self, body: bytes) -> tuple[int, bytes]:
        form = {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}
        if form.get("grant_type") != JWT_BEARER:
            return 400, msgspec.json.encode({"error": "unsupported_grant_type"})
        invalid = msgspec.json.encode({"error": "invalid_grant",
                                       "error_description": "Invalid JWT Signature."})
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            if header.get("alg") != "RS256" or header.get("kid") != KEY_ID:
                return 400, invalid
            claims = jwt.decode(assertion, self._public_key,  # type: ignore[arg-type]
                                algorithms=["RS256"], audience=self._token_uri,
                                options={"require": ["iss", "scope", "aud", "iat", "exp"]})
        except jwt.PyJWTError:
            return 400, invalid
        if (claims["iss"] != CLIENT_EMAIL or SCOPE not in str(claims["scope"]).split()
                or claims["exp"] - claims["iat"] > 3600):
            return 400, msgspec.json.encode({"error": "invalid_grant",
                                             "error_description": "Invalid JWT."})
        value = f"ya29.bench-{secrets.token_urlsafe(48)}"
        self._access[value.encode()] = time.time() + TOKEN_LIFETIME_S
        self._counters[GRANTS] += 1
        return 200, msgspec.json.encode({"access_token": value, "expires_in": TOKEN_LIFETIME_S,
                                         "token_type": "Bearer"})

    def _authorized(self, header: bytes) -> bool:
        if not header.startswith(b"Bearer "):
            return False
        bearer, now = header[7:], time.time()
        # compare_digest against every live token, so a near miss takes as long as a hit.
        return any(hmac.compare_digest(bearer, token) and expiry > now
                   for token, expiry in self._access.items())

    def _send(self, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
        path = _SEND_PATH.match(scope["path"])
        if path is None:
            return _error(404, "NOT_FOUND", "The requested URL was not found on this server.")
        headers = dict(scope["headers"])
        if not self._authorized(headers.get(b"authorization", b"")):
            return _error(401, "UNAUTHENTICATED",
                          "Request had invalid authentication credentials.")
        project = path.group(1)
        if project != PROJECT_ID:
            return _error(403, "PERMISSION_DENIED", "Permission denied on resource project.")
        try:
            token = _decode_body(body).message.token
        except (msgspec.DecodeError, msgspec.ValidationError):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not _TOKEN_RE.match(token):
            return _error(400, "INVALID_ARGUMENT",
                          "The registration token is not a valid FCM registration token")
        self._sent += 1
        self._counters[Slot.REQUESTS] += 1
        self._counters[Slot.TOKENS] += 1
        self._window.seen()
        return 200, b'{"name":"projects/%s/messages/0:%d"}' % (project.encode(), self._sent)


def main(spec: FcmSinkSpec, counters: Any, conn: Connection) -> None:
    """Entry point of the endpoint process."""
    uvloop.run(_run(spec, counters, conn))


async def _run(spec: FcmSinkSpec, counters: Any, conn: Connection) -> None:
    await serve_h2(lambda window: _Fcm(spec, counters, window), spec.port, spec.certfile,
                   spec.keyfile, MAX_STREAMS, conn)
