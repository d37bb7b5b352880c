"""A coordinator whose answer was lost sends the same request again with the same
Idempotency-Key, after the case has moved on (decision 0073): the screening, her decision,
her consent, a fact from the road, a withdrawal and an age assessment are each recorded
once, the retry gets the first answer and stores no second note; the same key with
another request is 422 ``idempotency_key_reused``; a repeat without a key, or with a new
key, is refused as before (409), with nothing written."""

from __future__ import annotations

import uuid

from api_driver import (
    MARKER_ANSWERS,
    consent_body,
    documents_and_clearances,
    open_task,
    record,
    register,
    screening_body,
    stage,
    through_consent,
)


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}


async def post(stack, path: str, body: dict, user: str = "coord.rs", **headers: str):
    return await stack.http.post(path, json=body, headers={**stack.auth(user), **headers})


async def types(stack, case_id: str) -> list[str]:
    return [e.event_type for e in await stack.store.read_stream(case_id)]


async def sent_twice(stack, path: str, body: dict, then: str | None = None,
                     user: str = "coord.rs") -> dict:
    """Sent with a key, answered; once the case has moved on (``then``: the task kind
    that opens next), sent again with the same key: the first answer, nothing written."""
    headers = key()
    first = await post(stack, path, body, user, **headers)
    assert first.status_code == 200, first.text
    if then is not None:
        await open_task(stack, user, path.split("/")[2], then)
    written = await stack.written()
    again = await post(stack, path, body, user, **headers)
    assert (again.status_code, again.json()) == (200, first.json()), again.text
    assert await stack.written() == written
    return {"first": first.json(), "headers": headers}


async def test_steps_retried_after_the_case_moved_on_get_the_first_answer(stack):
    case_id = await register(stack)
    await open_task(stack, "coord.rs", case_id, "screening_interview")

    # The screening: its answers are stored in the vault once, not again by the retry.
    notes = await stack.count("person_notes")
    screening = await sent_twice(stack, f"/cases/{case_id}/screening", screening_body(),
                                 then="options_decision")
    assert await stack.count("person_notes") == notes + 1
    assert screening["first"]["task_id"]
    # The same key for another request is refused; a repeat with another key is the
    # step it is: no screening task is open.
    other = await post(stack, f"/cases/{case_id}/screening",
                       screening_body(interview_language="ru"), **screening["headers"])
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    fresh = await post(stack, f"/cases/{case_id}/screening", screening_body(), **key())
    assert (fresh.status_code, fresh.json()["code"]) == (409, "no_open_task")
    assert await stack.count("person_notes") == notes + 1

    decision = {"choice": "return", "counselled_in_language": "ro"}
    decided = await sent_twice(stack, f"/cases/{case_id}/decision", decision,
                               then="informed_consent")
    # A key used for one step is not another step's key.
    reused = await post(stack, f"/cases/{case_id}/consent", consent_body(),
                        **decided["headers"])
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    unkeyed = await post(stack, f"/cases/{case_id}/decision", decision)
    assert (unkeyed.status_code, unkeyed.json()["code"]) == (409, "no_open_task")

    notes = await stack.count("person_notes")
    await sent_twice(stack, f"/cases/{case_id}/consent", consent_body(),
                     then="travel_documents")
    assert await stack.count("person_notes") == notes + 1  # the form reference, once

    recorded = await types(stack, case_id)
    for step in ("screening.interview_recorded", "options.decision_recorded",
                 "consent.recorded"):
        assert recorded.count(step) == 1, (step, recorded)
    assert MARKER_ANSWERS.encode() not in str(recorded).encode()


async def test_a_fact_retried_after_the_next_one_gets_the_first_answer(stack):
    case_id = await register(stack)
    await through_consent(stack, case_id)

    # A fact refused (too early) leaves nothing under its key: sent again with the same key
    # once the case expects it, it is recorded.
    headers = key()
    early = await post(stack, f"/cases/{case_id}/facts", {"fact": "departed"}, **headers)
    assert (early.status_code, early.json()["code"]) == (409, "fact_not_expected_now")
    await documents_and_clearances(stack, case_id)
    await stage(stack, case_id, "awaiting_departure")
    departed = await post(stack, f"/cases/{case_id}/facts", {"fact": "departed"}, **headers)
    assert departed.status_code == 200, departed.text
    arrived = await post(stack, f"/cases/{case_id}/facts", {"fact": "arrived_at_border"},
                         **key())
    assert arrived.status_code == 200, arrived.text

    # Her departure's answer was lost: the retry says what was recorded then (stage in
    # transit), though the case is at the border now.
    written = await stack.written()
    again = await post(stack, f"/cases/{case_id}/facts", {"fact": "departed"}, **headers)
    assert (again.status_code, again.json()) == (200, departed.json()), again.text
    assert again.json()["stage"] == "in_transit"
    other = await post(stack, f"/cases/{case_id}/facts", {"fact": "border_cleared"},
                       **headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    unkeyed = await post(stack, f"/cases/{case_id}/facts", {"fact": "departed"})
    assert (unkeyed.status_code, unkeyed.json()["code"]) == (409, "fact_not_expected_now")
    assert await stack.written() == written
    assert (await types(stack, case_id)).count("journey.departed") == 1

    # A withdrawal at the border, retried: one withdrawal, the first answer.
    withdrawal = await sent_twice(stack, f"/cases/{case_id}/consent-withdrawal",
                                  {"change": "withdrawn"})
    assert withdrawal["first"]["path"] == "to_safety"
    assert (await types(stack, case_id)).count("consent.withdrawn") == 1


async def test_an_age_assessment_retried_is_recorded_once(stack):
    case_id = await register(stack)
    await open_task(stack, "coord.rs", case_id, "screening_interview")
    body = {"assessed_by": "medical_assessment", "result": "12_17",
            "evidence_record_id": await record(stack, case_id, text="age assessment file")}
    assessed = await sent_twice(stack, f"/cases/{case_id}/age-assessment", body,
                                then="guardian_appointment")
    assert assessed["first"]["minor"] is True
    assert (await types(stack, case_id)).count("case.age_assessed") == 1
    reused = await post(stack, f"/cases/{case_id}/age-assessment",
                        {**body, "result": "disputed"}, **assessed["headers"])
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
