"""The proof that no identity leaks: marker identities go in through the HTTP API, the way
users send them, and through whole journeys; then every place outside the vault is
searched for them.

Two people, each with her own markers (a token found nowhere else) in every identity
field the API takes: the referral's identity block and ``PUT /cases/{id}/person`` (names,
alias, date of birth, identity documents, contacts, family contacts, photos as content
and as reference, shelter address), the screening answers, the consent form reference and
notes of every kind (``/person/notes``), plus an Idempotency-Key, and refused requests
that carry markers in invalid or unknown fields. One case is returned the hard way: the
carrier cancels the first flight (rebooked), the leg she is on fails (rebooked), a border
hold with a partner NGO companion, a fact refused by the workflow's validator, the
handoff, and the follow-up started with its first task done. The other case shares her
identity with a partner NGO on her recorded consent, and she withdraws her consent on the
road: sharing revoked, a safe place confirmed. The first then comes back: registered
again by both sending missions with her name in capitals and without accents, warned of as
each may be told (the earlier case to its own mission, only whom to ask to the other),
and her two cases linked (decision 0070).

Then the markers are searched for in: every workflow's history (raw bytes as the server
returns them, and every payload decoded with the project's codec), search attributes,
workflow ids and task queues (listed from the server, children included), every row of
every table of the database (events with all columns, read models, the audit log, and the
vault's own tables, which must hold ciphertext only), what the API answers from its read
models, every log line of the process (API, worker, projector, SDK, uvicorn's access log
and the request URLs in it), the Temporal server's and PostgreSQL's logs, the SDK core's
output, and the raw files of the Temporal SQLite database and PostgreSQL's data directory.

The markers ARE where they belong: an authorised reader gets every one of them back,
decrypted, through the API; each search has a positive control (a case id, a log line we
know is written) so that it cannot pass by searching nothing.

A second test pins a leak found on the way: a record id was checked for its shape only, so
free text in it reached the workflow and the events; now one that names no record of the
case's vault is refused (decision 0046).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from api_driver import open_task, stage
from api_stack import FAST_CONFIG
from payload_walk import payloads_in
from sqlalchemy import text
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from workers.temporal import data_converter

# A bound on every wait, never a timing assertion: each condition normally holds within a
# second or two, but the machine is shared and may be slow; two minutes only keeps a
# broken case from hanging the run.
WAIT = 120.0

ALL_FIELD_GROUPS = ["names", "birth_and_nationality", "documents", "contact", "photos",
                    "family", "shelter", "notes"]


# --- marker identities --------------------------------------------------------------------


@dataclass
class Person:
    """One person's marker identity. Every marker is an ASCII token found nowhere else
    (a fresh random part per run), embedded in realistic text where the field is text."""

    tag: str
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    birth: date = field(default_factory=lambda: date(1990 + secrets.randbelow(15),
                                                     1 + secrets.randbelow(12),
                                                     1 + secrets.randbelow(28)))
    notes: dict[str, str] = field(default_factory=dict)  # marker name -> note text sent

    def m(self, what: str) -> str:
        return f"Mk{what}{self.tag}{self.token}"

    @property
    def photo_bytes(self) -> bytes:
        return f"JPEG{self.m('photobytes')}".encode()

    def identity_block(self) -> dict[str, Any]:
        """The referral's identity block."""
        return {
            "given_names": f"Ștefania {self.m('given')}",
            "family_name": self.m("family"),
            "aliases": [self.m("alias")],
            "date_of_birth": self.birth.isoformat(),
            "nationality": "MD",
            "identity_documents": [{"kind": "passport", "number": self.m("passport"),
                                    "issuing_country": "MD"}],
            "photos": [{"media_type": "image/jpeg",
                        "content": base64.b64encode(self.photo_bytes).decode()}],
            "shelter_address": {"lines": [f"Strada {self.m('street')} 77", "Bloc 4"],
                                "locality": self.m("locality"),
                                "postal_code": self.m("postcode"), "country": "RS"},
        }

    def person_update(self) -> dict[str, Any]:
        """``PUT /cases/{id}/person``: the fields the referral did not set, and a second
        document and photo."""
        return {
            "identity_documents": [
                {"kind": "passport", "number": self.m("passport"), "issuing_country": "MD"},
                {"kind": "national_id", "number": self.m("nationalid"),
                 "issuing_country": "MD"}],
            "contact_details": [
                {"kind": "phone", "value": f"+373 {self.m('phone')}"},
                {"kind": "email", "value": f"{self.m('email')}@example.org"},
                {"kind": "messenger", "value": f"@{self.m('messenger')}"}],
            "family_contacts": [{"relationship": f"aunt {self.m('relationship')}",
                                 "name": self.m("familycontact"),
                                 "contact_details": [{"kind": "postal_address",
                                                      "value": self.m("familyaddress")}]}],
            "photos": [{"media_type": "image/jpeg",
                        "content": base64.b64encode(self.photo_bytes).decode()},
                       {"media_type": "image/jpeg",
                        "reference": f"cabinet 3, {self.m('photoref')}"}],
        }

    def note(self, what: str) -> str:
        text_ = f"She said {self.m(what)} would find her; a note about {what}."
        self.notes[what] = text_
        return text_

    def stored(self) -> dict[str, str]:
        """Every marker the vault must hold for her (marker name -> marker)."""
        names = ["given", "family", "alias", "passport", "nationalid", "phone", "email",
                 "messenger", "relationship", "familycontact", "familyaddress", "photoref",
                 "street", "locality", "postcode", *self.notes]
        return {f"{self.tag}.{n}": self.m(n) for n in names}

    def refused(self) -> dict[str, str]:
        """Markers sent only in refused requests or where nothing is kept: nowhere."""
        names = ["idempotency", "extrafield", "badnationality", "badnotekind", "resultnote",
                 "badscreening"]
        return {f"{self.tag}.{n}": self.m(n) for n in names}

    def dates(self) -> list[str]:
        d = self.birth
        return [d.isoformat(), f"{d:%d.%m.%Y}", f"{d:%d/%m/%Y}", f"{d:%m/%d/%Y}"]


