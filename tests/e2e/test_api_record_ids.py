"""A record id names a record of THIS case's vault, an organisation a registered mission or
partner (decision 0046). Every kind of route that forwards one is tried with a made-up
record id (a name and a birth date in the shape of one), with a real record of ANOTHER
case, and with a record of this case: the first two are refused with 422 naming the field
(never the value) and write nothing: no event, no vault row, nothing in the workflow's
history; the third is accepted.

The routes: the coordinator's consent step, a task completion (the journey's and the
follow-up's, the plan's provider organisations and a guardian's organisation among them),
the age assessment (before the handoff and in the follow-up), the sharing consent and her
withdrawal. ``tests/integration/test_api_references.py`` proves that no other route's
body names a record or organisation id."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from api_driver import (
    complete,
    consent_body,
    history_text,
    open_task,
    record,
    register,
    returned,
    screening_body,
    stage,
)

WAIT = 60.0  # a bound on a wait on a loaded machine, never a timing assertion


def made_up() -> str:
    """A record id in shape, a name and a birth date in content."""
    return f"rec_Ana{secrets.token_hex(4)}Popescu19870319"


async def quiet(stack) -> None:
    """Let the workflows finish what the last accepted step started (the next tasks they
    open), so that a refused request's 'nothing written' is not confused with them."""
    deadline = asyncio.get_running_loop().time() + WAIT
    seen = await stack.written()
    while True:
        await asyncio.sleep(0.4)
        now = await stack.written()
        if now == seen:
            return
        assert asyncio.get_running_loop().time() < deadline, "the stack never settled"
        seen = now


async def refused(stack, send: Callable[[], Awaitable[httpx.Response]], code: str,
                  fields: list[str], *values: str) -> None:
    """``send`` is refused with 422 ``code`` naming ``fields`` and writes nothing."""
    before = await stack.written()
    response = await send()
    assert response.status_code == 422, response.text
    error = response.json()
    assert (error["code"], error["fields"]) == (code, fields), error
    for value in values:
        assert value not in response.text  # named, never echoed
    assert await stack.written() == before, f"{code} {fields}: refused but wrote data"


def post(stack, user: str, path: str, body: dict[str, Any]):
    return lambda: stack.http.post(path, json=body, headers=stack.auth(user))


async def assert_nowhere(stack, case_id: str, workflow_ids: list[str], absent: list[str],
                         present: str) -> None:
    """The refused values are in no event and no workflow history; the record accepted is
    (a positive control: the histories searched are decoded and hold the results)."""
    events = json.dumps([e.payload for e in await stack.store.read_stream(case_id)])
    assert present in events
    found_present = False
    for workflow_id in workflow_ids:
        history = await history_text(stack, workflow_id)
        found_present = found_present or present.encode() in history
        for value in absent:
            assert value.encode() not in history, f"{value} in {workflow_id}"
    for value in absent:
        assert value not in events, value
    assert found_present


async def another_cases_record(stack) -> str:
    """A real record, of another case of the same missions."""
    other = await register(stack)
    record_id = await record(stack, other, text="a file of another woman")
    await open_task(stack, "coord.rs", other, "screening_interview")  # it settled
    return record_id


