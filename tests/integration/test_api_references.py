"""The one check of the ids a request names (decision 0046), below the HTTP layer: which
fields it finds by their type, that every route whose body names one calls it, and the
vault's lookup it rests on (a record of this case only, in the exact form handed out)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import MagicMock

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.references import Reference, RefKind, reference_fields, references
from api.routes import cases
from api.routes.tasks import CompletionIn
from domain.kernel import OrganisationId, RecordId
from store.event_store import EventStore
from store.keys import Key, Keyring
from store.vault import NoteKind, PersonRecord, PersonVault, note_id_of, record_id_of

# Every route whose body names a record or organisation id, and where it is checked.
# A new route (or a new id in a body) fails the test below until it is added here, with
# a call of api.references.check_references and an e2e test (test_api_record_ids.py).
CHECKED = {
    ("POST", "/tasks/{task_id}/complete"): "check_references",
    ("POST", "/cases/{case_id}/consent"): "check_references",
    ("POST", "/cases/{case_id}/consent-withdrawal"): "check_references",
    ("POST", "/cases/{case_id}/age-assessment"): "check_references",
    ("POST", "/cases/{case_id}/sharing"): "check_references (after the kind of org_id)",
    ("POST", "/cases"): "register_referral checks the missions' kinds; no record ids",
    ("POST", "/cases/{case_id}/follow-up/risks"): "check_references",
    ("POST", "/cases/{case_id}/follow-up/opt-outs"): "check_references",
    ("POST", "/cases/{case_id}/follow-up/plan"): "check_references (provider_org)",
    ("POST", "/cases/{case_id}/follow-up/reopening"): "check_references",
    ("POST", "/cases/{case_id}/transfers"): "TransferService.request checks to_org's kind "
                                            "(422 unknown_organisation, unsuitable_organisation)",
}


def _routes_naming_ids() -> dict[tuple[str, str], set[RefKind]]:
    """Every operation of the whole app (its OpenAPI description, so a router added later
    is included) whose request body holds a record or organisation id anywhere."""
    services = MagicMock()
    services.codec_cors_origins = []
    spec = create_app(services).openapi()
    patterns = {kind: constraints[0].pattern
                for kind, constraints in ((RefKind.RECORD, RecordId.__metadata__),
                                          (RefKind.ORGANISATION, OrganisationId.__metadata__))}
    found: dict[tuple[str, str], set[RefKind]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {})
            kinds = {kind for kind, pattern in patterns.items()
                     if pattern in _patterns(body, spec, set())}
            if kinds:
                found[(method.upper(), path)] = kinds
    return found


def _patterns(node: Any, spec: dict[str, Any], seen: set[str]) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_patterns(item, spec, seen) for item in node))
    if not isinstance(node, dict):
        return set()
    found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
    ref = node.get("$ref")
    if isinstance(ref, str) and ref not in seen:
        seen.add(ref)
        target: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        found |= _patterns(target, spec, seen)
    for key, value in node.items():
        if key != "$ref":
            found |= _patterns(value, spec, seen)
    return found


def test_every_route_whose_body_names_a_record_or_organisation_checks_it():
    routes = _routes_naming_ids()
    assert set(routes) == set(CHECKED)
    assert routes[("POST", "/tasks/{task_id}/complete")] == set(RefKind)
    assert routes[("POST", "/cases/{case_id}/consent")] == {RefKind.RECORD}


def test_the_fields_are_found_by_their_type_in_every_result_kind():
    fields = reference_fields(CompletionIn)
    assert fields["result.document_record_id"] is RefKind.RECORD
    assert fields["result.assessment_record_id"] is RefKind.RECORD  # follow-up results too
    assert fields["result.guardian_org"] is RefKind.ORGANISATION
    assert fields["result.lines.provider_org"] is RefKind.ORGANISATION  # inside a plan line
    assert "result.kind" not in fields and "result.needs" not in fields
    assert reference_fields(cases.ConsentIn) == {
        "consent_form_record_id": RefKind.RECORD, "interpreter_record_id": RefKind.RECORD}


def test_references_names_each_id_with_where_it_is():
    line = {"line_id": str(uuid.uuid4()), "service": "medical", "provider_org": "ngo-x",
            "due_at": (datetime.now(UTC) + timedelta(days=9)).isoformat()}
    body = CompletionIn.model_validate({"result": {
        "kind": "reintegration_plan", "lines": [line, {**line, "line_id": str(uuid.uuid4()),
                                                       "provider_org": "ngo-y"}],
        "plan_record_id": "rec_abcdefgh"}})
    assert references(body) == [
        Reference("result.lines.0.provider_org", RefKind.ORGANISATION, "ngo-x"),
        Reference("result.lines.1.provider_org", RefKind.ORGANISATION, "ngo-y"),
        Reference("result.plan_record_id", RefKind.RECORD, "rec_abcdefgh")]
    unset = CompletionIn.model_validate({"result": {"kind": "travel_documents",
                                                    "issued": False,
                                                    "refusal_reason": "photos_rejected"}})
    assert references(unset) == []  # an optional record id not given is not looked up


def test_a_record_id_is_the_exact_form_the_vault_hands_out():
    note_id = uuid.uuid4()
    assert note_id_of(record_id_of(note_id)) == note_id
    assert note_id_of(f"rec_{note_id.hex.upper()}") is None  # the same bits, another text
    assert note_id_of(f"rec_{note_id.hex}0") is None
    assert note_id_of("rec_AnaPopescu19870319") is None
    assert note_id_of(note_id.hex) is None


@pytest.fixture
def vault(engine: AsyncEngine) -> PersonVault:
    return PersonVault(engine, Keyring(Key(b"k" * 32)), EventStore(engine))


async def test_existing_records_are_this_cases_notes_only(vault: PersonVault):
    mine = record_id_of(await vault.add_note("case-aaaaaa", NoteKind.ASSESSMENT_NOTE,
                                             "signed form", by_org="o-1", by_actor="u-1"))
    theirs = record_id_of(await vault.add_note("case-bbbbbb", NoteKind.ASSESSMENT_NOTE,
                                               "another file", by_org="o-1", by_actor="u-1"))
    made_up = "rec_AnaPopescu19870319"
    never = record_id_of(uuid.uuid4())
    asked = {mine, theirs, made_up, never, mine.upper().replace("REC_", "rec_")}
    assert await vault.existing_records("case-aaaaaa", asked) == {mine}
    assert await vault.existing_records("case-bbbbbb", asked) == {theirs}
    assert await vault.existing_records("case-cccccc", asked) == frozenset()
    assert await vault.existing_records("case-aaaaaa", [made_up]) == frozenset()  # no query


async def test_an_erased_cases_records_exist_no_more(vault: PersonVault):
    await vault.record("case-dddddd", PersonRecord(nationality="MD"), by_org="o-1",
                       by_actor="u-1")
    note = record_id_of(await vault.add_note("case-dddddd", NoteKind.WELLBEING_NOTE, "calm",
                                             by_org="o-1", by_actor="u-1"))
    assert await vault.existing_records("case-dddddd", [note]) == {note}

    async def closed(case_id: str) -> bool:
        return False

    await vault.erase("case-dddddd", "person_request", by_org="o-1", by_actor="u-1",
                      is_case_active=closed)
    assert await vault.existing_records("case-dddddd", [note]) == frozenset()
