"""Transfers between organisations through the real API and workflows (decision 0068): the
sending mission offers the receiving role to another mission, which accepts through its
task inbox; the case, its open and later tasks move, identity waits for a consent naming
the new mission, and the old mission keeps what it wrote only. A decline moves nothing.
Refusals: wrong organisation 403/404, wrong stage 409, unsuitable organisation 422, each
writing nothing; a repeated request is answered as the first and writes nothing."""

from __future__ import annotations

from datetime import timedelta

from api_driver import (
    documents_and_clearances,
    fact,
    open_task,
    record,
    register,
    stage,
    through_consent,
)

from store.accounts import OrgKind, UserRole

NEW_MISSION, NEW_OFFICER = "mission-md-north", "officer.north"


async def another_receiving_mission(stack) -> None:
    accounts = stack.services.accounts
    await accounts.add_org(NEW_MISSION, OrgKind.RECEIVING_MISSION, NEW_MISSION, "MD")
    await accounts.add_user(NEW_OFFICER, NEW_MISSION, UserRole.RECEIVING_OFFICER)
    stack.tokens[NEW_OFFICER] = (await accounts.create_token(NEW_OFFICER,
                                                             timedelta(hours=1))).bearer


def offer(to_org: str = NEW_MISSION, role: str = "receiving_mission", **extra) -> dict:
    return {"role": role, "to_org": to_org, "reason": "destination_changed", **extra}


async def transfer(stack, case_id: str, body: dict, user: str = "coord.rs"):
    return await stack.http.post(f"/cases/{case_id}/transfers", json=body,
                                 headers=stack.auth(user))


async def answer(stack, user: str, case_id: str, accepted: bool) -> dict:
    task = await open_task(stack, user, case_id, "transfer_decision")
    result = {"kind": "transfer_decision", "accepted": accepted}
    if not accepted:
        result["decline_reason"] = "no_capacity"
    done = await stack.http.post(f"/tasks/{task['task_id']}/complete", json={"result": result},
                                 headers=stack.auth(user))
    assert done.status_code == 200, done.text
    return done.json()


async def identity(stack, case_id: str, user: str):
    return await stack.http.post(f"/cases/{case_id}/person/disclosures",
                                 json={"purpose": "handoff_identification",
                                       "field_groups": ["names"]}, headers=stack.auth(user))


