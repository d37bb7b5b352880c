"""The receiving mission's follow-up through its routes (decision 0064): a risk, a plan
change, an opt-out from one service line, closure, reopening, a whole opt-out; each
refused for another organisation or role (403/404), a state that refuses it (409 with a
code) and a malformed body (422), with nothing written; a retry with the same
Idempotency-Key records once. A provider named on a plan line reports delivery through
its own task and sees nothing else of the case."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from api_driver import MARKER_NAME, open_task, record, returned


def _line(service: str, provider: str, days: int = 90, **extra: Any) -> dict[str, Any]:
    due = datetime.now(UTC) + timedelta(days=days)
    return {"line_id": str(uuid.uuid4()), "service": service, "provider_org": provider,
            "due_at": due.isoformat(), **extra}


async def _types(stack, case_id: str) -> list[str]:
    return [e.event_type for e in await stack.store.read_stream(case_id)]


async def _planned(stack, lines: list[dict[str, Any]]) -> str:
    """A returned case with its needs assessed and its plan agreed."""
    case_id = await returned(stack)
    task = await open_task(stack, "officer.md", case_id, "needs_assessment")
    done = await stack.http.post(f"/tasks/{task['task_id']}/complete", json={"result": {
        "kind": "needs_assessment", "assessment_record_id": await record(stack, case_id,
                                                                           "officer.md"),
        "needs": ["vocational_training"]}}, headers=stack.auth("officer.md"))
    assert done.status_code == 200, done.text
    task = await open_task(stack, "officer.md", case_id, "reintegration_plan")
    done = await stack.http.post(f"/tasks/{task['task_id']}/complete", json={"result": {
        "kind": "reintegration_plan", "lines": lines}}, headers=stack.auth("officer.md"))
    assert done.status_code == 200, done.text
    return case_id


async def _post(stack, case_id: str, what: str, body: dict[str, Any], user: str = "officer.md",
                **headers: str):
    return await stack.http.post(f"/cases/{case_id}/follow-up/{what}", json=body,
                                 headers={**stack.auth(user), **headers})


async def test_the_receiving_officer_runs_the_follow_up_through_the_api(stack):
    training = _line("vocational_training", "ngo-ua")
    counselling = _line("legal_counselling", "mission-md")  # its own: no delivery task
    case_id = await _planned(stack, [training, counselling])

    # Refused for other roles and organisations, and malformed bodies: nothing written.
    written = await stack.written()
    risk = {"indicator": "recruiter_contact", "description": "a man asked about her again"}
    for user, status in (("coord.rs", 403), ("partner.ua", 403), ("partner.md", 403),
                         ("operator", 403), ("officer.ua", 404)):
        refused = await _post(stack, case_id, "risks", risk, user)
        assert refused.status_code == status, (user, refused.text)
        assert refused.json()["code"]
    for body in ({"indicator": "gossip"}, {**risk, "report_record_id": "rec_" + "1" * 32},
                 {**risk, "extra": 1}):
        malformed = await _post(stack, case_id, "risks", body)
        assert malformed.status_code == 422, malformed.text
    for what, body in (("plan", {}), ("closure", {"reason": "bored"}),
                       ("reopening", {}), ("opt-outs", {"line_ids": ["nope"]}),
                       ("plan", {"lines": [{**training, "due_at": "2030-01-01T00:00:00"}]})):
        malformed = await _post(stack, case_id, what, body)
        assert malformed.status_code == 422, (what, malformed.text)
    assert await stack.written() == written

    # A risk: its words go to the vault, the event holds the record id; a retry with the
    # same key answers the first answer and records nothing more.
    key = {"Idempotency-Key": f"risk-{uuid.uuid4().hex}"}
    recorded = await _post(stack, case_id, "risks", risk, **key)
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["event_types"] == ["reintegration.risk_recorded",
                                              "reintegration.escalated"]
    notes = await stack.count("person_notes")
    again = await _post(stack, case_id, "risks", risk, **key)
    assert (again.status_code, again.json()) == (200, recorded.json()), again.text
    assert (await _types(stack, case_id)).count("reintegration.risk_recorded") == 1
    assert await stack.count("person_notes") == notes
    reused = await _post(stack, case_id, "risks", {"indicator": "threats_received"}, **key)
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    [event] = [e for e in await stack.store.read_stream(case_id)
               if e.event_type == "reintegration.risk_recorded"]
    assert event.payload["report_record_id"].startswith("rec_")
    assert "asked about her" not in str(event.payload)

    # The provider of the training line has a task to report delivery, and only that.
    task = await open_task(stack, "partner.ua", case_id, "service_delivery")
    follow_up = await stack.http.get(f"/cases/{case_id}/follow-up",
                                     headers=stack.auth("officer.md"))
    assert follow_up.status_code == 200, follow_up.text
    delivery = [t for t in follow_up.json()["open_tasks"] if t["kind"] == "service_delivery"]
    assert [(t["assignee_org"], t["line_id"]) for t in delivery] == [
        ("ngo-ua", training["line_id"])]

    # A plan change: a new line for the provider, and the check-ins rescheduled.
    support = _line("psychological_support", "ngo-ua", 120)
    changed = await _post(stack, case_id, "plan", {
        "lines": [support], "remaining_check_ins_after_arrival": ["P45D", "P200D"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["reintegration.plan_changed",
                                             "reintegration.check_in_schedule_changed"]
    backwards = await _post(stack, case_id, "plan",
                            {"lines": [{**training, "service": "housing"}]})
    assert (backwards.status_code, backwards.json()["code"]) == (409, "refused")

    # She opts out of the new line only: declined, its delivery task cancelled.
    await _until_tasks(stack, case_id, 2)
    unknown = await _post(stack, case_id, "opt-outs", {"line_ids": [str(uuid.uuid4())]})
    assert (unknown.status_code, unknown.json()["code"]) == (409, "no_such_line")
    opted = await _post(stack, case_id, "opt-outs", {"line_ids": [support["line_id"]]})
    assert opted.status_code == 200, opted.text
    assert opted.json()["event_types"] == ["reintegration.plan_changed",
                                           "reintegration.task_cancelled"]
    state = (await stack.http.get(f"/cases/{case_id}/follow-up",
                                  headers=stack.auth("officer.md"))).json()
    assert {line["line_id"]: line["status"] for line in state["plan"]}[
        support["line_id"]] == "declined"
    assert state["closed_reason"] is None

    # Closure: a refused reason, then closed; closing again is refused; a risk still
    # goes in; reopening; reopening again is refused.
    other = await _post(stack, case_id, "closure", {"reason": "other"})
    assert (other.status_code, other.json()["code"]) == (409, "refused")
    key = {"Idempotency-Key": f"close-{uuid.uuid4().hex}"}
    closed = await _post(stack, case_id, "closure", {"reason": "moved_away"}, **key)
    assert closed.status_code == 200, closed.text
    assert closed.json()["event_types"][-1] == "reintegration.closed"
    retried = await _post(stack, case_id, "closure", {"reason": "moved_away"}, **key)
    assert (retried.status_code, retried.json()) == (200, closed.json())
    assert (await _types(stack, case_id)).count("reintegration.closed") == 1
    written = await stack.written()
    twice = await _post(stack, case_id, "closure", {"reason": "moved_away"})
    assert (twice.status_code, twice.json()["code"]) == (409, "refused"), twice.text
    assert await stack.written() == written
    late = await _post(stack, case_id, "risks", {"indicator": "threats_received"})
    assert late.status_code == 200, late.text
    reopened = await _post(stack, case_id, "reopening", {"reason": "contact_restored"})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["event_types"][0] == "reintegration.reopened"
    again = await _post(stack, case_id, "reopening", {"reason": "contact_restored"})
    assert (again.status_code, again.json()["code"]) == (409, "refused")

    # After reopening the provider reports again on its line, which is still to deliver.
    await _report(stack, case_id, "delivered", after=task["task_id"])
    whole = await _post(stack, case_id, "opt-outs", {})
    assert whole.status_code == 200, whole.text
    assert whole.json()["event_types"][0] == "reintegration.opted_out"
    assert whole.json()["event_types"][-1] == "reintegration.closed"
    cancelled = await stack.http.get(f"/tasks/{task['task_id']}",
                                     headers=stack.auth("partner.ua"))
    assert cancelled.json()["status"] == "cancelled", cancelled.text  # at the first closure


async def _until_tasks(stack, case_id: str, count: int) -> None:
    for _ in range(200):
        state = (await stack.http.get(f"/cases/{case_id}/follow-up",
                                      headers=stack.auth("officer.md"))).json()
        if len([t for t in state["open_tasks"] if t["kind"] == "service_delivery"]) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never {count} delivery tasks")


async def _report(stack, case_id: str, status: str, after: str | None = None) -> dict[str, Any]:
    """Report on the provider's open delivery task (a new one, not ``after``)."""
    task = await open_task(stack, "partner.ua", case_id, "service_delivery")
    while task["task_id"] == after:  # the inbox has not seen it completed yet
        await asyncio.sleep(0.1)
        task = await open_task(stack, "partner.ua", case_id, "service_delivery")
    done = await stack.http.post(f"/tasks/{task['task_id']}/complete",
                                 json={"result": {"kind": "service_delivery", "status": status}},
                                 headers=stack.auth("partner.ua"))
    assert done.status_code == 200, done.text
    return task


