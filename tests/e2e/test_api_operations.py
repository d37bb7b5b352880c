"""Operators unblock cases: they find the stuck ones, retry a failing step, reassign a
task within its organisation and escalate; each action is an event with their identity."""

from __future__ import annotations

import asyncio

from api_driver import (
    at_the_border,
    documents_and_clearances,
    fact,
    open_task,
    register,
    through_consent,
)

from domain.boundary import workflow_id_for


async def _events(stack, case_id, event_type):
    return [e for e in await stack.store.read_stream(case_id) if e.event_type == event_type]


async def test_operator_finds_a_border_hold_and_escalates_it(stack):
    case_id = await at_the_border(stack)
    await fact(stack, case_id, "border_hold_started")
    await open_task(stack, "partner.md", case_id, "border_companion")

    op = stack.auth("operator")
    stuck = await stack.http.get("/operations/stuck-cases",
                                 params={"blocked_for_minutes": 0, "blocked_on": "border_hold"},
                                 headers=op)
    [held] = stuck.json()["cases"]
    assert held["case_id"] == case_id and held["stage"] == "border"
    assert held["blocked_on"] == "border_hold" and held["blocked_since"]
    assert (held["sending_mission"], held["receiving_mission"]) == ("mission-rs", "mission-md")
    none = await stack.http.get("/operations/stuck-cases",
                                params={"blocked_for_minutes": 600}, headers=op)
    assert none.json()["cases"] == []

    escalated = await stack.http.post(f"/operations/cases/{case_id}/escalate",
                                      json={"reason": "long_border_hold"}, headers=op)
    assert escalated.status_code == 202
    [event] = await _events(stack, case_id, "operator.escalated")
    assert (event.author_org, event.actor) == ("ops", "operator")
    timeline = await stack.http.get(f"/cases/{case_id}/timeline", headers=stack.auth("coord.rs"))
    assert timeline.json()["events"][-1]["text"] == "operator escalated the case: long border hold"


async def test_operator_reassigns_a_task_to_a_colleague(stack):
    case_id = await register(stack)
    task = await open_task(stack, "coord.rs", case_id, "screening_interview")
    op = stack.auth("operator")
    url = f"/operations/tasks/{task['task_id']}/reassign"
    for body, status in (({"to_user": "officer.md", "reason": "workload"}, 422),
                         ({"to_user": "nobody", "reason": "workload"}, 422),
                         ({"to_user": "coord2.rs", "reason": "telepathy"}, 422)):
        before = await stack.written()
        assert (await stack.http.post(url, json=body, headers=op)).status_code == status
        assert await stack.written() == before
    moved = await stack.http.post(url, json={"to_user": "coord2.rs",
                                             "reason": "assignee_unavailable"}, headers=op)
    assert moved.status_code == 200, moved.text
    [event] = await _events(stack, case_id, "operator.task_reassigned")
    assert (event.author_org, event.actor) == ("ops", "operator")

    from api_driver import screening_body

    refused = await stack.http.post(f"/cases/{case_id}/screening", json=screening_body(),
                                    headers=stack.auth("coord.rs"))
    assert refused.status_code == 403
    assert refused.json()["code"] == "assigned_to_colleague"
    done = await stack.http.post(f"/cases/{case_id}/screening", json=screening_body(),
                                 headers=stack.auth("coord2.rs"))
    assert done.status_code == 200, done.text


async def test_operator_retries_a_failing_step_at_once(stack):
    case_id = await register(stack)
    await through_consent(stack, case_id)
    stack.travel.down = True
    await documents_and_clearances(stack, case_id)
    handle = stack.client.get_workflow_handle(workflow_id_for(case_id))
    for _ in range(200):  # the booking fails and waits for its next attempt
        pending = (await handle.describe()).raw_description.pending_activities
        if pending and pending[0].attempt >= 3:
            break
        await asyncio.sleep(0.1)
    assert pending and pending[0].activity_type.name == "book_journey"

    stack.travel.down = False
    op = stack.auth("operator")
    retried = await stack.http.post(f"/operations/cases/{case_id}/retry", headers=op)
    assert retried.status_code == 202, retried.text
    assert retried.json()["retried"] == ["book_journey"]
    [event] = await _events(stack, case_id, "operator.retry_requested")
    assert (event.author_org, event.actor) == ("ops", "operator")
    # Without the retry the next attempt would wait 4 s more; with it, it runs now.
    for _ in range(25):
        if await _events(stack, case_id, "journey.booked"):
            break
        await asyncio.sleep(0.1)
    assert await _events(stack, case_id, "journey.booked")
    again = await stack.http.post(f"/operations/cases/{case_id}/retry", headers=op)
    assert again.status_code == 409
