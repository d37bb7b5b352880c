"""An operator sees stages, blocks and tasks, and never identity: every response an
operator can get about a case is searched for the person's marker values."""

from __future__ import annotations

import json

from api_driver import (
    MARKER_ADDRESS,
    MARKER_ANSWERS,
    MARKER_FAMILY,
    MARKER_NAME,
    open_task,
    register,
    through_consent,
)

from store.vault import IDENTITY_FIELD_NAMES

MARKERS = (MARKER_NAME, MARKER_FAMILY, MARKER_ADDRESS, MARKER_ANSWERS)


def keys_of(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


async def test_operator_responses_hold_no_identity(stack):
    case_id = await register(stack)
    await through_consent(stack, case_id)
    task = await open_task(stack, "coord.rs", case_id, "travel_documents")
    op = stack.auth("operator")
    bodies = []
    for method, path, body in (
        ("GET", "/cases", None),
        ("GET", f"/cases/{case_id}", None),
        ("GET", f"/cases/{case_id}/timeline", None),
        ("GET", f"/tasks/{task['task_id']}", None),
        ("GET", "/operations/stuck-cases?blocked_for_minutes=0", None),
        ("POST", f"/operations/cases/{case_id}/escalate", {"reason": "no_progress"}),
        ("POST", f"/cases/{case_id}/person/disclosures",
         {"purpose": "case_review", "field_groups": ["names"]}),
        ("GET", f"/cases/{case_id}/sharing", None),
        ("GET", f"/cases/{case_id}/handoff-code", None),
    ):
        response = await stack.http.request(method, path, json=body, headers=op)
        assert response.status_code < 500
        bodies.append(response)
    assert [r.status_code for r in bodies] == [200, 200, 200, 200, 200, 202, 403, 403, 403]
    for response in bodies:
        for marker in MARKERS:
            assert marker not in response.text, (response.request.url, marker)
        assert not keys_of(json.loads(response.text)) & IDENTITY_FIELD_NAMES

    stuck = bodies[4].json()["cases"]
    assert [c["case_id"] for c in stuck] == [case_id]
    assert stuck[0]["blocked_on"] == "task:travel_documents"
    assert stuck[0]["stage"] == "documents"
    timeline = bodies[2].json()["events"]
    assert all(set(e) == {"version", "occurred_at", "type", "author_org"} for e in timeline)
    assert not any(e["type"].startswith("identity.") for e in timeline)
    # The operator's action is an event with the operator's identity.
    [escalation] = [e for e in await stack.store.read_stream(case_id)
                    if e.event_type == "operator.escalated"]
    assert (escalation.author_org, escalation.actor) == ("ops", "operator")
