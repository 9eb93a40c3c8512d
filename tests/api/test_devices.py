"""Devices and accounts: a device's data and presence, binding it to an account, the devices
of an account; never another app's."""

from __future__ import annotations

from tests.api.helpers import auth, dump, refused, register


async def test_device_data_without_its_vendor_token(http, app, uid):
    rid = f"dev-{uid}"
    record = await register(app.app_id, rid)
    response = await http.get(f"/v1/devices/{rid}", auth=auth(app))
    assert response.status_code == 200
    assert response.json() == {
        "registration_id": rid, "platform": record.platform, "vendor": record.vendor,
        "locale": record.locale, "tz": record.tz, "app_version": record.app_version,
        "account": "", "created_ms": record.created_ms, "online": False}
    assert record.vendor_token not in response.text


async def test_online_means_presence_on_a_live_node(http, app, store, uid):
    rid = f"dev-{uid}"
    await register(app.app_id, rid)
    await store.connect_device(app.app_id, rid, f"node-{uid}", 30)
    assert (await http.get(f"/v1/devices/{rid}", auth=auth(app))).json()["online"] is False
    await store.node_beat(f"node-{uid}", 5000)
    assert (await http.get(f"/v1/devices/{rid}", auth=auth(app))).json()["online"] is True
    await store.node_gone(f"node-{uid}")
    assert (await http.get(f"/v1/devices/{rid}", auth=auth(app))).json()["online"] is False


async def test_unknown_and_malformed_devices(http, app):
    refused(await http.get("/v1/devices/nobody", auth=auth(app)), 404, "unknown_device")
    for bad in ("a:b", "x" * 65, "%7Bbrace%7D", "%20"):
        refused(await http.get(f"/v1/devices/{bad}", auth=auth(app)), 400,
                "bad_registration_id")


async def test_bind_rebind_and_unbind(http, app, store, uid):
    rid = f"dev-{uid}"
    await register(app.app_id, rid)
    response = await http.put(f"/v1/devices/{rid}/account", json={"account": "alice@x.org"},
                              auth=auth(app))
    assert response.status_code == 204 and response.content == b""
    assert (await store.get_device(app.app_id, rid)).account == "alice@x.org"
    devices = await http.get("/v1/accounts/alice@x.org/devices", auth=auth(app))
    assert devices.json() == {"account": "alice@x.org", "registration_ids": [rid]}
    assert (await http.get(f"/v1/devices/{rid}", auth=auth(app))).json()["account"] == (
        "alice@x.org")

    await http.put(f"/v1/devices/{rid}/account", json={"account": "bob"}, auth=auth(app))
    assert await store.account_devices(app.app_id, "alice@x.org") == []
    assert await store.account_devices(app.app_id, "bob") == [rid]

    response = await http.delete(f"/v1/devices/{rid}/account", auth=auth(app))
    assert response.status_code == 204
    assert (await store.get_device(app.app_id, rid)).account == ""
    assert await store.account_devices(app.app_id, "bob") == []


async def test_binding_refusals_store_nothing(http, app, redis_client, uid):
    rid = f"dev-{uid}"
    await register(app.app_id, rid)
    before = await dump(redis_client, app.app_id)
    for account in ("", "has space", "x" * 65, "colon:inside"):
        refused(await http.put(f"/v1/devices/{rid}/account", json={"account": account},
                               auth=auth(app)), 400, "bad_account")
    refused(await http.put("/v1/devices/nobody/account", json={"account": "carol"},
                           auth=auth(app)), 404, "unknown_device")
    refused(await http.delete("/v1/devices/nobody/account", auth=auth(app)), 404,
            "unknown_device")
    refused(await http.get("/v1/accounts/has%20space/devices", auth=auth(app)), 400,
            "bad_account")
    assert await dump(redis_client, app.app_id) == before


async def test_another_apps_devices_are_out_of_reach(http, app, other, store, redis_client,
                                                    uid):
    rid = f"dev-{uid}"
    await register(other.app_id, rid, account="dana")
    await store.bind_account(other.app_id, rid, "dana")
    before = await dump(redis_client, other.app_id)
    refused(await http.get(f"/v1/devices/{rid}", auth=auth(app)), 404, "unknown_device")
    refused(await http.put(f"/v1/devices/{rid}/account", json={"account": "mallory"},
                           auth=auth(app)), 404, "unknown_device")
    refused(await http.delete(f"/v1/devices/{rid}/account", auth=auth(app)), 404,
            "unknown_device")
    mine = await http.get("/v1/accounts/dana/devices", auth=auth(app))
    assert mine.json() == {"account": "dana", "registration_ids": []}
    assert await dump(redis_client, other.app_id) == before
    theirs = await http.get("/v1/accounts/dana/devices", auth=auth(other))
    assert theirs.json()["registration_ids"] == [rid]
