"""The HTTP shell of ``herald receipts``: ``POST /receipts/{vendor}/{app_id}``.

Per post: the body (at most ``HERALD_MAX_BODY_BYTES``, else 413); the app's credentials for the
vendor (cached ``CREDENTIALS_TTL_S``; none, or no such app: 404); the vendor module reads and
verifies it (400 malformed, 401 forged, 403 unverifiable: nothing published, nothing counted
but the refusal); the devices of its tokens, in one directory round trip; the events, published
on ``push.events`` keyed by task id, and only once Kafka has them all is the vendor answered
200 ``{"code": "0", "message": "success"}`` (what Huawei expects; the others want a 200). A
store, directory or Kafka failure is answered 503, so that the vendor posts again: a receipt is
published at least once, and event consumers dedupe by task, device, stage and channel.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from herald.bus import Bus
from herald.store import Store
from proto import topics
from proto.events import encode_event
from proto.limits import ID_RE
from vendors.credentials import CredentialCache, Secrets
from vendors.receipts import honor, huawei, metrics, oppo, vivo, xiaomi
from vendors.receipts.directory import TokenDirectory
from vendors.receipts.errors import Malformed, ReceiptError, TooLarge, UnknownApp
from vendors.receipts.events import UNKNOWN, Outcome, events_of, tokens_to_find
from vendors.receipts.model import Post, Reader, Receipt

log = structlog.get_logger()

#: The reader of each vendor's posts, by vendor id.
READERS: dict[str, Reader] = {m.NAME: m.read for m in (huawei, honor, xiaomi, oppo, vivo)}
ACK = {"code": "0", "message": "success"}
#: A credential rotation reaches the receipt endpoint within this time, as it reaches senders.
CREDENTIALS_TTL_S = 30.0
#: Longest wait for Kafka to store a post's events before the vendor is told to retry.
PUBLISH_TIMEOUT_S = 10.0
#: Registration ids one log line names at most (a post may name a thousand devices).
LOGGED_DEVICES = 20


class Receiver:
    """Takes receipt posts: reads, verifies, resolves devices, publishes events."""

    def __init__(self, store: Store, bus: Bus, directory: TokenDirectory, max_body_bytes: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._bus = bus
        self._directory = directory
        self._max_body = max_body_bytes
        self._clock = clock
        self._credentials = {vendor: CredentialCache(store, vendor, CREDENTIALS_TTL_S)
                             for vendor in READERS}

    async def receive(self, request: Request) -> Response:
        """Handle one post (see the module docstring)."""
        vendor, app_id = request.path_params["vendor"], request.path_params["app_id"]
        read = READERS.get(vendor)
        if read is None:
            return _refusal(404, "unknown_vendor", f"no receipts are taken from {vendor[:40]!r}")
        started = time.perf_counter()
        try:
            body = await self._body(request)
            credentials = await self._app_credentials(vendor, app_id)
        except ReceiptError as exc:
            return _refused(vendor, app_id, exc)
        except Exception as exc:
            return _unavailable(vendor, app_id, exc)
        try:
            receipts = read(Post(body, request.headers, int(self._clock() * 1000)),
                            credentials, app_id)
        except ReceiptError as exc:
            return _refused(vendor, app_id, exc)
        except Exception:
            # A reader's bug: refused, so that the vendor does not post it again and again.
            log.exception("receipt unreadable", vendor=vendor, app_id=app_id)
            return _refused(vendor, app_id, Malformed("the receipt could not be read"))
        try:
            outcome = await self._publish(vendor, app_id, receipts)
        except Exception as exc:
            return _unavailable(vendor, app_id, exc)
        metrics.RECEIPTS.labels(vendor, "accepted").inc()
        for result, count in outcome.devices.items():
            metrics.DEVICES.labels(vendor, result).inc(count)
        metrics.LATENCY.labels(vendor).observe(time.perf_counter() - started)
        return JSONResponse(ACK)

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise TooLarge(f"the body is over {self._max_body} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise TooLarge(f"the body is over {self._max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _app_credentials(self, vendor: str, app_id: str) -> Secrets:
        credentials = await self._credentials[vendor].get(app_id) if ID_RE.match(app_id) else None
        if credentials is None:
            raise UnknownApp(f"no app {app_id[:64]!r} with {vendor} credentials")
        return credentials

    async def _publish(self, vendor: str, app_id: str, receipts: list[Receipt]) -> Outcome:
        tokens = tokens_to_find(receipts)
        found = await self._directory.vendor_token_devices(app_id, vendor, tokens)
        devices = {t: rid for t, rid in zip(tokens, found, strict=True) if rid is not None}
        outcome = events_of(vendor, app_id, receipts, devices, int(self._clock() * 1000))
        futures = [await self._bus.publish(topics.EVENTS, encode_event(e),
                                           key=e.task_id.encode()) for e in outcome.events]
        async with asyncio.timeout(PUBLISH_TIMEOUT_S):
            await asyncio.gather(*futures)
        for event in outcome.events:
            named = event.devices()
            devices = ({"registration_id": event.registration_id} if event.registration_id
                       else {"registration_ids": named[:LOGGED_DEVICES]})
            log.info("receipt", vendor=vendor, app_id=app_id, task_id=event.task_id,
                     msg_id=event.msg_id, stage=event.stage, reason=event.reason,
                     detail=event.detail, devices=len(named), **devices)
        if outcome.devices[UNKNOWN]:
            log.info("receipt tokens of no device", vendor=vendor, app_id=app_id,
                     tokens=outcome.devices[UNKNOWN])
        return outcome


def create_app(store: Store, bus: Bus, directory: TokenDirectory, max_body_bytes: int,
               clock: Callable[[], float] = time.time) -> Starlette:
    """The ASGI app of the receipt endpoint."""
    receiver = Receiver(store, bus, directory, max_body_bytes, clock)
    return Starlette(routes=[Route("/receipts/{vendor}/{app_id}", receiver.receive,
                                   methods=["POST"])])


def _refused(vendor: str, app_id: str, exc: ReceiptError) -> JSONResponse:
    metrics.RECEIPTS.labels(vendor, exc.result).inc()
    log.warning("receipt refused", vendor=vendor, app_id=app_id, result=exc.result,
                reason=exc.reason)
    return _refusal(exc.status, exc.result, exc.reason)


def _refusal(status: int, code: str, reason: str) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "reason": reason}
    return JSONResponse(body, status)


def _unavailable(vendor: str, app_id: str, exc: Exception) -> JSONResponse:
    metrics.RECEIPTS.labels(vendor, "unavailable").inc()
    log.error("receipt not taken", vendor=vendor, app_id=app_id, error=repr(exc))
    return _refusal(503, "unavailable", "try again later")
