"""Event catalogue: discriminated union, ownership, schema versions and upcasting."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.catalogue import (
    CATALOGUE,
    WORKFLOW_EVENTS,
    UnknownEventType,
    UnsupportedSchemaVersion,
    WorkflowEvent,
    authors_of,
    may_author,
    owner_of,
    parse_event,
    payload_of,
)
from domain.journey import events as ev
from domain.kernel import AgeCategory, Role
from domain.outside_events import Operations

REFERRAL_V2 = {
    "source": "police_raid",
    "first_placement": "shelter_low_risk",
    "risk_level": "low",
    "age_category": "18_24",
    "witness": False,
    "host_country": "RS",
    "destination_country": "MD",
    "sending_mission": "iom-belgrade",
    "receiving_mission": "iom-chisinau",
    "border_partner": "ngo-border",
}


def test_every_event_type_has_one_owner_and_a_schema_version():
    assert len(CATALOGUE) >= 45
    for type_, cls in CATALOGUE.items():
        assert cls.owner in Role or cls.owner in Operations, type_
        assert cls.schema_version >= 1, type_
        assert "." in type_ and type_ == type_.lower()


def test_ownership_is_exclusive():
    assert may_author(Role.SENDING_MISSION, "consent.recorded")
    assert not may_author(Role.RECEIVING_MISSION, "consent.recorded")
    assert may_author(Role.RECEIVING_MISSION, "minor.best_interest_determined")
    assert not may_author(Role.SENDING_MISSION, "minor.best_interest_determined")
    assert may_author(Role.PARTNER, "border.companion_assigned")
    assert not may_author(Role.PARTNER, "reception.handoff_confirmed")
    assert may_author(Role.SYSTEM, "outcome.returned")
    assert not may_author(Role.SENDING_MISSION, "outcome.returned")
    assert not may_author(Role.SYSTEM, "no.such_event")
    with pytest.raises(UnknownEventType):
        owner_of("no.such_event")
    for role in Role:
        assert sum(may_author(role, t) for t in CATALOGUE) == sum(
            role in authors_of(cls) for cls in WORKFLOW_EVENTS)


def test_the_workflow_author_rule_never_admits_what_the_api_or_vault_writes():
    for type_ in ("sharing.granted", "operator.escalated", "identity.read"):
        assert type_ in CATALOGUE
        assert not any(may_author(role, type_) for role in Role)
    assert owner_of("operator.escalated") is Operations.OPERATOR
    assert owner_of("sharing.granted") is Role.SENDING_MISSION


def test_union_discriminates_on_type_and_round_trips():
    adapter = TypeAdapter(WorkflowEvent)
    event = ev.TaskOpened(task_id=uuid.uuid4(), kind="travel_documents", assignee_org="iom-x1",
                          assignee_role="sending_mission", due_at=datetime(2026, 1, 1, tzinfo=UTC))
    dumped = adapter.dump_python(event, mode="json")
    assert dumped["type"] == "task.opened"
    assert adapter.validate_python(dumped) == event
    assert "type" not in payload_of(event)
    back = parse_event("task.opened", 1, payload_of(event))
    assert back == event


def test_current_payload_parses():
    event = parse_event("case.referral_registered", 2, REFERRAL_V2)
    assert isinstance(event, ev.ReferralRegistered)
    assert event.age_category is AgeCategory.AGE_18_TO_24


def test_referral_v1_is_upcast_renamed_placement_and_unknown_age():
    v1 = {k: v for k, v in REFERRAL_V2.items() if k not in ("first_placement", "age_category")}
    v1["placement"] = "safe_house"
    event = parse_event("case.referral_registered", 1, v1)
    assert isinstance(event, ev.ReferralRegistered)
    assert event.first_placement.value == "safe_house"
    # No age was recorded in v1: unknown, and unknown age is treated as a minor.
    assert event.age_category is AgeCategory.UNKNOWN
    assert v1["placement"] == "safe_house" and "first_placement" not in v1  # input untouched


def test_unsupported_versions_and_unknown_types_are_refused():
    with pytest.raises(UnsupportedSchemaVersion):
        parse_event("case.referral_registered", 3, REFERRAL_V2)
    with pytest.raises(UnsupportedSchemaVersion):
        parse_event("case.referral_registered", 0, REFERRAL_V2)
    with pytest.raises(UnknownEventType):
        parse_event("case.renamed", 1, {})


def test_payloads_refuse_unknown_fields_and_free_text():
    with pytest.raises(ValidationError):
        parse_event("case.referral_registered", 2, {**REFERRAL_V2, "name": "Maria"})
    with pytest.raises(ValidationError):
        parse_event("case.referral_registered", 2, {**REFERRAL_V2, "host_country": "Serbia"})
    with pytest.raises(ValidationError):
        parse_event("case.referral_registered", 2, {**REFERRAL_V2, "host_country": "ZZ"})
    with pytest.raises(ValidationError):
        parse_event("case.referral_registered", 2,
                    {**REFERRAL_V2, "sending_mission": "Maria Popescu"})
    with pytest.raises(ValidationError):
        ev.GuardianAppointed(task_id=uuid.uuid4(), guardian_record_id="Ion Popescu, Chisinau",
                             authority="court")


def test_kosovo_is_accepted_as_xk():
    """XK is the user-assigned code the EU and IOM use for Kosovo (not in ISO 3166-1)."""
    event = parse_event("case.referral_registered", 2, {**REFERRAL_V2, "destination_country": "XK"})
    assert isinstance(event, ev.ReferralRegistered)
    assert event.destination_country == "XK"
    for invalid in ("XX", "KS", "xk", "XKX", "X"):
        with pytest.raises(ValidationError, match="destination_country"):
            parse_event("case.referral_registered", 2,
                        {**REFERRAL_V2, "destination_country": invalid})
