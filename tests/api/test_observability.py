"""Metrics by route template and status, and JSON logs with the app and task ids."""

from __future__ import annotations

from tests.api.helpers import auth
from tests.harness import eventually, metric, scrape


async def test_requests_are_counted_by_route_template(http, api, app, uid):
    labels = {"route": "/v1/tasks/{task_id}", "method": "GET", "status": "404"}
    before = metric(scrape(api.metrics_port), "herald_api_requests_total", **labels)
    for i in range(3):
        await http.get(f"/v1/tasks/none-{uid}-{i}", auth=auth(app))
    await http.get(f"/v1/random-{uid}")
    text = scrape(api.metrics_port)
    assert metric(text, "herald_api_requests_total", **labels) == before + 3
    assert metric(text, "herald_api_requests_total", route="unmatched", method="GET",
                  status="404") >= 1
    assert f"random-{uid}" not in text
    assert metric(text, "herald_api_request_seconds_count", route="/v1/tasks/{task_id}") >= 3


async def test_logs_carry_app_and_task_ids(http, api, app, uid):
    task_id = f"task-{uid}"
    await http.post("/v1/push", json={"task_id": task_id, "message": {"title": "x"},
                                      "registration_ids": ["r1"]}, auth=auth(app))
    line = await eventually(lambda: api.role.find("push accepted", task_id=task_id), 10,
                            "the push's log line")
    assert line["app_id"] == app.app_id and line["role"] == "api"
    assert line["audience"] == "registration_ids"
    await http.get(f"/v1/tasks/bad:{uid}", auth=auth(app))
    refused = await eventually(lambda: api.role.find("refused", code="bad_task_id",
                                                     app_id=app.app_id), 10,
                               "the refusal's log line")
    assert refused["status"] == 400
    assert api.role.find("api started") is not None
