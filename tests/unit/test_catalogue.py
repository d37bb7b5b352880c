"""The catalogue is the one vocabulary of events: every type a reader names is in it, every
type in it has an owner, and the readers spell no event type of their own (decision 0047).
A renamed event or a changed minor rule fails here, not silently in a read model or in
access control."""

from __future__ import annotations

import ast
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api import access, timeline
from domain import catalogue, lifecycle
from domain.catalogue import CATALOGUE, authors_of, owner_of, parse_event, payload_of, writer_of
from domain.kernel import AgeCategory, Role, treated_as_minor
from domain.outside_events import (
    Operations,
    OperatorTaskReassigned,
    SharingRevoked,
    Writer,
)
from store import projections, read_models, vault
from store.events import Causation, StoredEvent

ROOT = Path(__file__).resolve().parents[2]
READERS = [read_models, projections, access, timeline, lifecycle]
T = datetime(2026, 11, 1, tzinfo=UTC)
EVENT_TYPE_SHAPE = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")


def test_every_catalogued_type_has_an_owner_a_writer_and_a_schema_version():
    assert len(CATALOGUE) >= 88
    for type_, cls in CATALOGUE.items():
        assert cls.TYPE == type_
        assert owner_of(type_) in (*Role, *Operations), type_
        assert owner_of(type_) in authors_of(cls)
        assert writer_of(type_) in Writer, type_
        assert cls.schema_version >= 1, type_


def test_what_the_api_and_the_vault_write_is_catalogued_with_its_writer():
    for prefix, writer in (("sharing.", Writer.API), ("operator.", Writer.API),
                           ("identity.", Writer.VAULT)):
        types = {t for t in CATALOGUE if t.startswith(prefix)}
        assert types, prefix
        assert {writer_of(t) for t in types} == {writer}
    assert catalogue.IDENTITY_TYPES == {t for t in CATALOGUE if t.startswith("identity.")}
    assert catalogue.API_TYPES == {t for t in CATALOGUE if t.startswith(("sharing.",
                                                                          "operator."))}


@pytest.mark.parametrize("module", READERS, ids=lambda m: m.__name__)
def test_readers_spell_no_event_type_of_their_own(module):
    """Projections, access facts, the timeline and the lifecycle name types by
    ``Model.TYPE`` or the catalogue's sets: a string literal shaped like an event type is
    one the catalogue would not catch when an event is renamed."""
    tree = ast.parse(Path(module.__file__).read_text())
    actions = {a.value for a in access.Action}  # permission names, not event types
    literals = {node.value for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
                and EVENT_TYPE_SHAPE.match(node.value)
                and not node.value.startswith("homeward.")} - actions  # logger names
    assert literals == set()


def test_every_type_a_reader_names_is_catalogued():
    named = (set(read_models._EVENT_STAGE) | read_models._NOT_COMPLETING
             | read_models._BORDER_HOLD_ENDS | read_models.API_EVENT_TYPES
             | access.RECEIVING_TIMELINE_EXCLUDES | access.OPERATIONS_TIMELINE_EXCLUDES
             | set(timeline._SENTENCES) | vault.IDENTITY_EVENT_TYPES
             | {vault.IDENTITY_RECORDED, vault.IDENTITY_READ, vault.IDENTITY_ERASED})
    assert named - set(CATALOGUE) == set()


def test_payloads_the_api_and_the_vault_write_parse_as_their_models():
    for type_, payload in (
        ("sharing.granted", {"org_id": "ngo-md-border", "consent_record_id": "rec_abcdefgh"}),
        ("sharing.revoked", {"org_id": None, "reason": "consent_withdrawn"}),
        ("operator.retry_requested", {"step": "append_events,book_journey"}),
        ("operator.escalated", {"reason": "overdue_tasks"}),
        ("operator.task_reassigned", {"task_id": str(uuid.uuid4()), "kind": "tracing",
                                      "org": "mission-md", "from_user": None,
                                      "to_user": "officer.md", "reason": "overdue"}),
        ("identity.recorded", {"fields": ["names"], "notes": []}),
        ("identity.recorded", {"fields": [], "notes": [{"note_id": str(uuid.uuid4()),
                                                        "kind": "wellbeing_note"}]}),
        ("identity.read", {"purpose": "case_review", "field_groups": ["names", "photos"]}),
        ("identity.erased", {"reason": "retention_expired"}),
    ):
        event = parse_event(type_, 1, payload)
        assert payload_of(event) == payload  # what is stored is what the model says
    assert isinstance(parse_event("sharing.revoked", 1, {"reason": "x"}), SharingRevoked)
    assert OperatorTaskReassigned.TYPE == "operator.task_reassigned"


def test_the_minor_rule_has_one_home():
    """The read model and access control both ask ``treated_as_minor``: no copy of the
    rule (a set of age codes) is left in store/ or api/."""
    assert not hasattr(read_models, "MINOR_AGE_CATEGORIES")
    for path in [*(ROOT / "store").rglob("*.py"), *(ROOT / "api").rglob("*.py")]:
        source = path.read_text()
        assert "MINOR_AGE_CATEGORIES" not in source, path
    referral = {"sending_mission": "mission-rs", "receiving_mission": "mission-md",
                "border_partner": "ngo-md-border"}
    for age in AgeCategory:
        facts = access.case_facts("c-123456", [_stored("case.referral_registered",
                                                       {**referral, "age_category": age})])
        assert facts.minor is treated_as_minor(age), age
    v1 = access.case_facts("c-123456", [_stored("case.referral_registered", referral)])
    assert v1.minor is treated_as_minor(AgeCategory.UNKNOWN)


def test_an_uncatalogued_type_is_skipped_and_counted():
    before = projections.SKIPPED_UNKNOWN[("access", "case.renamed")]
    referral = _stored("case.referral_registered", {
        "sending_mission": "mission-rs", "receiving_mission": "mission-md",
        "border_partner": "ngo-md-border", "age_category": "25_34"})
    renamed = _stored("case.renamed", {"org_id": "ngo-x"})
    facts = access.case_facts("c-123456", [referral, renamed])
    assert facts is not None and not facts.minor
    assert projections.SKIPPED_UNKNOWN[("access", "case.renamed")] == before + 1
    assert not timeline.visible(renamed, access.View.FULL)


def _stored(event_type: str, payload: dict) -> StoredEvent:
    return StoredEvent(1, "c-123456", 1, uuid.uuid4(), event_type, 1, payload, "mission-rs",
                       "coord.rs", T, T, Causation(), "", "")
