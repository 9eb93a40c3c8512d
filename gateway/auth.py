"""Device registration and authentication: client keys, registration ids and device tokens."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Callable

import msgspec

from herald.store import Store
from proto import tokens
from proto.envelopes import AppRecord, DeviceRecord
from proto.events import now_ms
from proto.frames import Hello, Register, Registered


class AuthFailed(Exception):
    """The device could not prove who it is; ``reason`` is safe to show, ``kind`` is counted."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class Authenticator:
    """Checks REGISTER and HELLO against the apps in the store, caching app records briefly so
    that a reconnect storm does not become a read per connection; a rotated key takes effect
    within ``cache_s``."""

    def __init__(self, store: Store, *, token_ttl_s: int, cache_s: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._token_ttl_s = token_ttl_s
        self._cache_s = cache_s
        self._clock = clock
        # One lookup in flight per app: a reconnect storm shares it instead of each
        # connection reading the same record.
        self._apps: dict[str, tuple[float, asyncio.Future[AppRecord | None]]] = {}

    async def app(self, app_id: str) -> AppRecord:
        """The app's record, or ``AuthFailed`` if there is no such app."""
        now = self._clock()
        cached = self._apps.get(app_id)
        if cached is None or cached[0] < now or (cached[1].done() and cached[1].exception()):
            lookup = asyncio.ensure_future(self._store.get_app(app_id))
            cached = (now + self._cache_s, lookup)
            self._apps[app_id] = cached
        record = await asyncio.shield(cached[1])
        if record is None:
            raise AuthFailed("unknown_app", "unknown app")
        return record

    async def register(self, frame: Register) -> Registered:
        """Register a device after checking the client key, or renew the token of
        ``frame.rid``, which needs the last token issued for it (expired or not): the client
        key ships inside every copy of the app, so it cannot prove a device on its own.

        Reinstalling an app loses the registration id, so the new install gets a new one.
        """
        app = await self.app(frame.app)
        if not hmac.compare_digest(frame.key.encode(), app.client_key.encode()):
            raise AuthFailed("bad_client_key", "client key does not match the app")
        existing = None
        if frame.rid:
            try:
                tokens.verify(app.device_secret.encode(), frame.app, frame.rid, frame.token,
                              None)
            except tokens.TokenError as err:
                raise AuthFailed("bad_token", err.reason) from None
            existing = await self._store.get_device(frame.app, frame.rid)
            if existing is None:
                raise AuthFailed("unknown_device", "unknown registration id")
        rid = frame.rid or secrets.token_hex(16)
        base = existing or DeviceRecord(created_ms=now_ms())
        record = _merged(msgspec.structs.replace(base, platform=frame.platform or base.platform),
                         frame)
        await self._store.put_device(frame.app, rid, record)
        await self._store.observe_device(frame.app, rid, record, now_ms())
        exp = int(self._clock()) + self._token_ttl_s
        return Registered(rid=rid, token=tokens.sign(app.device_secret.encode(), frame.app, rid,
                                                     exp), exp=exp)

    async def hello(self, frame: Hello) -> None:
        """Check HELLO's token; apply the device fields it updates."""
        app = await self.app(frame.app)
        try:
            tokens.verify(app.device_secret.encode(), frame.app, frame.rid, frame.token,
                          self._clock())
        except tokens.TokenError as err:
            kind = "expired_token" if err.reason == "token expired" else "bad_token"
            raise AuthFailed(kind, err.reason) from None
        if frame.vendor or frame.locale or frame.tz or frame.appver:
            record = await self._store.get_device(frame.app, frame.rid)
            if record is None:
                raise AuthFailed("unknown_device", "unknown registration id")
            updated = _merged(record, frame)
            if updated != record:
                await self._store.put_device(frame.app, frame.rid, updated)



async def observe(store: Store, app_id: str, registration_id: str) -> None:
    """Record that the device was seen now: its automatic tags and last-seen time, which
    lifecycle audiences ("active within N days") read."""
    record = await store.get_device(app_id, registration_id)
    if record is not None:
        await store.observe_device(app_id, registration_id, record, now_ms())


def _merged(record: DeviceRecord, frame: Register | Hello) -> DeviceRecord:
    """The record with the device fields the frame carries (empty fields keep their value)."""
    return msgspec.structs.replace(
        record, vendor=frame.vendor or record.vendor,
        vendor_token=frame.vtoken or record.vendor_token, locale=frame.locale or record.locale,
        tz=frame.tz or record.tz, app_version=frame.appver or record.app_version)