# --- searching ------------------------------------------------------------------------------


def _b64_needles(value: bytes) -> set[bytes]:
    """The marker as it reads inside base64 (JSON renders bytes so), at each of the three
    alignments, standard and URL-safe alphabets: only the characters that depend on the
    marker alone."""
    found = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + value)
        start, end = -(-8 * shift // 6), 8 * (shift + len(value)) // 6
        part = encoded[start:end]
        found |= {part, part.replace(b"+", b"-").replace(b"/", b"_")}
    return found


@dataclass
class Needle:
    name: str
    plain: list[bytes]  # compared with the lowercased haystack
    encoded: set[bytes]  # base64 forms, compared exactly


def needles(people: Iterable[Person]) -> list[Needle]:
    out = []
    for p in people:
        for name, marker in {**p.stored(), **p.refused()}.items():
            out.append(Needle(name, [marker.lower().encode()], _b64_needles(marker.encode())))
        out.append(Needle(f"{p.tag}.photobytes", [p.photo_bytes.lower()],
                          _b64_needles(p.photo_bytes)))
        out.append(Needle(f"{p.tag}.date_of_birth", [d.encode() for d in p.dates()],
                          _b64_needles(p.birth.isoformat().encode())))
    return out


class Search:
    """Collects every place a marker was found, so that one run names every leak."""

    def __init__(self, people: list[Person]):
        self.needles = needles(people)
        self.leaks: list[str] = []
        self.searched: list[str] = []

    def __call__(self, where: str, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        low = raw.lower()
        self.searched.append(where)
        for n in self.needles:
            if any(p in low for p in n.plain) or any(e in raw for e in n.encoded):
                self.leaks.append(f"{n.name} in {where}")


# --- driving the API ------------------------------------------------------------------------


async def post(stack, user: str, path: str, body: dict, expect: int = 200,
               **headers: str) -> dict[str, Any]:
    response = await stack.http.post(path, json=body, headers={**stack.auth(user), **headers})
    assert response.status_code == expect, (path, response.status_code, response.text)
    return response.json()


async def add_note(stack, user: str, case_id: str, kind: str, text_: str) -> str:
    note = await post(stack, user, f"/cases/{case_id}/person/notes",
                      {"kind": kind, "text": text_}, expect=201)
    return note["record_id"]


async def complete(stack, user: str, case_id: str, kind: str, result: dict) -> dict:
    task = await open_task(stack, user, case_id, kind, timeout=WAIT)
    return await post(stack, user, f"/tasks/{task['task_id']}/complete",
                      {"result": {"kind": kind, **result}})


async def fact(stack, case_id: str, name: str, **extra: str) -> dict:
    recorded = await post(stack, "coord.rs", f"/cases/{case_id}/facts",
                          {"fact": name, **extra})
    assert recorded["event_types"], recorded  # recorded at once
    return recorded


async def events_until(stack, case_id: str, done: Callable[[list[str]], bool],
                       what: str) -> list[str]:
    """Wait on the event store until the case's event types satisfy ``done``."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        types = [e.event_type for e in await stack.store.read_stream(case_id, limit=2_000)]
        if done(types):
            return types
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"case {case_id}: no {what}; events: {types}")
        await asyncio.sleep(0.2)


async def register(stack, p: Person, **overrides: Any) -> str:
    body = {
        "receiving_mission": "mission-md", "border_partner": "ngo-md-border",
        "host_country": "RS", "destination_country": "MD", "referral_source": "police_raid",
        "first_placement": "shelter_low_risk", "risk_level": "low", "age_category": "18_24",
        "journey_config": FAST_CONFIG, "identity": p.identity_block(), **overrides,
    }
    # An identity field the API does not know: refused whole, nothing stored, not echoed.
    bad = {**body, "identity": {**body["identity"], "nickname": p.m("extrafield")}}
    refused = await post(stack, "coord.rs", "/cases", bad, expect=422)
    assert p.m("extrafield") not in json.dumps(refused)
    # A client that puts her name in the Idempotency-Key: only a hash of it is kept.
    created = await post(stack, "coord.rs", "/cases", body, expect=201,
                         **{"Idempotency-Key": p.m("idempotency")})
    assert created["identity_recorded"] is True
    case_id = created["case_id"]

    bad_person = {"nationality": p.m("badnationality")}
    refused = await stack.http.put(f"/cases/{case_id}/person", json=bad_person,
                                   headers=stack.auth("coord.rs"))
    assert refused.status_code == 422 and p.m("badnationality") not in refused.text
    recorded = await stack.http.put(f"/cases/{case_id}/person", json=p.person_update(),
                                    headers=stack.auth("coord.rs"))
    assert recorded.status_code == 200, recorded.text
    refused_note = await post(stack, "coord.rs", f"/cases/{case_id}/person/notes",
                              {"kind": "diary", "text": p.m("badnotekind")}, expect=422)
    assert p.m("badnotekind") not in json.dumps(refused_note)
    return case_id


async def through_consent(stack, p: Person, case_id: str) -> None:
    await open_task(stack, "coord.rs", case_id, "screening_interview", timeout=WAIT)
    screening = {"answers": p.note("answers"), "interview_language": "ro",
                 "interpreter_used": False, "reads_languages": ["ro"],
                 "trafficking_status": "ActualVictimOfTrafficking"}
    # Refused before anything is stored: the answers of a malformed request go nowhere.
    bad = await post(stack, "coord.rs", f"/cases/{case_id}/screening",
                     {**screening, "answers": p.m("badscreening"), "reads_languages": []},
                     expect=422)
    assert p.m("badscreening") not in json.dumps(bad)
    await post(stack, "coord.rs", f"/cases/{case_id}/screening", screening)
    await trafficking_account(stack, p, case_id)
    await open_task(stack, "coord.rs", case_id, "options_decision", timeout=WAIT)
    await post(stack, "coord.rs", f"/cases/{case_id}/decision",
               {"choice": "return", "counselled_in_language": "ro"})
    await open_task(stack, "coord.rs", case_id, "informed_consent", timeout=WAIT)
    await post(stack, "coord.rs", f"/cases/{case_id}/consent", {
        "form_language": "ro", "form_version": "2026-1", "interpreter_used": False,
        "signed_at": datetime.now(UTC).isoformat(), "form_reference": p.note("consentform")})


async def trafficking_account(stack, p: Person, case_id: str) -> None:
    """How trafficking occurred (decision 0066): codes in the event, her story a vault note.
    A marker in an unknown field or in place of a code is refused whole, not echoed."""
    path = f"/cases/{case_id}/trafficking-account"
    for bad in ({"narrative": p.m("narrative")}, {"exploitation_types": [p.m("exploitcode")]},
                {"route": [{"role": "transit", "country": "RO", "city": p.m("city")}]}):
        refused = await stack.http.put(path, json=bad, headers=stack.auth("coord.rs"))
        assert refused.status_code == 422, refused.text
        assert p.token not in refused.text
    await add_note(stack, "coord.rs", case_id, "assessment_note", p.note("howtrafficked"))
    account = await stack.http.put(path, headers=stack.auth("coord.rs"), json={
        "recruitment_method": "ThroughAnOnlineAdvertisement",
        "exploitation_types": ["SexualExploitation"], "duration_band": "6_12_months",
        "route": [{"role": "recruitment", "country": "MD"},
                  {"role": "exploitation", "country": "RS"}], "transport_means": ["bus"]})
    assert account.status_code == 200 and account.json()["recorded"], account.text


async def documents_and_clearances(stack, p: Person, case_id: str) -> None:
    record = await add_note(stack, "coord.rs", case_id, "assessment_note",
                            p.note("documentsfile"))
    wellbeing = await add_note(stack, "coord.rs", case_id, "wellbeing_note",
                               p.note("wellbeing"))
    task = await open_task(stack, "coord.rs", case_id, "travel_documents", timeout=WAIT)
    # A free-text field smuggled into a task result: refused, not echoed, not forwarded.
    bad = await post(stack, "coord.rs", f"/tasks/{task['task_id']}/complete", {"result": {
        "kind": "travel_documents", "issued": True, "document_record_id": record,
        "note": p.m("resultnote")}}, expect=422)
    assert p.m("resultnote") not in json.dumps(bad)
    await complete(stack, "coord.rs", case_id, "travel_documents",
                   {"issued": True, "document_record_id": record})
    await complete(stack, "coord.rs", case_id, "medical_clearance",
                   {"fit_to_travel": True, "medical_record_id": wellbeing})
    await complete(stack, "coord.rs", case_id, "security_assessment", {"risk_level": "low"})


async def returned_the_hard_way(stack, p: Person) -> str:
    """Cancelled flight (rebooked), failed leg (rebooked), border hold with a companion, a
    refused fact, the handoff, and the follow-up started."""
    case_id = await register(stack, p, simulated_disruptions=["cancelled_flight"])
    await through_consent(stack, p, case_id)
    await documents_and_clearances(stack, p, case_id)
    # The carrier cancels the first booking: the workflow rebooks by itself.
    await events_until(stack, case_id, lambda t: t.count("journey.booked") >= 2,
                       "rebooking after the cancelled flight")
    await stage(stack, case_id, "awaiting_departure", timeout=WAIT)
    # The border partner's role offered to another NGO, the reason in words (kept in her
    # file in the vault), and declined (decision 0068).
    await post(stack, "coord.rs", f"/cases/{case_id}/transfers", {
        "role": "border_partner", "to_org": "ngo-ua", "reason": "her_request",
        "details": p.note("transfer")}, expect=201)
    await complete(stack, "partner.ua", case_id, "transfer_decision",
                   {"accepted": False, "decline_reason": "outside_area"})
    await fact(stack, case_id, "departed")
    early = await post(stack, "coord.rs", f"/cases/{case_id}/facts",
                       {"fact": "border_cleared"}, expect=409)  # refused by the validator
    assert early["code"] == "fact_not_expected_now"
    await fact(stack, case_id, "leg_failed", failure="cancelled_flight")
    await events_until(stack, case_id, lambda t: t.count("journey.booked") >= 3,
                       "rebooking after the failed leg")
    await stage(stack, case_id, "awaiting_departure", timeout=WAIT)
    await fact(stack, case_id, "departed")
    await fact(stack, case_id, "arrived_at_border")
    await fact(stack, case_id, "border_hold_started")
    companion = await add_note(stack, "coord.rs", case_id, "assessment_note",
                               p.note("companion"))
    await complete(stack, "partner.md", case_id, "border_companion",
                   {"companion_record_id": companion})
    await fact(stack, case_id, "border_hold_lifted")
    await fact(stack, case_id, "border_cleared")

    await open_task(stack, "officer.md", case_id, "reception_handoff", timeout=WAIT)
    code = await stack.http.get(f"/cases/{case_id}/handoff-code",
                                headers=stack.auth("officer.md"))
    assert code.status_code == 200, code.text
    await complete(stack, "officer.md", case_id, "reception_handoff", {
        "identification": "handoff_code", "handoff_code": code.json()["handoff_code"],
        "safe_arrival_confirmed": True, "assistance_provided": ["overnight_accommodation"]})
    closed = await stage(stack, case_id, "closed", timeout=WAIT)
    assert closed["outcome"] == "returned"

    # The follow-up: the receiving mission's own notes and its first task.
    assessment = await add_note(stack, "officer.md", case_id, "follow_up_note",
                                p.note("followup"))
    await complete(stack, "officer.md", case_id, "needs_assessment", {
        "assessment_record_id": assessment, "needs": ["medical", "vocational_training"]})
    # Follow-up through its routes (decision 0064): a risk described in words (the words go
    # to the vault), a plan line whose provider reports delivery, a closure, a reopening.
    await post(stack, "officer.md", f"/cases/{case_id}/follow-up/risks",
               {"indicator": "recruiter_contact", "description": p.note("risk")},
               **{"Idempotency-Key": f"risk-{case_id}"})
    await complete(stack, "officer.md", case_id, "reintegration_plan", {"lines": [{
        "line_id": str(uuid.uuid4()), "service": "vocational_training",
        "provider_org": "ngo-ua", "due_at": "2099-01-01T00:00:00+00:00"}]})
    await complete(stack, "partner.ua", case_id, "service_delivery", {"status": "delivered"})
    await post(stack, "officer.md", f"/cases/{case_id}/follow-up/closure",
               {"reason": "moved_away"})
    await post(stack, "officer.md", f"/cases/{case_id}/follow-up/reopening",
               {"reason": "contact_restored"})
    return case_id


async def withdrawn_on_the_road(stack, p: Person) -> str:
    """Identity shared with the partner NGO on her consent; she withdraws after departure:
    the sharing ends, she is brought to a safe place, the case closes."""
    case_id = await register(stack, p)
    await through_consent(stack, p, case_id)
    consent = await add_note(stack, "coord.rs", case_id, "assessment_note",
                             p.note("sharingconsent"))
    await post(stack, "coord.rs", f"/cases/{case_id}/sharing",
               {"org_id": "ngo-md-border", "consent_record_id": consent}, expect=201)
    shared = await post(stack, "partner.md", f"/cases/{case_id}/person/disclosures",
                        {"purpose": "handoff_identification",
                         "field_groups": ["names", "photos"]})
    assert shared["person"]["family_name"] == p.m("family")  # the partner reads her name
    await documents_and_clearances(stack, p, case_id)
    await stage(stack, case_id, "awaiting_departure", timeout=WAIT)
    await fact(stack, case_id, "departed")
    form = await add_note(stack, "coord.rs", case_id, "assessment_note",
                          p.note("withdrawalform"))
    withdrawn = await post(stack, "coord.rs", f"/cases/{case_id}/consent-withdrawal",
                           {"change": "withdrawn", "form_record_id": form})
    assert withdrawn["path"] == "to_safety"
    place = await add_note(stack, "coord.rs", case_id, "assessment_note",
                           p.note("safeaddress"))
    await complete(stack, "coord.rs", case_id, "safe_place", {
        "place": "safe_address_of_her_choice", "handed_to": "herself",
        "safe_place_record_id": place})
    closed = await stage(stack, case_id, "closed", timeout=WAIT)
    assert closed["outcome"] == "alternative_pathway"
    return case_id


async def came_back(stack, p: Person, earlier: str, search: Search) -> list[str]:
    """She is registered again (issue 16 item 4, decision 0070): her name in capitals and
    without its accents. The vault's blind index recognises her: the warning names the
    earlier case to the mission that may see it, only the mission to ask to another (and
    nothing else: no marker, no field of hers); the sending mission links the cases. What
    the match and the link leave is searched with everything else."""
    block = p.identity_block()
    again = {**block, "given_names": block["given_names"].upper().replace("Ș", "S"),
             "family_name": f"  {block['family_name'].lower()} "}
    body = {"receiving_mission": "mission-md", "border_partner": "ngo-md-border",
            "host_country": "RS", "destination_country": "MD",
            "referral_source": "police_raid", "first_placement": "shelter_low_risk",
            "risk_level": "low", "age_category": "18_24", "journey_config": FAST_CONFIG,
            "identity": again}
    seen = await post(stack, "coord.rs", "/cases", body, expect=201)
    assert seen["repeat_warnings"] == [{
        "kind": "assisted_before", "case_id": earlier, "organisation": "mission-rs",
        "matched_on": ["document", "name_and_birth_date"], "ask_mission": None,
        "message": f"this person may have been assisted before (case {earlier}, by "
                   "organisation mission-rs)"}]
    elsewhere = await post(stack, "coord.al", "/cases", {
        **body, "receiving_mission": "mission-ua", "border_partner": "ngo-ua",
        "host_country": "AL", "destination_country": "UA"}, expect=201)
    assert elsewhere["repeat_warnings"] == [{
        "kind": "possible_earlier_case", "ask_mission": "mission-rs", "case_id": None,
        "organisation": None, "matched_on": None,
        "message": "a possible earlier case exists; ask mission mission-rs"}]
    assert earlier not in json.dumps(elsewhere) and seen["case_id"] not in json.dumps(elsewhere)
    linked = await post(stack, "coord.rs", f"/cases/{seen['case_id']}/links",
                        {"linked_case_id": earlier})
    assert linked["linked"] is True
    timeline = await stack.http.get(f"/cases/{seen['case_id']}/timeline",
                                    headers=stack.auth("coord.rs"))
    assert f"linked to case {earlier}" in timeline.text
    for where, answer in (("registered again", seen), ("registered elsewhere", elsewhere),
                          ("linked", linked)):
        search(f"POST answer: {where}", json.dumps(answer))
    search("GET timeline of the case registered again", timeline.text)
    return [seen["case_id"], elsewhere["case_id"]]


# --- where the markers must be: the vault, through the API --------------------------------


async def assert_vault_holds(stack, p: Person, case_id: str) -> None:
    read = await post(stack, "coord.rs", f"/cases/{case_id}/person/disclosures",
                      {"purpose": "case_review", "field_groups": ALL_FIELD_GROUPS})
    body = json.dumps(read)
    missing = [name for name, marker in p.stored().items() if marker not in body]
    assert missing == [], f"the vault does not give back {missing}"
    assert p.birth.isoformat() == read["person"]["date_of_birth"]
    photos = [base64.b64decode(ph["content"]) for ph in read["person"]["photos"]
              if ph.get("content")]
    assert p.photo_bytes in photos
    notes = {n["text"] for n in read["notes"]}
    assert set(p.notes.values()) <= notes
    leaked = [name for name, marker in p.refused().items() if marker in body]
    assert leaked == [], f"refused input was stored: {leaked}"
    # The receiving mission reads what its part needs (no shelter address).
    theirs = await post(stack, "officer.md", f"/cases/{case_id}/person/disclosures",
                        {"purpose": "handoff_identification", "field_groups": ["names"]})
    assert theirs["person"]["given_names"] == f"Ștefania {p.m('given')}"


# --- where they must not be -------------------------------------------------------------------

# Indexed, so never encrypted: searched in the raw bytes.
_SEARCHED_RAW = frozenset({"search_attributes"})



async def search_temporal(live, search: Search, case_ids: list[str]) -> None:
    settings = live.settings
    raw = await Client.connect(settings.temporal_address,
                               namespace=settings.temporal_namespace,
                               data_converter=pydantic_data_converter)
    expected = {f"return-{c}" for c in case_ids} | {f"reintegration-{case_ids[0]}"}
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:  # visibility is eventually consistent: wait until every run is listed
        executions = [wf async for wf in raw.list_workflows()]
        if expected <= {wf.id for wf in executions}:
            break
        assert asyncio.get_running_loop().time() < deadline, executions
        await asyncio.sleep(0.5)
    codec = data_converter(settings).payload_codec
    assert codec is not None
    for wf in executions:
        where = f"workflow {wf.id}"
        search(f"{where}: id", wf.id)
        search(f"{where}: task queue", wf.task_queue)  # activities' and sticky ones:
        # in the raw history below
        search(f"{where}: listed search attributes", repr(wf.typed_search_attributes))
        search(f"{where}: listing", wf.raw_info.SerializeToString())
        handle = raw.get_workflow_handle(wf.id, run_id=wf.run_id)
        described = await handle.describe()
        search(f"{where}: description", described.raw_description.SerializeToString())
        search(f"{where}: typed search attributes", repr(described.typed_search_attributes))

        history = await handle.fetch_history()
        search(f"{where}: raw history", History(events=history.events).SerializeToString())
        # Patch markers are written by the SDK's core, not through the data converter.
        patches = [e for e in history.events
                   if e.marker_recorded_event_attributes.marker_name == "core_patch"]
        for marker in patches:
            for p in payloads_in(marker, skip=_SEARCHED_RAW):
                assert re.fullmatch(r"[a-z0-9-]+", json.loads(p.data)["id"]), p.data
        payloads = [p for e in history.events if e not in patches
                    for p in payloads_in(e, skip=_SEARCHED_RAW)]
        plain = [p for p in payloads if p.metadata.get("encoding") != b"binary/encrypted"]
        assert plain == [], f"{where}: a payload left the worker unencrypted"
        decoded = await codec.decode(payloads)
        plaintext = b"\n".join(p.data for p in decoded)
        assert wf.id.split("-", 1)[1].encode() in plaintext  # really decoded
        search(f"{where}: decoded payloads", plaintext)


async def search_database(live, search: Search, case_ids: list[str]) -> None:
    engine = live.stack.engine
    async with engine.connect() as conn:
        tables = (await conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name"))).scalars().all()
        dumps = {}
        for table in tables:
            rows = (await conn.execute(text(
                f'SELECT row_to_json(t)::text FROM "{table}" t'))).scalars().all()
            dumps[table] = "\n".join(rows)
    for table, dump in dumps.items():
        search(f"table {table}", dump)
    # Positive controls: the rows searched are this run's.
    for case_id in case_ids:
        assert case_id in dumps["events"]
        assert case_id in dumps["audit_log"]
        assert case_id in dumps["person_fields"]  # as a key; the values are ciphertext
    assert "/cases/{case_id}/person/disclosures" in dumps["audit_log"]
    assert case_ids[0] in dumps["rm_cases"] and case_ids[0] in dumps["rm_tasks"]


async def search_api_reads(live, search: Search, case_ids: list[str]) -> None:
    """What users see of the read models and the log of events."""
    stack = live.stack
    reads = [("coord.rs", "/cases"), ("officer.md", "/cases"), ("partner.md", "/tasks"),
             ("officer.md", "/tasks"), ("coord.rs", "/tasks"), ("analyst", "/statistics"),
             ("operator", "/operations/stuck-cases?blocked_for_minutes=0")]
    for case_id in case_ids:
        reads += [("coord.rs", f"/cases/{case_id}"), ("officer.md", f"/cases/{case_id}"),
                  ("operator", f"/cases/{case_id}"),
                  ("coord.rs", f"/cases/{case_id}/timeline"),
                  ("officer.md", f"/cases/{case_id}/timeline"),
                  ("coord.rs", f"/cases/{case_id}/sharing"),
                  ("admin", f"/cases/{case_id}/audit")]
    reads += [("officer.md", f"/cases/{case_ids[0]}/follow-up"), ("partner.ua", "/tasks"),
              ("partner.ua", f"/cases/{case_ids[0]}")]
    for user, path in reads:
        response = await stack.http.get(path, headers=stack.auth(user))
        assert response.status_code == 200, (user, path, response.text)
        search(f"GET {path} as {user}", response.text)
    audit = (await stack.http.get(f"/cases/{case_ids[0]}/audit",
                                  headers=stack.auth("admin"))).json()["entries"]
    assert {"identity.read", "identity.record"} <= {e["action"] for e in audit}


def search_logs(live, search: Search, case_ids: list[str]) -> None:
    logs = live.logs.getvalue()
    captured = live.capfd.readouterr()
    search("log lines of the process", logs)
    search("stdout and stderr (the SDK core's own log lines)", captured.out + captured.err)
    data_dir = live.settings.data_dir.resolve()
    search("Temporal server log", (data_dir / "temporal.log").read_bytes())
    pg_log = data_dir / "postgres" / "log"
    search("PostgreSQL log", pg_log.read_bytes())
    # Positive controls: the worker's, the API's and the access log's lines are there.
    assert "events appended" in logs
    urls = re.findall(r'\\"(?:GET|POST|PUT|DELETE|PATCH) (\S+) HTTP/', logs)
    assert any(u.endswith(f"/cases/{case_ids[0]}/person/disclosures") for u in urls), urls
    assert any(u.startswith(f"/cases/{case_ids[1]}/facts") for u in urls), urls
    assert len(urls) > 50
    search("request URLs in the access log", "\n".join(urls))


async def search_files(live, search: Search, case_ids: list[str]) -> None:
    """At rest: what a stolen disk or backup would show."""
    async with live.stack.engine.connect() as conn:
        await conn.execute(text("CHECKPOINT"))  # the tables' pages written to their files
    data_dir = live.settings.data_dir.resolve()
    temporal = b"".join(path.read_bytes() for path in sorted(data_dir.glob("temporal.db*")))
    search("Temporal SQLite files", temporal)
    assert f"return-{case_ids[0]}".encode() in temporal  # positive control
    seen_case = False
    for path in sorted((data_dir / "postgres").rglob("*")):
        if path.is_file() and not path.is_socket():
            data = path.read_bytes()
            seen_case = seen_case or case_ids[1].encode() in data
            search(f"PostgreSQL file {path.relative_to(data_dir)}", data)
    assert seen_case  # positive control: the case's rows are in the files searched


async def test_no_identity_sent_through_the_api_leaks_anywhere(live_stack):
    stack = live_stack.stack
    returned, withdrawn = Person("A"), Person("B")
    case_ids = list(await asyncio.gather(returned_the_hard_way(stack, returned),
                                         withdrawn_on_the_road(stack, withdrawn)))

    # The journeys really went the hard way (positive controls on what was searched).
    types_a = await events_until(
        stack, case_ids[0], lambda t: "reintegration.needs_assessed" in t, "follow-up")
    for step in ("identity.recorded", "journey.leg_failed", "journey.rebooking_scheduled",
                 "border.hold_started", "border.hold_lifted", "reception.handoff_confirmed",
                 "outcome.returned", "reintegration.started", "case.transfer_requested",
                 "case.transfer_declined"):
        assert step in types_a, step
    assert types_a.count("journey.leg_failed") >= 2
    types_b = await events_until(stack, case_ids[1], lambda t: "outcome.alternative_pathway"
                                 in t, "the case closed after her withdrawal")
    for step in ("sharing.granted", "identity.read", "consent.withdrawn", "sharing.revoked",
                 "safety.safe_place_confirmed"):
        assert step in types_b, step

    # The markers are in the vault, and come back to an authorised reader.
    await assert_vault_holds(stack, returned, case_ids[0])
    await assert_vault_holds(stack, withdrawn, case_ids[1])

    search = Search([returned, withdrawn])
    repeats = await came_back(stack, returned, case_ids[0], search)
    await events_until(stack, repeats[0], lambda t: "case.linked" in t, "the link")
    async with stack.engine.connect() as conn:  # positive control: her digests are there
        indexed = set((await conn.execute(text(
            "SELECT case_id FROM person_blind_index"))).scalars())
    assert {*case_ids, *repeats} <= indexed
    await search_temporal(live_stack, search, case_ids)
    await search_database(live_stack, search, case_ids)
    await search_api_reads(live_stack, search, case_ids)
    search_logs(live_stack, search, case_ids)
    await search_files(live_stack, search, case_ids)
    assert search.leaks == [], "identity found outside the vault:\n" + "\n".join(search.leaks)
    assert len(search.searched) > 50


async def test_a_record_id_that_is_no_vault_record_is_refused(stack):
    """Record ids are opaque references into the person vault; ``rec_`` and 8-64 letters
    or digits is only their shape, and ``rec_AnaPopescu19870319`` has it. A record id
    that names no record of the case's vault is refused (decision 0046), so it never
    reaches the ``documents.issued`` event or the workflow's history."""
    from api_driver import register as register_case
    from api_driver import through_consent as consent_given

    case_id = await register_case(stack)
    await consent_given(stack, case_id)
    task = await open_task(stack, "coord.rs", case_id, "travel_documents", timeout=WAIT)
    smuggled = f"rec_Ana{secrets.token_hex(4)}Popescu19870319"
    answer = await stack.http.post(f"/tasks/{task['task_id']}/complete", json={"result": {
        "kind": "travel_documents", "issued": True, "document_record_id": smuggled}},
        headers=stack.auth("coord.rs"))
    events = await stack.store.read_stream(case_id)
    assert smuggled not in json.dumps([e.payload for e in events])
    assert answer.status_code in (409, 422), answer.text
    assert answer.json()["code"] == "unknown_record"
    assert "Popescu" not in answer.text  # the field is named, the value never echoed
