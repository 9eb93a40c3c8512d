"""Offline devices of three vendors get one PushFlag 0 push through the real roles.

A real gateway, router and three ``herald vendor`` processes (APNs, FCM, Huawei) run on the
real Redis and Kafka; the vendors' fakes run in this test's event loop over TLS (HTTP/2 for
APNs) and verify what the vendors verify: the APNs provider JWT (ES256, team, key id), the FCM
service-account assertion and the access token it bought, Huawei's client-credentials token.
The app's credentials for the three vendors go through the store, as ``herald credentials``
stores them. Each fake must receive exactly one accepted request per device, and each device
must get a ``sent`` event on ``push.events``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from herald.device import Device
from herald.redis_store import RedisStore
from proto import keys, topics
from proto.events import decode_event
from tests.e2e import stack
from tests.harness import REDIS, Role, TopicWatcher, eventually, eventually_async, free_port
from tests.vendors.servers.apns import ApnsState, fake_apns
from tests.vendors.servers.base import Served, serve
from tests.vendors.servers.fcm import FcmState, ServiceAccount, fcm_app
from tests.vendors.servers.huawei import HuaweiState, huawei_app

TEAM, KEY_ID, BUNDLE = "TEAM123456", "KEY1234567", "com.example.herald"


@dataclass
class Fakes:
    apns: tuple[ApnsState, Served]
    fcm: tuple[FcmState, Served]
    huawei: tuple[HuaweiState, Served]
    apns_key: ec.EllipticCurvePrivateKey
    fcm_account: ServiceAccount


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    apns_key = ec.generate_private_key(ec.SECP256R1())
    account = ServiceAccount("herald-e2e", "sender@herald-e2e.iam.gserviceaccount.com", "kid-e2e",
                             rsa.generate_private_key(public_exponent=65537, key_size=2048))
    apns_state, apns_app = fake_apns(team_id=TEAM, key_id=KEY_ID, bundle_id=BUNDLE,
                                     public_key=apns_key.public_key())
    fcm_state = FcmState(account, time.time)
    huawei_asgi, huawei_state = huawei_app()
    async with AsyncExitStack() as servers:
        apns = await servers.enter_async_context(serve(apns_app, tls=True))
        fcm = await servers.enter_async_context(serve(fcm_app(fcm_state), tls=True))
        huawei = await servers.enter_async_context(serve(huawei_asgi, tls=True))
        yield Fakes((apns_state, apns), (fcm_state, fcm), (huawei_state, huawei), apns_key,
                    account)


def _credentials(fakes: Fakes) -> dict[str, dict[str, str]]:
    pem = fakes.apns_key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()).decode()
    oauth = fakes.huawei[0].oauth
    return {
        "apns": {"team_id": TEAM, "key_id": KEY_ID, "bundle_id": BUNDLE,
                 "environment": "production", "private_key": pem},
        "fcm": fakes.fcm_account.credentials(f"{fakes.fcm[1].url}/token"),
        "huawei": {"client_id": oauth.client_id, "client_secret": oauth.client_secret},
    }


def _sender(logdir, vendor: str, served: Served, **env: str) -> Role:
    return Role(["vendor", vendor], {"HERALD_METRICS_PORT": str(free_port()),
                                     "HERALD_VENDOR_URL": served.url,
                                     "HERALD_VENDOR_CA_FILE": served.ca_file, **env},
                logdir / f"vendor-{vendor}.log")


async def test_one_push_reaches_offline_devices_of_three_vendors(
        producer, redis_client, fakes, logdir, uid, app):
    store = RedisStore(REDIS)
    try:
        for vendor, credentials in _credentials(fakes).items():
            await store.put_credentials(app.app_id, vendor, credentials)
    finally:
        await store.close()

    events = await TopicWatcher(topics.EVENTS).start()
    ports = stack.ports()
    huawei_url = fakes.huawei[1].url
    roles = [stack.gateway(logdir, f"node-{uid}", ports), stack.router(logdir, ports),
             _sender(logdir, "apns", fakes.apns[1]), _sender(logdir, "fcm", fakes.fcm[1]),
             _sender(logdir, "huawei", fakes.huawei[1],
                     HERALD_VENDOR_AUTH_URL=f"{huawei_url}/oauth2/v3/token")]
    gateway, router, *senders = roles
    tokens = {"apns": uid.encode().hex().ljust(64, "0"), "fcm": f"fcm-token-{uid}",
              "huawei": f"hw-token-{uid}"}
    devices = {vendor: Device(app.app_id, app.client_key, vendor=vendor, vendor_token=token,
                              platform="ios" if vendor == "apns" else "android")
               for vendor, token in tokens.items()}
    task = f"vendors-{uid}"
    try:
        await gateway.wait_log("gateway listening")
        await router.wait_log("partitions assigned")
        for sender in senders:
            await sender.wait_log("partitions assigned")
        for device in devices.values():
            await device.connect(f"ws://127.0.0.1:{ports.gateway}")
            await device.close()

        async def all_offline() -> bool:
            present = await redis_client.mget([keys.presence(app.app_id, d.registration_id)
                                               for d in devices.values()])
            return all(p is None for p in present)

        await eventually_async(all_offline, 10, "the devices' presence to go")
        rids = {vendor: d.registration_id for vendor, d in devices.items()}
        await producer.send_and_wait(topics.REQUESTS, json.dumps({
            "task_id": task, "app_id": app.app_id, "registration_ids": list(rids.values()),
            "push_flag": 0, "message": {"title": "Hello", "body": "from three vendors"},
        }).encode(), key=app.app_id.encode())

        sent = await eventually(lambda: _sent(events, task, 3), 30, "three sent events")
        assert sent == {(rids[v], v) for v in rids}
        _check_apns(fakes, tokens["apns"])
        _check_fcm(fakes, tokens["fcm"])
        _check_huawei(fakes, tokens["huawei"])
    finally:
        for device in devices.values():
            await device.close()
        codes = [await _stop(role) for role in roles]
        await events.stop()
    assert codes == [0] * len(roles)


async def _stop(role: Role) -> int | None:
    """SIGTERM, then SIGKILL if the role does not exit in time: a role that hangs fails the
    test, but must not live on in its consumer group and take the next run's records."""
    try:
        return await role.stop()
    except AssertionError:
        role.kill()
        return None


