"""After reception, follow-up runs: the receiving mission finds its reintegration tasks in
its inbox and completes them through the same endpoint, routed to the case's
reintegration workflow; no one else sees them."""

from __future__ import annotations

from api_driver import open_task, record, returned


async def test_the_receiving_mission_does_follow_up_from_its_inbox(stack):
    case_id = await returned(stack)
    task = await open_task(stack, "officer.md", case_id, "needs_assessment")
    assert task["kind"] == "needs_assessment"

    partner = await stack.http.get("/tasks", params={"kind": "needs_assessment"},
                                   headers=stack.auth("partner.md"))
    assert all(t["case_id"] != case_id for t in partner.json()["tasks"])

    assessment = await record(stack, case_id, "officer.md", "needs assessment",
                              "follow_up_note")
    result = {"kind": "needs_assessment", "assessment_record_id": assessment,
              "needs": ["medical", "vocational_training"]}
    refused = await stack.http.post(f"/tasks/{task['task_id']}/complete",
                                    json={"result": result}, headers=stack.auth("coord.rs"))
    assert refused.status_code in (403, 404), refused.text  # not the sending mission's task

    done = await stack.http.post(f"/tasks/{task['task_id']}/complete", json={"result": result},
                                 headers=stack.auth("officer.md"))
    assert done.status_code == 200, done.text
    assert done.json()["event_types"], done.json()
    types = [e.event_type for e in await stack.store.read_stream(case_id)]
    assert "reintegration.started" in types
    assert "reintegration.needs_assessed" in done.json()["event_types"]
    assert types.count("reintegration.needs_assessed") == 1
    # Completing twice answers with the first answer and writes nothing; another result
    # for the completed task is a conflict.
    before = await stack.store.read_stream(case_id)
    again = await stack.http.post(f"/tasks/{task['task_id']}/complete", json={"result": result},
                                  headers=stack.auth("officer.md"))
    assert (again.status_code, again.json()) == (200, done.json()), again.text
    changed = await stack.http.post(
        f"/tasks/{task['task_id']}/complete", json={"result": {**result, "needs": ["housing"]}},
        headers=stack.auth("officer.md"))
    assert changed.status_code == 409, changed.text
    assert changed.json()["code"] == "task_already_completed"
    after = await stack.store.read_stream(case_id)
    assert [e.event_type for e in after].count("reintegration.needs_assessed") == 1
    assert [e for e in after if e.payload.get("task_id") == task["task_id"]] == [
        e for e in before if e.payload.get("task_id") == task["task_id"]]


async def test_after_the_handoff_the_receiving_mission_records_an_age_assessment(stack):
    case_id = await returned(stack)
    await open_task(stack, "officer.md", case_id, "needs_assessment")  # follow-up runs
    body = {"assessed_by": "social_welfare_centre", "result": "12_17",
            "evidence_record_id": await record(stack, case_id, "officer.md")}
    recorded = await stack.http.post(f"/cases/{case_id}/age-assessment", json=body,
                                     headers=stack.auth("officer.md"))
    assert recorded.status_code == 200, recorded.text
    assert recorded.json() == {"case_id": case_id, "minor": True,
                               "event_types": ["reintegration.age_assessed"]}
    lowered = await stack.http.post(f"/cases/{case_id}/age-assessment",
                                    json={**body, "result": "25_34"},
                                    headers=stack.auth("officer.md"))
    assert (lowered.status_code, lowered.json()["code"]) == (409, "age_not_lowered")