async def test_the_coordinators_steps_take_only_records_of_this_case(stack):
    case_id = await register(stack)
    foreign = await another_cases_record(stack)
    bogus = made_up()
    coord = "coord.rs"
    await open_task(stack, coord, case_id, "screening_interview")
    answered = await stack.http.post(f"/cases/{case_id}/screening", json=screening_body(),
                                     headers=stack.auth(coord))
    assert answered.status_code == 200, answered.text
    await open_task(stack, coord, case_id, "options_decision")
    decided = await stack.http.post(f"/cases/{case_id}/decision", json={
        "choice": "return", "counselled_in_language": "ro"}, headers=stack.auth(coord))
    assert decided.status_code == 200, decided.text
    await open_task(stack, coord, case_id, "informed_consent")
    own = await record(stack, case_id, text="the signed consent form, paper file 12")
    await quiet(stack)

    # Consent: the form and the interpreter are records of this case.
    by_record = {k: v for k, v in consent_body().items() if k != "form_reference"}
    consent = f"/cases/{case_id}/consent"
    await refused(stack, post(stack, coord, consent, {**by_record,
                                                      "consent_form_record_id": bogus}),
                  "unknown_record", ["consent_form_record_id"], bogus)
    await refused(stack, post(stack, coord, consent, {**by_record,
                                                      "consent_form_record_id": foreign}),
                  "unknown_record", ["consent_form_record_id"], foreign)
    # Refused before the form reference is stored in the vault as the form's record.
    await refused(stack, post(stack, coord, consent, consent_body(
        interpreter_used=True, interpreter_record_id=foreign)),
                  "unknown_record", ["interpreter_record_id"], foreign)
    await refused(stack, post(stack, coord, consent, {
        **by_record, "consent_form_record_id": foreign, "interpreter_used": True,
        "interpreter_record_id": bogus}),
                  "unknown_record", ["consent_form_record_id", "interpreter_record_id"])
    given = await stack.http.post(consent, json={
        **by_record, "consent_form_record_id": own, "interpreter_used": True,
        "interpreter_record_id": own}, headers=stack.auth(coord))
    assert given.status_code == 200, given.text

    # A task result: the travel document's record.
    task = await open_task(stack, coord, case_id, "travel_documents")
    await quiet(stack)
    done = f"/tasks/{task['task_id']}/complete"
    for wrong in (bogus, foreign):
        await refused(stack, post(stack, coord, done, {"result": {
            "kind": "travel_documents", "issued": True, "document_record_id": wrong}}),
            "unknown_record", ["result.document_record_id"], wrong)
    await complete(stack, coord, case_id, "travel_documents",
                   {"issued": True, "document_record_id": own})
    await quiet(stack)

    # The age assessment's evidence (before the handoff: the journey's Update).
    assessment = f"/cases/{case_id}/age-assessment"
    for wrong in (bogus, foreign):
        await refused(stack, post(stack, coord, assessment, {
            "assessed_by": "police", "result": "18_24", "evidence_record_id": wrong}),
            "unknown_record", ["evidence_record_id"], wrong)
    assessed = await stack.http.post(assessment, json={
        "assessed_by": "police", "result": "18_24", "evidence_record_id": own},
        headers=stack.auth(coord))
    assert assessed.status_code == 200, assessed.text

    # Sharing on her consent, then her withdrawal: a refused withdrawal does not even
    # revoke the sharing (that would be a write before the check).
    sharing = f"/cases/{case_id}/sharing"
    for wrong in (bogus, foreign):
        await refused(stack, post(stack, coord, sharing, {
            "org_id": "ngo-md-border", "consent_record_id": wrong}),
            "unknown_record", ["consent_record_id"], wrong)
    shared = await stack.http.post(sharing, json={
        "org_id": "ngo-md-border", "consent_record_id": own}, headers=stack.auth(coord))
    assert shared.status_code == 201, shared.text
    await quiet(stack)
    withdrawal = f"/cases/{case_id}/consent-withdrawal"
    for wrong in (bogus, foreign):
        await refused(stack, post(stack, coord, withdrawal, {
            "change": "withdrawn", "form_record_id": wrong}),
            "unknown_record", ["form_record_id"], wrong)
    still = await stack.http.get(sharing, headers=stack.auth(coord))
    assert still.json()["active"] == ["ngo-md-border"]
    withdrawn = await stack.http.post(withdrawal, json={
        "change": "withdrawn", "form_record_id": own}, headers=stack.auth(coord))
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["path"] == "unwind"
    await stage(stack, case_id, "closed", timeout=WAIT)

    await assert_nowhere(stack, case_id, [f"return-{case_id}"], [bogus, foreign], own)