async def test_a_transfer_accepted_moves_the_case_and_its_tasks(stack):
    await another_receiving_mission(stack)
    case_id = await register(stack)
    await through_consent(stack, case_id)
    await documents_and_clearances(stack, case_id)
    await stage(stack, case_id, "awaiting_departure")  # booked: the handoff code is issued
    # The receiving mission takes part already: it writes a note to her file.
    await record(stack, case_id, "officer.md", "family contacted, Marker-Note-5T",
                 kind="wellbeing_note")

    details = "she will live near Balti with her aunt Marker-Aunt-8P"
    requested = await transfer(stack, case_id, offer(details=details))
    assert requested.status_code == 201, requested.text
    body = requested.json()
    assert (body["from_org"], body["to_org"], body["status"], body["duplicate"]) == (
        "mission-md", NEW_MISSION, "requested", False)
    # The same request again: the same transfer, nothing written.
    written = await stack.written()
    again = await transfer(stack, case_id, offer())
    assert again.status_code == 200, again.text
    assert again.json()["transfer_id"] == body["transfer_id"] and again.json()["duplicate"]
    assert await stack.written() == written
    # Another transfer of the same role waits for this one's answer.
    other = await transfer(stack, case_id, offer("mission-ua"))
    assert (other.status_code, other.json()["code"]) == (409, "transfer_pending")

    # The new mission sees the offer in its inbox (the case's minimum), and accepts.
    task = await open_task(stack, NEW_OFFICER, case_id, "transfer_decision")
    assert task["task_id"] == body["transfer_id"]
    done = await answer(stack, NEW_OFFICER, case_id, accepted=True)
    assert done["event_types"] == ["case.transfer_accepted"]

    await stack.services.catch_up()
    seen = await stack.http.get(f"/cases/{case_id}", headers=stack.auth(NEW_OFFICER))
    assert seen.status_code == 200, seen.text
    assert (seen.json()["view"], seen.json()["receiving_mission"]) == ("receiving", NEW_MISSION)
    listed = await stack.http.get("/cases", headers=stack.auth(NEW_OFFICER))
    assert case_id in [c["case_id"] for c in listed.json()["cases"]]
    code = await stack.http.get(f"/cases/{case_id}/handoff-code",
                                headers=stack.auth(NEW_OFFICER))
    assert code.status_code == 200, code.text
    # Identity waits for her consent naming the new mission.
    refused = await identity(stack, case_id, NEW_OFFICER)
    assert (refused.status_code, refused.json()["code"]) == (403, "consent_required")
    consent = await record(stack, case_id, text="consent to share with mission-md-north")
    shared = await stack.http.post(f"/cases/{case_id}/sharing",
                                   json={"org_id": NEW_MISSION, "consent_record_id": consent},
                                   headers=stack.auth("coord.rs"))
    assert shared.status_code == 201, shared.text
    assert (await identity(stack, case_id, NEW_OFFICER)).status_code == 200

    # The old mission keeps what it wrote, nothing else.
    old = await stack.http.get(f"/cases/{case_id}", headers=stack.auth("officer.md"))
    assert old.status_code == 200 and old.json()["view"] == "partner", old.text
    assert "receiving_mission" not in old.json()
    timeline = await stack.http.get(f"/cases/{case_id}/timeline",
                                    headers=stack.auth("officer.md"))
    assert timeline.status_code == 200, timeline.text
    authors = {e["author_org"] for e in timeline.json()["events"]}
    assert authors == {"mission-md"}, authors
    assert (await identity(stack, case_id, "officer.md")).status_code == 403
    assert (await stack.http.get(f"/cases/{case_id}/handoff-code",
                                 headers=stack.auth("officer.md"))).status_code == 403
    mine = await stack.http.get("/cases", headers=stack.auth("officer.md"))
    assert case_id not in [c["case_id"] for c in mine.json()["cases"]]

    # The journey goes on: the reception handoff is the new mission's task.
    await fact(stack, case_id, "departed")
    late = await transfer(stack, case_id, offer("mission-ua"))
    assert (late.status_code, late.json()["code"]) == (409, "transfer_too_late")
    await stage(stack, case_id, "in_transit")
    await fact(stack, case_id, "arrived_at_border")
    await fact(stack, case_id, "border_cleared")
    handoff = await open_task(stack, NEW_OFFICER, case_id, "reception_handoff")
    assert handoff["assignee_org"] == NEW_MISSION
    inbox = await stack.http.get("/tasks", headers=stack.auth("officer.md"))
    assert case_id not in [t["case_id"] for t in inbox.json()["tasks"]]


async def test_a_transfer_declined_moves_nothing_and_refusals_write_nothing(stack):
    case_id = await register(stack)
    await open_task(stack, "coord.rs", case_id, "screening_interview")
    border = offer("ngo-ua", "border_partner")

    # Refused, each with nothing written.
    refusals = [
        ("officer.md", border, 403, "forbidden"),  # a receiving officer never transfers
        ("coord.al", border, 404, "not_found"),  # another mission's case
        ("coord.rs", offer("mission-al"), 422, "unsuitable_organisation"),
        ("coord.rs", offer("mission-nowhere"), 422, "unknown_organisation"),
        ("coord.rs", offer("mission-md"), 409, "already_holder"),
        ("coord.rs", {**border, "reason": "she said so"}, 422, None),
    ]
    for user, body, status, code in refusals:
        written = await stack.written()
        response = await transfer(stack, case_id, body, user)
        assert response.status_code == status, (user, body, response.text)
        if code is not None:
            assert response.json()["code"] == code, response.text
        assert await stack.written() == written, (user, body)

    requested = await transfer(stack, case_id, border)
    assert requested.status_code == 201, requested.text
    done = await answer(stack, "partner.ua", case_id, accepted=False)
    assert done["event_types"] == ["case.transfer_declined"]
    await stack.services.catch_up()
    case = (await stack.http.get(f"/cases/{case_id}", headers=stack.auth("coord.rs"))).json()
    assert case["border_partner"] == "ngo-md-border"
    types = [e["type"] for e in (await stack.http.get(
        f"/cases/{case_id}/timeline", headers=stack.auth("coord.rs"))).json()["events"]]
    assert "case.transfer_requested" in types and "case.transfer_declined" in types
    assert "case.transfer_accepted" not in types
    # Answered: the same offer may be made again, and is a new transfer.
    again = await transfer(stack, case_id, border)
    assert again.status_code == 201 and again.json()["transfer_id"] != requested.json()[
        "transfer_id"], again.text
