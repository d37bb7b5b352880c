"""GET /metrics on the real stack (decision 0060): HTTP series labelled by route templates,
homeward's series equal to the cases driven through the API, the API client's temporal_
series, and nothing in the text that names a case, a person or a raw path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from api_driver import (
    MARKER_ADDRESS,
    MARKER_FAMILY,
    MARKER_NAME,
    at_the_border,
    fact,
    open_task,
    register,
)
from api_stack import FAST_CONFIG, Stack
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from workers.metrics import api_sdk_metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


async def scrape(stack: Stack) -> str:
    response = await stack.http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def until(stack: Stack, holds: Callable[[Samples], bool], timeout: float = 30) -> str:
    """Scrape until the series say what ``holds`` wants (the read models catch up)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        text = await scrape(stack)
        if holds(samples(text)) or asyncio.get_running_loop().time() > deadline:
            return text
        await asyncio.sleep(0.2)


async def test_homeward_series_count_the_cases_driven_through_the_api(stack: Stack):
    late = {**FAST_CONFIG, "task_due": {"screening_interview": "PT1S"}}
    waiting = await register(stack, journey_config=late)
    await open_task(stack, "coord.rs", waiting, "screening_interview")
    held = await at_the_border(stack)
    await fact(stack, held, "border_hold_started")

    def settled(found: Samples) -> bool:
        return (value(found, "homeward_border_holds_open") == 1
                and value(found, "homeward_tasks_overdue", kind="screening_interview") == 1
                and value(found, "homeward_read_model_lag_events") == 0)

    found = samples(await until(stack, settled))
    assert value(found, "homeward_domain_metrics_up") == 1
    assert value(found, "homeward_cases_open", stage="screening") == 1
    assert value(found, "homeward_cases_open", stage="border") == 1
    assert value(found, "homeward_cases_open", stage="closed") is None  # open ones only
    assert value(found, "homeward_cases_open", stage="options") == 0  # zeros are shown
    assert value(found, "homeward_border_holds_open") == 1
    assert 0 <= value(found, "homeward_border_hold_oldest_age_seconds") < 600
    assert value(found, "homeward_tasks_overdue", kind="screening_interview") == 1
    assert value(found, "homeward_tasks_open", kind="screening_interview") == 1
    assert value(found, "homeward_cases_awaiting_rebooking") == 0
    assert value(found, "homeward_rebookings_total") == 0
    assert value(found, "homeward_reintegration_contact_lost") == 0
    assert value(found, "homeward_read_model_lag_events") == 0

    # The hold ends: its series follow.
    await fact(stack, held, "border_hold_lifted")
    found = samples(await until(stack, lambda f: value(f, "homeward_border_holds_open") == 0))
    assert value(found, "homeward_border_holds_open") == 0
    assert value(found, "homeward_border_hold_oldest_age_seconds") == 0


async def test_http_series_name_route_templates_and_nothing_about_a_case(stack: Stack):
    case_id = await register(stack)
    assert (await stack.http.get(f"/cases/{case_id}",
                                 headers=stack.auth("coord.rs"))).status_code == 200
    assert (await stack.http.get(f"/no-such-route/{case_id}")).status_code == 404
    assert (await stack.http.get("/cases/c-0000000000000000dead",
                                 headers=stack.auth("coord.rs"))).status_code == 404
    text = await scrape(stack)
    found = samples(text)
    handlers = {dict(labels).get("handler") for name, labels in found
                if name == "http_requests_total"}
    assert {"/cases", "/cases/{case_id}", "none"} <= handlers
    assert all(h == "none" or h.startswith("/") and "c-" not in h for h in handlers)
    for secret in (case_id, "c-0000000000000000dead", "no-such-route", MARKER_NAME,
                   MARKER_FAMILY, MARKER_ADDRESS, "mission-rs", "coord.rs"):
        assert secret not in text, secret
    # Every homeward label value comes from a closed vocabulary.
    from api.metrics import ESCALATION_REASONS, OPEN_STAGES, OTHER, TASK_KINDS

    allowed = {"stage": set(OPEN_STAGES), "kind": set(TASK_KINDS),
               "reason": set(ESCALATION_REASONS),
               "reader": {"cases", "tasks", "sharing", "access", "timeline"}}
    for name, labels in found:
        if name.startswith("homeward_"):
            for label, code in labels:
                assert code in allowed[label] | {OTHER}, (name, label, code)


async def test_the_api_clients_temporal_series_are_in_its_metrics(stack: Stack):
    runtime, url = api_sdk_metrics()
    client = await Client.connect(stack.client.service_client.config.target_host,
                                  namespace=stack.client.namespace, runtime=runtime)
    await client.count_workflows()  # a call of this client: the SDK counts it
    stack.services.temporal_metrics_url = url
    text = await scrape(stack)
    assert "temporal_request" in text, text[-2000:]
    assert "homeward_cases_open" in text and "http_requests_total" in text
    # The SDK's text is appended once; no family is described twice.
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types))


async def test_the_metrics_token_is_asked_for_when_set(stack: Stack):
    stack.services.metrics_token = "scrape-secret-1"
    refused = await stack.http.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert (await stack.http.get("/metrics", headers={
        "Authorization": "Bearer wrong"})).status_code == 401
    allowed = await stack.http.get("/metrics", headers={
        "Authorization": "Bearer scrape-secret-1"})
    assert allowed.status_code == 200
    assert "homeward_cases_open" in allowed.text