async def test_the_follow_up_takes_only_records_of_this_case_and_registered_providers(stack):
    case_id = await returned(stack)
    foreign = await another_cases_record(stack)
    bogus = made_up()
    officer = "officer.md"
    task = await open_task(stack, officer, case_id, "needs_assessment", timeout=WAIT)
    own = await record(stack, case_id, officer, "needs as she told them", "follow_up_note")
    await quiet(stack)

    done = f"/tasks/{task['task_id']}/complete"
    for wrong in (bogus, foreign):
        await refused(stack, post(stack, officer, done, {"result": {
            "kind": "needs_assessment", "assessment_record_id": wrong, "needs": ["medical"]}}),
            "unknown_record", ["result.assessment_record_id"], wrong)
    await complete(stack, officer, case_id, "needs_assessment",
                   {"assessment_record_id": own, "needs": ["medical", "housing"]})

    # The plan: each line's provider is a registered mission or partner organisation.
    task = await open_task(stack, officer, case_id, "reintegration_plan", timeout=WAIT)
    await quiet(stack)
    due = (datetime.now(UTC) + timedelta(days=30)).isoformat()

    def line(provider: str, service: str = "medical") -> dict[str, Any]:
        return {"line_id": str(uuid.uuid4()), "service": service, "provider_org": provider,
                "due_at": due}

    done = f"/tasks/{task['task_id']}/complete"
    nowhere = f"clinic-{secrets.token_hex(4)}"  # free text in an organisation's shape
    for provider in (nowhere, "ops", "analysts"):  # unknown; registered, but no provider
        await refused(stack, post(stack, officer, done, {"result": {
            "kind": "reintegration_plan",
            "lines": [line("ngo-md-border", "housing"), line(provider)]}}),
            "unknown_organisation", ["result.lines.1.provider_org"], provider)
    for wrong in (bogus, foreign):
        await refused(stack, post(stack, officer, done, {"result": {
            "kind": "reintegration_plan", "lines": [line("ngo-md-border")],
            "plan_record_id": wrong}}), "unknown_record", ["result.plan_record_id"], wrong)
    await complete(stack, officer, case_id, "reintegration_plan", {
        "lines": [line("ngo-md-border"), line("mission-md", "housing")],
        "plan_record_id": own})
    await quiet(stack)

    # The age assessment after the handoff: the follow-up's Update.
    assessment = f"/cases/{case_id}/age-assessment"
    for wrong in (bogus, foreign):
        await refused(stack, post(stack, officer, assessment, {
            "assessed_by": "social_welfare_centre", "result": "12_17",
            "evidence_record_id": wrong}), "unknown_record", ["evidence_record_id"], wrong)
    assessed = await stack.http.post(assessment, json={
        "assessed_by": "social_welfare_centre", "result": "12_17", "evidence_record_id": own},
        headers=stack.auth(officer))
    assert assessed.status_code == 200, assessed.text

    await assert_nowhere(stack, case_id, [f"return-{case_id}", f"reintegration-{case_id}"],
                         [bogus, foreign, nowhere], own)


async def test_a_childs_guardian_acts_through_a_registered_organisation(stack):
    case_id = await register(stack, age_category="12_17")
    foreign = await another_cases_record(stack)
    task = await open_task(stack, "coord.rs", case_id, "guardian_appointment")
    own = await record(stack, case_id, text="the court's appointment of her guardian")
    await quiet(stack)

    done = f"/tasks/{task['task_id']}/complete"
    nowhere = f"csw-{secrets.token_hex(4)}"
    appointment = {"kind": "guardian_appointment", "guardian_record_id": own,
                   "authority": "social_welfare_centre"}
    # An unknown organisation, or one that may never read identity, would be given her
    # identity as her guardian's organisation.
    for org in (nowhere, "analysts", "ops"):
        await refused(stack, post(stack, "coord.rs", done, {"result": {
            **appointment, "guardian_org": org}}),
            "unknown_organisation", ["result.guardian_org"], org)
    await refused(stack, post(stack, "coord.rs", done, {"result": {
        **appointment, "guardian_record_id": foreign, "guardian_org": "ngo-md-border"}}),
        "unknown_record", ["result.guardian_record_id"], foreign)
    await complete(stack, "coord.rs", case_id, "guardian_appointment",
                   {**appointment, "guardian_org": "ngo-md-border"})

    events = {e.event_type: e.payload for e in await stack.store.read_stream(case_id)}
    assert events["minor.guardian_appointed"]["guardian_org"] == "ngo-md-border"
    await assert_nowhere(stack, case_id, [f"return-{case_id}"], [foreign, nowhere], own)
