"""Wiring of ``herald vendor NAME`` and ``herald credentials``: every vendor registered, hosts
from settings, the revoke capability uniform, credentials checked and stored."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from herald.redis_store import RedisStore
from herald.settings import VendorSettings
from proto.envelopes import VendorJob, VendorTarget
from proto.message import Message
from tests.harness import REDIS
from vendors.errors import NotSupportedError
from vendors.main import CLIENTS, CREDENTIALS, VENDORS, check_credentials, make_client

ISSUE_VENDORS = {"apns", "fcm", "huawei", "honor", "harmony", "xiaomi", "oppo", "vivo", "meizu"}
JOB = VendorJob(app_id="app", task_id="t1", msg_id="m1", message=Message(title="hi"),
                targets=[VendorTarget("rid-a", "a")])


def test_every_vendor_is_registered_under_its_client_name():
    assert set(VENDORS) == ISSUE_VENDORS | {"sandbox"}
    assert set(CLIENTS) == set(CREDENTIALS) == ISSUE_VENDORS
    for name in VENDORS:
        assert make_client(name, VendorSettings()).name == name


async def test_settings_point_a_client_at_other_hosts():
    settings = VendorSettings(vendor_url="https://fake.test:1", vendor_auth_url="https://a.test")
    huawei = make_client("huawei", settings)
    assert huawei._base_url == "https://fake.test:1"  # type: ignore[attr-defined]
    assert huawei._auth_url == "https://a.test"  # type: ignore[attr-defined]
    apns = make_client("apns", VendorSettings(vendor_sandbox_url="https://dev.test"))
    assert apns._urls == {"production": "https://api.push.apple.com",  # type: ignore
                          "development": "https://dev.test"}
    with pytest.raises(ValueError, match="HERALD_VENDOR_AUTH_URL"):
        make_client("fcm", VendorSettings(vendor_auth_url="https://a.test"))
    with pytest.raises(ValueError, match="unknown vendor"):
        make_client("nokia", VendorSettings())
    await huawei.close()
    await apns.close()


@pytest.mark.parametrize("name", sorted(VENDORS))
async def test_revoke_is_a_uniform_capability(name):
    client = make_client(name, VendorSettings())
    assert isinstance(client.can_revoke, bool) and isinstance(client.needs_credentials, bool)
    # The sandbox revokes so that tests can follow a recall through a vendor.
    assert client.can_revoke == (name in {"huawei", "harmony", "sandbox"})
    assert client.can_replace == (name in {"apns", "fcm"})
    if not client.can_revoke:
        with pytest.raises(NotSupportedError, match="no API to revoke"):
            await client.revoke(JOB, {})
    await client.close()


def test_credentials_are_checked_per_vendor_without_echoing_values():
    check_credentials("xiaomi", {"app_secret": "s", "package_name": "com.x"})
    with pytest.raises(ValueError, match="'package_name'"):
        check_credentials("xiaomi", {"app_secret": "hunter2"})
    with pytest.raises(ValueError, match="takes no credentials"):
        check_credentials("sandbox", {})


def _herald(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "herald", *args], input=stdin, text=True,
                          capture_output=True, env={"HERALD_REDIS_URL": REDIS, "PATH": ""},
                          timeout=60, check=False)


async def test_cli_stores_checked_credentials_and_prints_no_secret(app, tmp_path):
    path = tmp_path / "honor.json"
    path.write_text(json.dumps({"app_id": 104412345, "client_id": "c", "client_secret": "zzz"}))
    done = _herald("credentials", "set", app.app_id, "honor", "--file", str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"app_id": app.app_id, "vendor": "honor",
                                       "fields": ["app_id", "client_id", "client_secret"]}
    store = RedisStore(REDIS)
    try:
        assert await store.get_credentials(app.app_id, "honor") == {
            "app_id": "104412345", "client_id": "c", "client_secret": "zzz"}
    finally:
        await store.close()

    bad = _herald("credentials", "set", app.app_id, "honor", "--file", "-",
                  stdin=json.dumps({"client_id": "c", "client_secret": "zzz"}))
    assert bad.returncode == 2 and "'app_id'" in bad.stderr and "zzz" not in bad.stderr
    missing = _herald("credentials", "set", "no-such-app", "honor", "--file", str(path))
    assert missing.returncode == 1 and "no app" in missing.stderr
