"""The delivery policy over HTTP: set (replacing the whole policy), read, delete; every
refusal stores nothing and the API keeps serving; never another app's."""

from __future__ import annotations

from proto.limits import MAX_CAP_PERIOD_S
from proto.policy import AppPolicy, FrequencyCap, QuietHours
from tests.api.helpers import auth, dump, refused

NIGHT = {"start": "22:00", "end": "07:30:00", "tz": "Europe/Berlin"}
CAP = {"count": 3, "period_s": 86400}
EMPTY = {"quiet_hours": None, "frequency_cap": None}


async def test_set_read_replace_delete(http, app, store):
    assert (await http.get("/v1/policy", auth=auth(app))).json() == EMPTY
    response = await http.put("/v1/policy", json={"quiet_hours": NIGHT, "frequency_cap": CAP},
                              auth=auth(app))
    assert response.status_code == 200, response.text
    assert response.json() == {"quiet_hours": NIGHT, "frequency_cap": CAP}
    assert await store.get_policy(app.app_id) == AppPolicy(
        quiet_hours=QuietHours(start="22:00", end="07:30:00", tz="Europe/Berlin"),
        frequency_cap=FrequencyCap(count=3, period_s=86400))
    read = await http.get("/v1/policy", auth=auth(app))
    assert read.status_code == 200 and read.json() == response.json()

    # A PUT replaces the whole policy: quiet hours left out are gone; the zone defaults to UTC.
    again = await http.put("/v1/policy", json={"quiet_hours": {"start": "23:00", "end": "06:00"}},
                           auth=auth(app))
    assert again.json() == {"quiet_hours": {"start": "23:00", "end": "06:00", "tz": "UTC"},
                            "frequency_cap": None}
    assert (await store.get_policy(app.app_id)).frequency_cap is None

    deleted = await http.delete("/v1/policy", auth=auth(app))
    assert deleted.status_code == 204 and deleted.content == b""
    assert await store.get_policy(app.app_id) is None
    assert (await http.get("/v1/policy", auth=auth(app))).json() == EMPTY
    # Deleting no policy is no error.
    assert (await http.delete("/v1/policy", auth=auth(app))).status_code == 204


async def test_refusals_store_nothing(http, app, store, redis_client):
    good = {"quiet_hours": NIGHT, "frequency_cap": CAP}
    assert (await http.put("/v1/policy", json=good, auth=auth(app))).status_code == 200
    before = await dump(redis_client, app.app_id)
    bad = [
        {"quiet_hours": {**NIGHT, "tz": "Mars/Olympus"}},
        {"quiet_hours": {**NIGHT, "tz": "America"}},
        {"quiet_hours": {**NIGHT, "tz": "../../etc/passwd"}},
        {"quiet_hours": {**NIGHT, "start": "25:00"}},
        {"quiet_hours": {**NIGHT, "end": "7am"}},
        {"quiet_hours": {**NIGHT, "end": "22:00:00"}},
        {"quiet_hours": {"start": "22:00"}},
        {"frequency_cap": {**CAP, "count": 0}},
        {"frequency_cap": {**CAP, "period_s": 59}},
        {"frequency_cap": {**CAP, "period_s": MAX_CAP_PERIOD_S + 1}},
        {"frequency_cap": {**CAP, "per": "account"}},
        {"quiet_hours": NIGHT, "urgent": True},
        [],
    ]
    reasons = [refused(await http.put("/v1/policy", json=body, auth=auth(app)), 400,
                       "invalid_policy")["reason"] for body in bad]
    assert "unknown field `urgent`" in reasons[11]
    zone = refused(await http.put("/v1/policy", json=bad[0], auth=auth(app)), 400,
                   "invalid_policy")
    assert "'Mars/Olympus' is not an IANA time zone" in zone["reason"]
    cap = refused(await http.put("/v1/policy", json=bad[7], auth=auth(app)), 400,
                  "invalid_policy")
    assert "frequency_cap.count" in cap["reason"]
    refused(await http.put("/v1/policy", content=b"{", auth=auth(app),
                           headers={"content-type": "application/json"}), 400, "invalid_policy")
    refused(await http.put("/v1/policy", content=b"{}", auth=auth(app),
                           headers={"content-type": "text/plain"}), 415,
            "unsupported_media_type")
    assert await dump(redis_client, app.app_id) == before
    # Still serving, the good policy in place.
    assert (await http.get("/v1/policy", auth=auth(app))).json() == good


async def test_another_apps_policy_is_out_of_reach(http, app, other, store):
    await http.put("/v1/policy", json={"frequency_cap": CAP}, auth=auth(app))
    assert (await http.get("/v1/policy", auth=auth(other))).json() == EMPTY
    await http.put("/v1/policy", json={"quiet_hours": NIGHT}, auth=auth(other))
    assert (await http.delete("/v1/policy", auth=auth(other))).status_code == 204
    assert (await http.get("/v1/policy", auth=auth(app))).json() == {
        "quiet_hours": None, "frequency_cap": CAP}
    assert await store.get_policy(other.app_id) is None


async def test_without_credentials(http, app):
    refused(await http.get("/v1/policy"), 401, "unauthorized")
    refused(await http.put("/v1/policy", json={}, auth=("nobody", "x")), 401, "unauthorized")
    refused(await http.delete("/v1/policy", auth=(app.app_id, "wrong")), 401, "unauthorized")
