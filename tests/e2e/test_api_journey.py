"""A whole case through the HTTP API on the real stack: the coordinator registers and
steers it, the receiving mission completes the handoff from its inbox, the timeline
shows every step, and no identity reaches the timeline or Temporal."""

from __future__ import annotations

from api_driver import (
    MARKER_ADDRESS,
    MARKER_ANSWERS,
    MARKER_FAMILY,
    MARKER_NAME,
    at_the_border,
    fact,
    open_task,
    register,
    stage,
    through_consent,
)

from domain.boundary import workflow_id_for

MARKERS = (MARKER_NAME, MARKER_FAMILY, MARKER_ADDRESS, MARKER_ANSWERS)


async def test_a_case_from_referral_to_reception_through_the_api(stack, capsys, caplog):
    case_id = await at_the_border(stack)
    await fact(stack, case_id, "border_cleared")

    # The receiving mission now sees the case and does the handoff from its inbox.
    task = await open_task(stack, "officer.md", case_id, "reception_handoff")
    code = await stack.http.get(f"/cases/{case_id}/handoff-code",
                                headers=stack.auth("officer.md"))
    assert code.status_code == 200, code.text
    assert code.headers["cache-control"] == "no-store"
    result = {"kind": "reception_handoff", "identification": "handoff_code",
              "handoff_code": code.json()["handoff_code"], "safe_arrival_confirmed": True,
              "assistance_provided": ["overnight_accommodation"]}
    done = await stack.http.post(f"/tasks/{task['task_id']}/complete", json={"result": result},
                                 headers=stack.auth("officer.md"))
    assert done.status_code == 200, done.text
    assert "reception.handoff_confirmed" in done.json()["event_types"]

    # Completing twice answers with the first answer and writes nothing; another result
    # for the completed task is a conflict, not a silent "done".
    async def complete_again(body: dict) -> tuple[int, dict]:
        response = await stack.http.post(f"/tasks/{task['task_id']}/complete",
                                         json={"result": body},
                                         headers=stack.auth("officer.md"))
        return response.status_code, response.json()

    changed = {**result, "assistance_provided": ["medical"]}
    assert await complete_again(result) == (200, done.json())
    status, refused = await complete_again(changed)
    assert (status, refused["code"]) == (409, "task_already_completed"), refused
    closed = await stage(stack, case_id, "closed")
    assert closed["outcome"] == "returned"
    # The same once the case's workflow has finished.
    await stack.client.get_workflow_handle(workflow_id_for(case_id)).result()
    assert await complete_again(result) == (200, done.json())
    status, refused = await complete_again(changed)
    assert (status, refused["code"]) == (409, "task_already_completed"), refused
    types = [e.event_type for e in await stack.store.read_stream(case_id)]
    for event_type in done.json()["event_types"]:
        assert types.count(event_type) == 1, event_type

    timeline = await stack.http.get(f"/cases/{case_id}/timeline",
                                    headers=stack.auth("coord.rs"))
    assert timeline.status_code == 200
    types = [e["type"] for e in timeline.json()["events"]]
    for step in ("case.referral_registered", "identity.recorded",
                 "screening.interview_recorded", "options.decision_recorded",
                 "consent.recorded", "documents.issued", "clearance.medical_recorded",
                 "clearance.security_assessed", "journey.booked", "journey.departed",
                 "journey.arrived_at_border", "border.cleared", "reception.handoff_confirmed",
                 "reception.safe_arrival_confirmed", "outcome.returned"):
        assert step in types, step
    assert all(e["text"] for e in timeline.json()["events"])
    body = timeline.text
    for marker in MARKERS:
        assert marker not in body

    # The receiving mission's timeline leaves out the sending mission's part of the file.
    theirs = await stack.http.get(f"/cases/{case_id}/timeline",
                                  headers=stack.auth("officer.md"))
    their_types = {e["type"] for e in theirs.json()["events"]}
    assert "reception.handoff_confirmed" in their_types
    assert "screening.interview_recorded" not in their_types
    assert "consent.recorded" not in their_types

    # No identity anywhere in the workflow's history (payloads decoded by the codec).
    history = await stack.client.get_workflow_handle(workflow_id_for(case_id)).fetch_history()
    raw = history.to_json()
    for marker in MARKERS:
        assert marker not in raw

    # The coordinator reads identity back only with a purpose, and the read is recorded.
    read = await stack.http.post(f"/cases/{case_id}/person/disclosures",
                                 json={"purpose": "case_review", "field_groups": ["names"]},
                                 headers=stack.auth("coord.rs"))
    assert read.status_code == 200, read.text
    assert read.json()["person"]["given_names"] == MARKER_NAME
    assert "shelter_address" not in read.json()["person"]
    timeline = await stack.http.get(f"/cases/{case_id}/timeline",
                                    headers=stack.auth("coord.rs"))
    assert timeline.json()["events"][-1]["type"] == "identity.read"

    # Nor in any log line written meanwhile (ours, the SDK's, the worker's).
    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert "events appended" in logs
    for marker in MARKERS:
        assert marker not in logs

    # Every one of these requests is in the audit log, for the administrator.
    audit = await stack.http.get(f"/cases/{case_id}/audit", headers=stack.auth("admin"))
    assert audit.status_code == 200
    actions = {(e["user_id"], e["action"]) for e in audit.json()["entries"]}
    assert ("coord.rs", "case.register") in actions
    assert ("officer.md", "task.complete") in actions
    assert ("coord.rs", "identity.read") in actions
    assert all(e["outcome"] == "allowed" for e in audit.json()["entries"]
               if e["action"] == "case.register")


