"""A child's return through the HTTP API: her guardian is appointed before her options
decision and consent and takes part in both; her interview happens only with her guardian
or a child protection officer present. Every refusal is a 409 with its code, and nothing is
written (not even the interview answers in the vault)."""

from __future__ import annotations

from api_driver import complete, consent_body, open_task, record, register, screening_body, stage


async def post(stack, path: str, body: dict, user: str = "coord.rs"):
    return await stack.http.post(path, json=body, headers=stack.auth(user))


async def vault_notes(stack, case_id: str) -> int:
    return sum(e.event_type == "identity.recorded"
               for e in await stack.store.read_stream(case_id))


async def test_a_childs_guardian_comes_first_and_decides_and_consents_with_her(stack):
    case_id = await register(stack, age_category="12_17")
    # The guardian appointment opens together with the interview.
    await open_task(stack, "coord.rs", case_id, "guardian_appointment")
    await open_task(stack, "coord.rs", case_id, "screening_interview")
    notes_before = await vault_notes(stack, case_id)

    alone = await post(stack, f"/cases/{case_id}/screening", screening_body())
    assert (alone.status_code, alone.json()["code"]) == (409, "child_unaccompanied")
    no_guardian_yet = await post(stack, f"/cases/{case_id}/screening",
                                 screening_body(child_accompanied_by="guardian"))
    assert no_guardian_yet.json()["code"] == "guardian_not_appointed"
    assert await vault_notes(stack, case_id) == notes_before  # her answers were not kept

    interviewed = await post(stack, f"/cases/{case_id}/screening",
                             screening_body(child_accompanied_by="child_protection_officer"))
    assert interviewed.status_code == 200, interviewed.text
    view = await stage(stack, case_id, "minor_safeguards")
    assert view["blocked_on"] == "task:guardian_appointment"
    early = await post(stack, f"/cases/{case_id}/decision",
                       {"choice": "return", "counselled_in_language": "ro",
                        "decided_by": "child_with_guardian"})
    assert (early.status_code, early.json()["code"]) == (409, "no_open_task")

    await complete(stack, "coord.rs", case_id, "guardian_appointment",
                   {"guardian_record_id": await record(stack, case_id), "authority": "court"})
    await open_task(stack, "coord.rs", case_id, "options_decision")
    herself = await post(stack, f"/cases/{case_id}/decision",
                         {"choice": "return", "counselled_in_language": "ro"})
    assert herself.status_code == 409, herself.text
    assert "together with her legal guardian" in herself.json()["detail"]
    decided = await post(stack, f"/cases/{case_id}/decision",
                         {"choice": "return", "counselled_in_language": "ro",
                          "decided_by": "child_with_guardian"})
    assert decided.status_code == 200, decided.text

    await open_task(stack, "coord.rs", case_id, "informed_consent")
    alone = await post(stack, f"/cases/{case_id}/consent", consent_body())
    assert (alone.status_code, alone.json()["code"]) == (409, "guardian_must_take_part")
    consented = await post(stack, f"/cases/{case_id}/consent",
                           consent_body(consented_by="child_with_guardian"))
    assert consented.status_code == 200, consented.text
    await open_task(stack, "officer.md", case_id, "best_interest_determination")

    events = {e.event_type: e.payload for e in await stack.store.read_stream(case_id)}
    assert events["screening.interview_recorded"]["child_accompanied_by"] == (
        "child_protection_officer")
    assert events["options.decision_recorded"]["decided_by"] == "child_with_guardian"
    assert events["consent.recorded"]["consented_by"] == "child_with_guardian"
    assert events["case.referral_registered"]["guardian_takes_part"] is True


async def test_an_adult_decides_herself(stack):
    case_id = await register(stack)
    await open_task(stack, "coord.rs", case_id, "screening_interview")
    r = await post(stack, f"/cases/{case_id}/screening", screening_body())
    assert r.status_code == 200, r.text
    await open_task(stack, "coord.rs", case_id, "options_decision")
    r = await post(stack, f"/cases/{case_id}/decision",
                   {"choice": "return", "counselled_in_language": "ro",
                    "decided_by": "child_with_guardian"})
    assert r.status_code == 409, r.text
    assert "she is an adult" in r.json()["detail"]