async def test_a_provider_reports_delivery_and_sees_nothing_else(stack):
    training = _line("vocational_training", "ngo-ua")
    case_id = await _planned(stack, [training])
    task = await open_task(stack, "partner.ua", case_id, "service_delivery")

    # Its inbox holds its delivery task, and nothing of the mission's tasks.
    inbox = (await stack.http.get("/tasks", headers=stack.auth("partner.ua"))).json()["tasks"]
    assert {t["kind"] for t in inbox if t["case_id"] == case_id} == {"service_delivery"}
    others = await stack.http.get("/tasks", params={"kind": "service_delivery"},
                                  headers=stack.auth("partner.md"))
    assert all(t["case_id"] != case_id for t in others.json()["tasks"])
    case = await stack.http.get(f"/cases/{case_id}", headers=stack.auth("partner.ua"))
    assert case.status_code == 200, case.text
    assert case.json()["view"] == "partner"
    assert MARKER_NAME not in case.text
    assert {t["kind"] for t in case.json()["tasks"]} == {"service_delivery"}
    identity = await stack.http.post(f"/cases/{case_id}/person/disclosures", json={
        "purpose": "handoff_identification", "field_groups": ["names"]},
        headers=stack.auth("partner.ua"))
    assert (identity.status_code, identity.json()["code"]) == (403, "consent_required")
    for path in (f"/cases/{case_id}/timeline", f"/cases/{case_id}/follow-up"):
        refused = await stack.http.get(path, headers=stack.auth("partner.ua"))
        assert refused.status_code == 403, (path, refused.text)
    follow_up = (await stack.http.get(f"/cases/{case_id}/follow-up",
                                      headers=stack.auth("officer.md"))).json()
    for mission_task in [t for t in follow_up["open_tasks"]
                         if t["kind"] != "service_delivery"]:
        hidden = await stack.http.get(f"/tasks/{mission_task['task_id']}",
                                      headers=stack.auth("partner.ua"))
        assert hidden.status_code == 404, hidden.text

    # Someone else cannot report for it; a malformed report is refused.
    written = await stack.written()
    for user, body in (("officer.md", {"kind": "service_delivery", "status": "delivered"}),
                       ("partner.md", {"kind": "service_delivery", "status": "delivered"}),
                       ("partner.ua", {"kind": "service_delivery", "status": "planned"}),
                       ("partner.ua", {"kind": "service_delivery", "status": "finished"})):
        refused = await stack.http.post(f"/tasks/{task['task_id']}/complete",
                                        json={"result": body}, headers=stack.auth(user))
        assert refused.status_code in (403, 404, 422), (user, refused.text)
    assert await stack.written() == written

    # In progress: recorded, and a new task to report again; delivered: the line is done.
    first = await stack.http.post(f"/tasks/{task['task_id']}/complete", json={"result": {
        "kind": "service_delivery", "status": "in_progress"}}, headers=stack.auth("partner.ua"))
    assert first.status_code == 200, first.text
    assert first.json()["event_types"] == ["reintegration.service_delivery_reported"]
    again = await stack.http.post(f"/tasks/{task['task_id']}/complete", json={"result": {
        "kind": "service_delivery", "status": "in_progress"}}, headers=stack.auth("partner.ua"))
    assert (again.status_code, again.json()) == (200, first.json())
    await _report(stack, case_id, "delivered", after=task["task_id"])
    reports = [e for e in await stack.store.read_stream(case_id)
               if e.event_type == "reintegration.service_delivery_reported"]
    assert [(e.payload["status"], e.author_org) for e in reports] == [
        ("in_progress", "ngo-ua"), ("delivered", "ngo-ua")]
    state = (await stack.http.get(f"/cases/{case_id}/follow-up",
                                  headers=stack.auth("officer.md"))).json()
    assert [line["status"] for line in state["plan"]] == ["delivered"]
    assert not [t for t in state["open_tasks"] if t["kind"] == "service_delivery"]
