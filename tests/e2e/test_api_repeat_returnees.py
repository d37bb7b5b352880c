"""Repeat returnees through the API (issue 16 item 4, decision 0070): a person registered
again is recognised by the vault's blind index; the registering coordinator is told the
earlier case and who assisted her when her organisation may see that case, and only the
mission to ask when it may not (two missions); a document number alone matches; nothing
about the match is recorded, and nobody else is matched. Linking is a deliberate,
recorded decision, refused to an organisation that may not make it; the statistical
report counts linked cases once and shows her as a repeat returnee."""

from __future__ import annotations

import json
from typing import Any

from api_driver import referral

from store.projections import ProjectionRunner
from store.read_models import all_projections

PERSON = {"given_names": "Ștefania Ioana", "family_name": "Rusu-Marker",
          "date_of_birth": "1996-04-11", "nationality": "MD",
          "identity_documents": [{"kind": "passport", "number": "AB 4711-02",
                                  "issuing_country": "MD"}]}
AGAIN = {**PERSON, "given_names": "IOANA  stefania", "family_name": "rusu marker",
         "identity_documents": []}
SAME_PASSPORT = {"given_names": "Stefa", "family_name": "Rousou",
                 "date_of_birth": "1997-01-01",
                 "identity_documents": [{"kind": "temporary_travel_document",
                                         "number": "ab471102", "issuing_country": "MD"}]}
SOMEONE_ELSE = {**PERSON, "date_of_birth": "1996-04-12", "identity_documents": []}


async def _register(stack, user: str, identity: dict[str, Any]) -> dict[str, Any]:
    overrides: dict[str, Any] = {"identity": identity}
    if user == "coord.al":
        overrides |= {"receiving_mission": "mission-ua", "border_partner": "ngo-ua",
                      "host_country": "AL", "destination_country": "UA"}
    response = await stack.http.post("/cases", json=referral(**overrides),
                                     headers=stack.auth(user))
    assert response.status_code == 201, response.text
    return response.json()


async def _link(stack, user: str, case_id: str, other: str, expect: int) -> dict[str, Any]:
    response = await stack.http.post(f"/cases/{case_id}/links",
                                     json={"linked_case_id": other}, headers=stack.auth(user))
    assert response.status_code == expect, response.text
    return response.json()


async def test_the_warning_names_the_earlier_case_only_to_whom_may_see_it(stack):
    first = await _register(stack, "coord.rs", PERSON)
    assert first["repeat_warnings"] == []
    earlier = first["case_id"]

    # The same mission registers her again, written otherwise: it sees its own case.
    again = await _register(stack, "coord.rs", AGAIN)
    assert again["repeat_warnings"] == [{
        "kind": "assisted_before", "case_id": earlier, "organisation": "mission-rs",
        "matched_on": ["name_and_birth_date"], "ask_mission": None,
        "message": f"this person may have been assisted before (case {earlier}, by "
                   "organisation mission-rs)"}]

    # Another mission may not see either case: only whom to ask, no case id.
    elsewhere = await _register(stack, "coord.al", AGAIN)
    assert elsewhere["repeat_warnings"] == [{
        "kind": "possible_earlier_case", "ask_mission": "mission-rs", "case_id": None,
        "organisation": None, "matched_on": None,
        "message": "a possible earlier case exists; ask mission mission-rs"}]
    text = json.dumps(elsewhere)
    assert earlier not in text and again["case_id"] not in text

    # A document number alone, written otherwise, under another name and birth date.
    by_passport = await _register(stack, "coord.rs", SAME_PASSPORT)
    assert [(w["case_id"], w["matched_on"]) for w in by_passport["repeat_warnings"]] == [
        (earlier, ["document"])]

    # Nobody else: one day apart is another person.
    other = await _register(stack, "coord.rs", SOMEONE_ELSE)
    assert other["repeat_warnings"] == []

    # The match is no event: nothing on any stream says it.
    for case_id in (earlier, again["case_id"], elsewhere["case_id"]):
        events = await stack.store.read_stream(case_id, limit=500)
        assert "case.linked" not in {e.event_type for e in events}
        assert earlier not in json.dumps([e.payload for e in events if e.case_id != earlier])


async def test_linking_is_recorded_refused_to_others_and_counted_once(stack):
    earlier = (await _register(stack, "coord.rs", PERSON))["case_id"]
    again = (await _register(stack, "coord.rs", AGAIN))["case_id"]
    elsewhere = (await _register(stack, "coord.al", AGAIN))["case_id"]
    stranger = (await _register(stack, "coord.rs", SOMEONE_ELSE))["case_id"]

    # Her organisation may see both: linked, once.
    linked = await _link(stack, "coord.rs", again, earlier, 200)
    assert linked == {"case_id": again, "linked_case_id": earlier, "basis": "both_visible",
                      "linked": True}
    assert (await _link(stack, "coord.rs", again, earlier, 200))["linked"] is False
    assert (await _link(stack, "coord.rs", earlier, again, 200))["linked"] is False
    events = [e for e in await stack.store.read_stream(again, limit=500)
              if e.event_type == "case.linked"]
    assert [(e.payload, e.author_org, e.actor) for e in events] == [
        ({"linked_case_id": earlier, "basis": "both_visible"}, "mission-rs", "coord.rs")]
    timeline = (await stack.http.get(f"/cases/{again}/timeline",
                                     headers=stack.auth("coord.rs"))).json()
    assert any(f"linked to case {earlier}" in (e.get("text") or "")
               for e in timeline["events"])

    # The wrong organisation: another mission's case it may not see and that did not
    # match (404, as for any case it may not see); a case that is not its own (404); a
    # role that never links (403); a case to itself (422). Nothing written.
    before = await stack.count("events")
    await _link(stack, "coord.al", elsewhere, stranger, 404)
    await _link(stack, "coord.al", earlier, elsewhere, 404)
    refused = await _link(stack, "officer.md", earlier, again, 403)
    assert refused["code"] == "forbidden"
    await _link(stack, "coord.rs", again, again, 422)
    assert await stack.count("events") == before

    # Through the other mission: mission-rs tells mission-al its case id; the blind index
    # matched the two, so mission-al links its own case to it.
    through = await _link(stack, "coord.al", elsewhere, earlier, 200)
    assert through["basis"] == "identity_match" and through["linked"] is True

    # Statistics count her once (her latest case), as a repeat returnee.
    await ProjectionRunner(stack.engine, all_projections()).catch_up()
    async with stack.engine.connect() as conn:
        from sqlalchemy import text
        rows = dict((await conn.execute(text(
            "SELECT case_id, person_key FROM rm_case_links"))).all())
    assert rows == {c: min(earlier, again, elsewhere) for c in (earlier, again, elsewhere)}
    assert stranger not in rows
