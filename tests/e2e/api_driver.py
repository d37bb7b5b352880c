"""Drives cases through the HTTP API the way its users would."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from api_stack import FAST_CONFIG, Stack
from payload_walk import payloads_in

MARKER_NAME = "Zorica-Marker-7Q"
MARKER_FAMILY = "Petrovna-Marker-9X"
MARKER_ADDRESS = "Shelter Street Marker 41"
MARKER_ANSWERS = "She said Marker-Answer-3K about the recruiter"


def referral(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "receiving_mission": "mission-md",
        "border_partner": "ngo-md-border",
        "host_country": "RS",
        "destination_country": "MD",
        "referral_source": "police_raid",
        "first_placement": "shelter_low_risk",
        "risk_level": "low",
        "age_category": "18_24",
        "journey_config": FAST_CONFIG,
        "identity": {
            "given_names": MARKER_NAME,
            "family_name": MARKER_FAMILY,
            "nationality": "MD",
            "shelter_address": {"lines": [MARKER_ADDRESS], "country": "RS"},
        },
    }
    body.update(overrides)
    return body


async def register(stack: Stack, user: str = "coord.rs", **overrides: Any) -> str:
    if user == "coord.al":
        overrides = {"receiving_mission": "mission-ua", "border_partner": "ngo-ua",
                     "host_country": "AL", "destination_country": "UA", **overrides}
    response = await stack.http.post("/cases", json=referral(**overrides),
                                     headers=stack.auth(user))
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


async def open_task(stack: Stack, user: str, case_id: str, kind: str,
                    timeout: float = 20.0) -> dict[str, Any]:
    """Wait until the user's inbox holds an open task of ``kind`` for the case."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await stack.http.get("/tasks", params={"kind": kind},
                                        headers=stack.auth(user))
        assert response.status_code == 200, response.text
        for task in response.json()["tasks"]:
            if task["case_id"] == case_id:
                return task
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no open {kind} task for {user} in case {case_id}")
        await asyncio.sleep(0.1)


async def stage(stack: Stack, case_id: str, wanted: str, user: str = "coord.rs",
                timeout: float = 20.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await stack.http.get(f"/cases/{case_id}", headers=stack.auth(user))
        assert response.status_code == 200, response.text
        if response.json()["stage"] == wanted:
            return response.json()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"case {case_id} never reached {wanted}: {response.json()}")
        await asyncio.sleep(0.1)


async def complete(stack: Stack, user: str, case_id: str, kind: str,
                   result: dict[str, Any]) -> dict[str, Any]:
    task = await open_task(stack, user, case_id, kind)
    response = await stack.http.post(f"/tasks/{task['task_id']}/complete",
                                     json={"result": {"kind": kind, **result}},
                                     headers=stack.auth(user))
    assert response.status_code == 200, response.text
    return response.json()


def screening_body(**overrides: Any) -> dict[str, Any]:
    return {"answers": MARKER_ANSWERS, "interview_language": "ro", "interpreter_used": False,
            "reads_languages": ["ro"], "trafficking_status": "ActualVictimOfTrafficking",
            **overrides}


def consent_body(**overrides: Any) -> dict[str, Any]:
    return {"form_language": "ro", "form_version": "2026-1", "interpreter_used": False,
            "signed_at": datetime.now(UTC).isoformat(),
            "form_reference": "signed form, paper file 12", **overrides}


async def until_open(stack: Stack, user: str, case_id: str, kind: str) -> dict[str, Any]:
    return await open_task(stack, user, case_id, kind)


async def through_consent(stack: Stack, case_id: str, user: str = "coord.rs") -> None:
    await until_open(stack, user, case_id, "screening_interview")
    r = await stack.http.post(f"/cases/{case_id}/screening", json=screening_body(),
                              headers=stack.auth(user))
    assert r.status_code == 200, r.text
    await until_open(stack, user, case_id, "options_decision")
    r = await stack.http.post(f"/cases/{case_id}/decision",
                              json={"choice": "return", "counselled_in_language": "ro"},
                              headers=stack.auth(user))
    assert r.status_code == 200, r.text
    await until_open(stack, user, case_id, "informed_consent")
    r = await stack.http.post(f"/cases/{case_id}/consent", json=consent_body(),
                              headers=stack.auth(user))
    assert r.status_code == 200, r.text


async def record(stack: Stack, case_id: str, user: str = "coord.rs",
                 text: str = "a file of this case", kind: str = "assessment_note") -> str:
    """A note in the case's vault, and the record id it answers: the only kind of record
    id the API accepts in a request about this case (decision 0046)."""
    note = await stack.http.post(f"/cases/{case_id}/person/notes",
                                 json={"kind": kind, "text": text}, headers=stack.auth(user))
    assert note.status_code == 201, note.text
    return note.json()["record_id"]


async def documents_and_clearances(stack: Stack, case_id: str, user: str = "coord.rs") -> None:
    record_id = await record(stack, case_id, user, "documents file")
    await complete(stack, user, case_id, "travel_documents",
                   {"issued": True, "document_record_id": record_id})
    await complete(stack, user, case_id, "medical_clearance",
                   {"fit_to_travel": True, "medical_record_id": record_id})
    await complete(stack, user, case_id, "security_assessment", {"risk_level": "low"})


async def fact(stack: Stack, case_id: str, name: str, user: str = "coord.rs") -> None:
    r = await stack.http.post(f"/cases/{case_id}/facts", json={"fact": name},
                              headers=stack.auth(user))
    assert r.status_code == 200, r.text
    assert r.json()["event_types"], r.text  # recorded at once


async def at_the_border(stack: Stack) -> str:
    """A new case driven through consent, documents and travel: she is at the border."""
    case_id = await register(stack)
    await through_consent(stack, case_id)
    await documents_and_clearances(stack, case_id)
    await stage(stack, case_id, "awaiting_departure")
    await fact(stack, case_id, "departed")
    await stage(stack, case_id, "in_transit")
    await fact(stack, case_id, "arrived_at_border")
    await stage(stack, case_id, "border")
    return case_id


async def returned(stack: Stack) -> str:
    """A case driven through the journey to a confirmed handoff: its follow-up runs."""
    case_id = await at_the_border(stack)
    await fact(stack, case_id, "border_cleared")
    task = await open_task(stack, "officer.md", case_id, "reception_handoff")
    code = (await stack.http.get(f"/cases/{case_id}/handoff-code",
                                 headers=stack.auth("officer.md"))).json()["handoff_code"]
    done = await stack.http.post(f"/tasks/{task['task_id']}/complete", json={"result": {
        "kind": "reception_handoff", "identification": "handoff_code", "handoff_code": code,
        "safe_arrival_confirmed": True}}, headers=stack.auth("officer.md"))
    assert done.status_code == 200, done.text
    return case_id


async def history_text(stack: Stack, workflow_id: str) -> bytes:
    """Everything a workflow's history holds, its payloads decrypted with the stack's
    codec: where a request's values would be if the API had forwarded them."""
    from temporalio.api.history.v1 import History

    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    raw = History(events=history.events)
    payloads = payloads_in(raw)
    codec = stack.client.data_converter.payload_codec
    decoded = await codec.decode(payloads) if codec else payloads
    return raw.SerializeToString() + b"\n" + b"\n".join(p.data for p in decoded)
