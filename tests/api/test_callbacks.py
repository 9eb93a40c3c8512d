"""The callback config over HTTP: set (with a secret Herald makes and shows once), read
(never the secret), replace, delete; every refusal stores nothing; never another app's."""

from __future__ import annotations

from proto.callbacks import CallbackConfig
from proto.events import Stage
from tests.api.helpers import auth, dump, refused

HOOK = "https://backend.example.com/herald/events?token=abc"


async def test_set_read_replace_delete(http, app, store):
    response = await http.put("/v1/callback", json={"url": HOOK,
                                                    "stages": ["clicked", "delivered"]},
                              auth=auth(app))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"url", "stages", "secret"}
    assert body["url"] == HOOK and body["stages"] == ["delivered", "clicked"]
    secret = body["secret"]
    assert len(secret) >= 43
    assert await store.get_callback(app.app_id) == CallbackConfig(
        url=HOOK, stages=[Stage.DELIVERED, Stage.CLICKED], secret=secret)

    read = await http.get("/v1/callback", auth=auth(app))
    assert read.status_code == 200
    assert read.json() == {"url": HOOK, "stages": ["delivered", "clicked"]}
    assert secret not in read.text

    # Replacing it makes a new secret; the stages come in stage order, each once.
    again = await http.put("/v1/callback", json={"url": "http://10.0.0.7:8080/hook",
                                                 "stages": ["failed", "sent", "failed"]},
                           auth=auth(app))
    assert again.json()["stages"] == ["sent", "failed"]
    assert again.json()["secret"] not in (secret, "")
    stored = await store.get_callback(app.app_id)
    assert (stored.url, stored.secret) == ("http://10.0.0.7:8080/hook", again.json()["secret"])
    assert again.json()["secret"] not in (await http.get("/v1/callback", auth=auth(app))).text

    deleted = await http.delete("/v1/callback", auth=auth(app))
    assert deleted.status_code == 204 and deleted.content == b""
    assert await store.get_callback(app.app_id) is None
    refused(await http.get("/v1/callback", auth=auth(app)), 404, "no_callback")
    refused(await http.delete("/v1/callback", auth=auth(app)), 404, "no_callback")


async def test_every_stage_may_be_asked_for(http, app, store):
    every = [stage.value for stage in Stage]
    response = await http.put("/v1/callback", json={"url": HOOK, "stages": every[::-1]},
                              auth=auth(app))
    assert response.json()["stages"] == every
    assert (await store.get_callback(app.app_id)).stages == list(Stage)


async def test_refusals_store_nothing(http, app, store, redis_client):
    good = {"url": HOOK, "stages": ["delivered"]}
    first = await http.put("/v1/callback", json=good, auth=auth(app))
    stored = await store.get_callback(app.app_id)
    assert stored.secret == first.json()["secret"]
    before = await dump(redis_client, app.app_id)
    urls = ["ftp://backend.example.com/x", "backend.example.com/hook", "http://", "https:///x",
            "http://:8080/x", "https://exa mple.com/", "https://example.com/\n",
            "https://example.com/\x00", "HTTPS://example.com/", "http://example.com:99999/",
            "http://example.com:port/", "http://[::1/", "https://a.b/" + "x" * 2037, ""]
    for url in urls:
        refused(await http.put("/v1/callback", json={**good, "url": url}, auth=auth(app)),
                400, "bad_url")
    stages = [([], "empty"), (["bogus"], "bad_stage"), (["sent", "Sent"], "bad_stage"),
              ([""], "bad_stage")]
    for names, code in stages:
        refused(await http.put("/v1/callback", json={**good, "stages": names}, auth=auth(app)),
                400, code)
    bodies = [{**good, "secret": "mine"}, {"url": HOOK}, {"stages": ["sent"]},
              {**good, "stages": "sent"}, {**good, "stages": [1]}, {**good, "url": None}]
    for body in bodies:
        refused(await http.put("/v1/callback", json=body, auth=auth(app)), 400, "invalid_body")
    refused(await http.put("/v1/callback", content=b'{"url": "', auth=auth(app),
                           headers={"content-type": "application/json"}), 400, "invalid_body")
    assert await dump(redis_client, app.app_id) == before
    assert await store.get_callback(app.app_id) == stored
    # The longest URL is 2048 characters.
    longest = "https://a.b/" + "x" * 2036
    assert (await http.put("/v1/callback", json={**good, "url": longest},
                           auth=auth(app))).status_code == 200


async def test_another_apps_callback_is_out_of_reach(http, app, other, store, redis_client):
    theirs = await http.put("/v1/callback", json={"url": HOOK, "stages": ["sent"]},
                            auth=auth(other))
    before = await dump(redis_client, other.app_id)
    refused(await http.get("/v1/callback", auth=auth(app)), 404, "no_callback")
    refused(await http.delete("/v1/callback", auth=auth(app)), 404, "no_callback")
    mine = await http.put("/v1/callback", json={"url": "https://me.example.com/",
                                                "stages": ["clicked"]}, auth=auth(app))
    assert mine.status_code == 200
    assert (await http.delete("/v1/callback", auth=auth(app))).status_code == 204
    assert await dump(redis_client, other.app_id) == before
    assert (await store.get_callback(other.app_id)).secret == theirs.json()["secret"]
    assert (await http.get("/v1/callback", auth=auth(other))).json() == {
        "url": HOOK, "stages": ["sent"]}
