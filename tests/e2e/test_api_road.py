"""The road through the HTTP API on the running stack: every fact answered at once (200
with its events, or 409 with the code, the stage and what is expected), an age assessment
that puts an adult case on the minor safeguards, a withdrawal in transit that brings her
to a safe place, and a person not met at arrival, traced from the receiving mission's
inbox."""

from __future__ import annotations

from api_driver import (
    complete,
    documents_and_clearances,
    fact,
    open_task,
    register,
    stage,
    through_consent,
)


async def post(stack, user: str, path: str, body: dict):
    return await stack.http.post(path, json=body, headers=stack.auth(user))


async def on_the_road(stack) -> str:
    case_id = await register(stack)
    await through_consent(stack, case_id)
    await documents_and_clearances(stack, case_id)
    await stage(stack, case_id, "awaiting_departure")
    await fact(stack, case_id, "departed")
    return case_id


async def test_facts_are_answered_at_once_and_refused_with_what_is_expected(stack):
    case_id = await on_the_road(stack)
    early = await post(stack, "coord.rs", f"/cases/{case_id}/facts", {"fact": "border_cleared"})
    assert early.status_code == 409, early.text
    error = early.json()
    assert error["code"] == "fact_not_expected_now"
    assert error["stage"] == "in_transit"
    assert error["expected"] == ["arrived_at_border", "leg_failed", "missing_in_transit"]
    assert "not expected now" in error["detail"]

    arrived = await post(stack, "coord.rs", f"/cases/{case_id}/facts",
                         {"fact": "arrived_at_border"})
    assert arrived.json()["event_types"] == ["journey.arrived_at_border"]
    held = await post(stack, "coord.rs", f"/cases/{case_id}/facts",
                      {"fact": "border_hold_started"})
    again = await post(stack, "coord.rs", f"/cases/{case_id}/facts",
                       {"fact": "border_hold_started"})
    assert (held.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert again.json()["event_types"] == []
    types = [e.event_type for e in await stack.store.read_stream(case_id)]
    assert types.count("border.hold_started") == 1
    # The receiving mission reports only a person not met or missing.
    wrong = await post(stack, "officer.md", f"/cases/{case_id}/facts",
                       {"fact": "border_hold_lifted"})
    assert (wrong.status_code, wrong.json()["code"]) == (409, "not_your_fact")
    bad = await post(stack, "coord.rs", f"/cases/{case_id}/facts", {"fact": "leg_failed"})
    assert bad.status_code == 422  # a leg failure names its failure


async def test_an_age_assessment_puts_an_adult_case_on_the_minor_safeguards(stack):
    case_id = await register(stack)
    await through_consent(stack, case_id)
    note = await post(stack, "coord.rs", f"/cases/{case_id}/person/notes",
                      {"kind": "assessment_note", "text": "medical age assessment, file 4"})
    body = {"assessed_by": "medical_assessment", "result": "12_17",
            "evidence_record_id": note.json()["record_id"]}
    # The receiving mission is not yet involved in this case: it does not even see it.
    refused = await post(stack, "officer.md", f"/cases/{case_id}/age-assessment", body)
    assert refused.status_code == 404
    assessed = await post(stack, "coord.rs", f"/cases/{case_id}/age-assessment", body)
    assert assessed.status_code == 200, assessed.text
    assert assessed.json()["minor"] is True
    await open_task(stack, "coord.rs", case_id, "guardian_appointment")
    summary = await stack.http.get(f"/cases/{case_id}", headers=stack.auth("coord.rs"))
    assert summary.json()["minor"] is True  # the case list follows the assessment


async def test_a_withdrawal_in_transit_is_a_safe_place_task_not_an_unwinding(stack):
    case_id = await on_the_road(stack)
    withdrawn = await post(stack, "coord.rs", f"/cases/{case_id}/consent-withdrawal",
                           {"change": "withdrawn"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert (withdrawn.json()["path"], withdrawn.json()["duplicate"]) == ("to_safety", False)
    summary = await stage(stack, case_id, "to_safety")
    assert summary["blocked_on"] == "task:safe_place"
    note = await post(stack, "coord.rs", f"/cases/{case_id}/person/notes",
                      {"kind": "assessment_note", "text": "back in the shelter"})
    done = await complete(stack, "coord.rs", case_id, "safe_place", {
        "kind": "safe_place", "place": "return_to_shelter", "handed_to": "shelter_staff",
        "safe_place_record_id": note.json()["record_id"]})
    assert done["event_types"] == ["safety.safe_place_confirmed"]
    closed = await stage(stack, case_id, "closed")
    assert closed["outcome"] == "alternative_pathway"
    types = [e.event_type for e in await stack.store.read_stream(case_id)]
    assert "journey.booking_cancelled" not in types  # the leg she was on
    timeline = await stack.http.get(f"/cases/{case_id}/timeline",
                                    headers=stack.auth("coord.rs"))
    texts = [entry["text"] for entry in timeline.json()["events"]]
    assert "consent withdrawn after she had left: she is brought to a safe place first" in texts
    assert "in a safe place (return to shelter), handed to shelter staff" in texts


async def test_a_person_not_met_at_arrival_is_traced_by_the_receiving_mission(stack):
    case_id = await on_the_road(stack)
    await fact(stack, case_id, "arrived_at_border")
    await fact(stack, case_id, "border_cleared")
    await open_task(stack, "officer.md", case_id, "reception_handoff")
    reported = await post(stack, "officer.md", f"/cases/{case_id}/facts",
                          {"fact": "not_met_at_arrival"})
    assert reported.status_code == 200, reported.text
    assert reported.json()["event_types"] == ["journey.did_not_arrive", "case.escalated",
                                              "task.opened"]
    summary = await stage(stack, case_id, "tracing", user="officer.md")
    assert summary["blocked_on"] == "tracing:not_met_at_arrival"
    note = await post(stack, "officer.md", f"/cases/{case_id}/person/notes",
                      {"kind": "assessment_note", "text": "found at the bus station"})
    await complete(stack, "officer.md", case_id, "tracing", {
        "kind": "tracing", "finding": "found_safe", "then": "continue_journey",
        "tracing_record_id": note.json()["record_id"]})
    await stage(stack, case_id, "reception", user="officer.md")
