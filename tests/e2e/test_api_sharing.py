"""Identity leaves the two missions only on a recorded consent naming the organisation,
and a revocation or her withdrawal of consent ends that sharing with the next request."""

from __future__ import annotations

import uuid

from api_driver import MARKER_NAME, open_task, register, through_consent

NAMES = {"purpose": "handoff_identification", "field_groups": ["names"]}


async def _partner_reads(stack):
    return await stack.http.post(f"/cases/{stack.case_id}/person/disclosures", json=NAMES,
                                 headers=stack.auth("partner.md"))


async def test_sharing_needs_a_recorded_consent_naming_the_organisation(stack):
    stack.case_id = case_id = await register(stack)
    coord = stack.auth("coord.rs")
    await open_task(stack, "coord.rs", case_id, "screening_interview")  # the case settled

    before = await stack.written()
    # Without a consent, and without a task in the case, the partner has no part in it:
    # the case does not even exist for it.
    refused = await _partner_reads(stack)
    assert refused.status_code == 404
    assert MARKER_NAME not in refused.text

    for body, code in (
        ({"org_id": "ngo-md-border"}, "invalid_request"),
        ({"org_id": "ngo-md-border", "consent_record_id": f"rec_{uuid.uuid4().hex}"},
         "unknown_record"),
        ({"org_id": "ops", "consent_record_id": f"rec_{uuid.uuid4().hex}"}, "not_shareable"),
        ({"org_id": "analysts", "consent_record_id": f"rec_{uuid.uuid4().hex}"},
         "not_shareable"),
        ({"org_id": "mission-md", "consent_record_id": f"rec_{uuid.uuid4().hex}"},
         "already_a_mission"),
    ):
        response = await stack.http.post(f"/cases/{case_id}/sharing", json=body, headers=coord)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code
    assert await stack.written() == before

    # A consent recorded in another case's vault does not count for this one.
    other = await register(stack)
    foreign = await stack.http.post(f"/cases/{other}/person/notes",
                                    json={"kind": "assessment_note", "text": "consent"},
                                    headers=coord)
    response = await stack.http.post(
        f"/cases/{case_id}/sharing",
        json={"org_id": "ngo-md-border", "consent_record_id": foreign.json()["record_id"]},
        headers=coord)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "unknown_record"
    assert response.json()["fields"] == ["consent_record_id"]

    consent = await stack.http.post(f"/cases/{case_id}/person/notes",
                                    json={"kind": "assessment_note",
                                          "text": "signed consent naming ngo-md-border"},
                                    headers=coord)
    share = {"org_id": "ngo-md-border", "consent_record_id": consent.json()["record_id"]}
    granted = await stack.http.post(f"/cases/{case_id}/sharing", json=share, headers=coord)
    assert granted.status_code == 201, granted.text

    read = await _partner_reads(stack)
    assert read.status_code == 200, read.text
    assert read.json()["person"]["given_names"] == MARKER_NAME
    # What recognising her needs, not where she sheltered.
    shelter = await stack.http.post(f"/cases/{case_id}/person/disclosures",
                                    json={"purpose": "case_review",
                                          "field_groups": ["shelter"]},
                                    headers=stack.auth("partner.md"))
    assert shelter.status_code == 403
    assert shelter.json()["code"] == "field_groups_not_needed"

    # An explicit revocation ends it at once ...
    revoked = await stack.http.delete(f"/cases/{case_id}/sharing/ngo-md-border",
                                      headers=coord)
    assert revoked.status_code == 200
    assert (await _partner_reads(stack)).status_code == 404
    again = await stack.http.delete(f"/cases/{case_id}/sharing/ngo-md-border", headers=coord)
    assert again.status_code == 404


async def test_consent_withdrawal_revokes_a_partners_access_immediately(stack):
    stack.case_id = case_id = await register(stack)
    coord = stack.auth("coord.rs")
    await through_consent(stack, case_id)
    consent = await stack.http.post(f"/cases/{case_id}/person/notes",
                                    json={"kind": "assessment_note", "text": "consent form"},
                                    headers=coord)
    share = {"org_id": "ngo-md-border", "consent_record_id": consent.json()["record_id"]}
    assert (await stack.http.post(f"/cases/{case_id}/sharing", json=share,
                                  headers=coord)).status_code == 201
    assert (await _partner_reads(stack)).status_code == 200

    withdrawn = await stack.http.post(f"/cases/{case_id}/consent-withdrawal",
                                      json={"change": "withdrawn"}, headers=coord)
    assert withdrawn.status_code == 200
    # The very next request is refused: no projection lag, no workflow round trip.
    refused = await _partner_reads(stack)
    assert refused.status_code == 404
    assert MARKER_NAME not in refused.text

    # Sharing cannot be granted again once she withdrew.
    import asyncio

    for _ in range(100):
        types = [e.event_type for e in await stack.store.read_stream(case_id)]
        if "consent.withdrawn" in types:
            break
        await asyncio.sleep(0.05)
    assert "consent.withdrawn" in types
    regrant = await stack.http.post(f"/cases/{case_id}/sharing", json=share, headers=coord)
    assert regrant.status_code == 409
    # The grants come from the read model: ask for it current (decision 0052), since
    # her withdrawal was appended a moment ago and the projector may not have run yet.
    listing = await stack.http.get(f"/cases/{case_id}/sharing",
                                   headers={**coord, "X-Read-Model-Max-Lag": "0"})
    assert listing.json()["active"] == []
    [grant] = listing.json()["grants"]
    assert grant["revoked_at"] is not None
    assert grant["revocation_reason"] in ("consent_withdrawn",)