def _sent(events: TopicWatcher, task: str, count: int) -> set[tuple[str, str]] | None:
    mine = [e for e in (decode_event(r.value) for r in events.records) if e.task_id == task]
    failed = [e for e in mine if e.stage == "failed"]
    assert not failed, f"failed deliveries: {failed}"
    sent = {(e.registration_id, e.channel) for e in mine if e.stage == "sent"}
    return sent if len(sent) == count else None


def _check_apns(fakes: Fakes, token: str) -> None:
    state, _ = fakes.apns
    (request,) = state.requests
    assert (request.status, request.device_token, request.http_version) == (200, token, "2")
    scheme, bearer = request.headers["authorization"].split(" ")
    assert scheme == "bearer" and jwt.get_unverified_header(bearer)["kid"] == KEY_ID
    claims = jwt.decode(bearer, fakes.apns_key.public_key(), algorithms=["ES256"])
    assert claims["iss"] == TEAM
    assert request.headers["apns-topic"] == BUNDLE
    assert request.payload["aps"]["alert"] == {"title": "Hello", "body": "from three vendors"}


def _check_fcm(fakes: Fakes, token: str) -> None:
    state, _ = fakes.fcm
    (claims,) = state.token_requests  # one verified RS256 assertion bought the access token
    assert claims["iss"] == fakes.fcm_account.client_email
    (send,) = state.sends
    assert send["authorization"] == "Bearer ya29.fake-0"
    assert send["body"]["message"]["token"] == token
    assert send["body"]["message"]["notification"] == {"title": "Hello",
                                                       "body": "from three vendors"}


def _check_huawei(fakes: Fakes, token: str) -> None:
    state, _ = fakes.huawei
    (grant,) = state.oauth.requests
    assert grant["client_id"] == state.oauth.client_id
    (send,) = state.sends
    (issued,) = state.oauth.issued
    assert send["headers"]["authorization"] == f"Bearer {issued}"
    assert send["body"]["message"]["token"] == [token]
    notification = send["body"]["message"]["android"]["notification"]
    assert (notification["title"], notification["body"]) == ("Hello", "from three vendors")