async def test_a_task_completed_with_a_refused_result_comes_back_with_its_reason(stack):
    case_id = await register(stack)
    await through_consent(stack, case_id)
    task = await open_task(stack, "coord.rs", case_id, "travel_documents")
    before = await stack.written()
    refused = await stack.http.post(
        f"/tasks/{task['task_id']}/complete",
        json={"result": {"kind": "travel_documents", "issued": True}},
        headers=stack.auth("coord.rs"))
    assert refused.status_code == 409, refused.text
    assert "document record" in refused.json()["detail"]
    assert await stack.written() == before

    # Completing twice while the case runs: the same answer, one event.
    refusal = {"result": {"kind": "travel_documents", "issued": False,
                          "refusal_reason": "photos_rejected"}}
    first = await stack.http.post(f"/tasks/{task['task_id']}/complete", json=refusal,
                                  headers=stack.auth("coord.rs"))
    second = await stack.http.post(f"/tasks/{task['task_id']}/complete", json=refusal,
                                   headers=stack.auth("coord.rs"))
    assert first.status_code == second.status_code == 200, second.text
    assert first.json() == second.json()
    assert first.json()["event_types"] == ["documents.refused"]
    types = [e.event_type for e in await stack.store.read_stream(case_id)]
    assert types.count("documents.refused") == 1


async def test_a_retried_registration_with_the_same_key_creates_one_case(stack):
    from api_driver import referral

    headers = {**stack.auth("coord.rs"), "Idempotency-Key": "referral-2026-11-28-0007"}
    first = await stack.http.post("/cases", json=referral(), headers=headers)
    again = await stack.http.post("/cases", json=referral(), headers=headers)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["case_id"] == again.json()["case_id"]
    assert "referral-2026" not in first.json()["case_id"]  # the key is hashed, not shown
    case_id = first.json()["case_id"]
    types = [e.event_type for e in await stack.store.read_stream(case_id)]
    assert types.count("case.referral_registered") == 1

    other = await stack.http.post("/cases", json=referral(), headers=stack.auth("coord.rs"))
    assert other.json()["case_id"] != case_id  # no key: a new case every time
    bad = await stack.http.post("/cases", json=referral(),
                                headers={**stack.auth("coord.rs"), "Idempotency-Key": "a b"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"


async def test_an_idempotency_key_reused_for_another_referral_is_refused(stack):
    from api_driver import referral

    headers = {**stack.auth("coord.rs"), "Idempotency-Key": "referral-2026-11-28-0042"}
    first = await stack.http.post("/cases", json=referral(), headers=headers)
    assert first.status_code == 201, first.text
    case_id = first.json()["case_id"]

    async def identity_writes() -> int:
        return sum(e.event_type == "identity.recorded"
                   for e in await stack.store.read_stream(case_id))

    before = await identity_writes()
    other = referral(age_category="unknown", identity={"given_names": "Someone Else"})
    reused = await stack.http.post("/cases", json=other, headers=headers)
    assert reused.status_code == 422, reused.text
    assert reused.json()["code"] == "idempotency_key_reused"
    assert await identity_writes() == before  # nothing written over her identity
