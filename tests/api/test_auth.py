"""Authentication and apps: Basic app credentials on every call, the admin bearer for app
creation, and no way for one app's credentials to act for another."""

from __future__ import annotations

import base64

import httpx

from tests.api.helpers import ADMIN_TOKEN, auth, dump, refused
from tests.harness import metric, scrape


def basic(text: bytes) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(text).decode()}


async def test_app_reads_itself(http, app):
    response = await http.get("/v1/app", auth=auth(app))
    assert response.status_code == 200
    assert response.json() == {"app_id": app.app_id, "created_ms": app.created_ms}


async def test_missing_and_wrong_credentials_are_401(http, app, other, api):
    before = metric(scrape(api.metrics_port), "herald_api_auth_failures_total",
                    reason="rejected")
    attempts = [
        {},
        {"auth": httpx.BasicAuth(app.app_id, "wrong")},
        {"auth": httpx.BasicAuth(app.app_id, "")},
        {"auth": httpx.BasicAuth("no-such-app-anywhere", app.server_secret)},
        # Another app's secret with this app's id, and this app's secret with another's id.
        {"auth": httpx.BasicAuth(app.app_id, other.server_secret)},
        {"auth": httpx.BasicAuth(other.app_id, app.server_secret)},
        {"auth": httpx.BasicAuth("bad:id{x}", app.server_secret)},
        {"headers": {"authorization": "Basic !!!not-base64"}},
        {"headers": basic(f"{app.app_id}{app.server_secret}".encode())},
        {"headers": basic(b"\xff\xfe:\xfd")},
        {"headers": {"authorization": f"Bearer {app.server_secret}"}},
        {"headers": {"authorization": "Basic"}},
        {"headers": {"authorization": "Digest username=x"}},
    ]
    for attempt in attempts:
        response = await http.get("/v1/app", **attempt)
        refused(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Basic")
    after = metric(scrape(api.metrics_port), "herald_api_auth_failures_total", reason="rejected")
    assert after - before >= 6


async def test_every_app_route_needs_credentials(http, api):
    document = (await http.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method in operations:
            url = path.replace("{registration_id}", "r1").replace("{task_id}", "t1")
            url = url.replace("{account}", "u1")
            response = await http.request(method.upper(), url, json={})
            refused(response, 401, "unauthorized")


async def test_app_creation_over_http(http, store, redis_client, uid):
    app_id = f"made-{uid}"
    response = await http.post("/v1/apps", json={"app_id": app_id},
                               headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"app_id", "client_key", "server_secret"}
    assert created["app_id"] == app_id
    record = await store.get_app(app_id)
    assert record is not None
    assert (record.client_key, record.server_secret) == (created["client_key"],
                                                         created["server_secret"])
    assert record.device_secret not in response.text
    # The new credentials work at once, and the app sees only its id and creation time.
    me = await http.get("/v1/app", auth=httpx.BasicAuth(app_id, created["server_secret"]))
    assert me.json() == {"app_id": app_id, "created_ms": record.created_ms}

    # Creating it again changes nothing: the first credentials stay valid.
    before = await dump(redis_client, app_id)
    again = await http.post("/v1/apps", json={"app_id": app_id},
                            headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    refused(again, 409, "app_exists")
    assert await dump(redis_client, app_id) == before


async def test_app_creation_needs_the_admin_token(http, app, redis_client, uid):
    app_id = f"never-{uid}"
    body = {"app_id": app_id}
    response = await http.post("/v1/apps", json=body)
    refused(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    refused(await http.post("/v1/apps", json=body, headers={"authorization": "Bearer nope"}),
            403, "forbidden")
    # An app's own credentials do not create apps.
    refused(await http.post("/v1/apps", json=body, auth=auth(app)), 401, "unauthorized")
    refused(await http.post("/v1/apps", json={"app_id": "no spaces"},
                            headers={"authorization": f"Bearer {ADMIN_TOKEN}"}),
            400, "invalid_body")
    assert await dump(redis_client, app_id) == {}
    assert await dump(redis_client, "no spaces") == {}
