"""The facts access decisions rest on, folded from a case's own events: the receiving
mission is involved from its first task or the handoff code, sharing ends with a
revocation or with her withdrawal of consent however it arrived, reassignments hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from api.access import Action, Relation, authorise, case_facts, relation
from store.accounts import OrgKind, Principal, UserRole
from store.events import Causation, StoredEvent

T = datetime(2026, 11, 1, tzinfo=UTC)
PARTNER = Principal("partner.md", "ngo-md-border", OrgKind.PARTNER_NGO, UserRole.PARTNER_WORKER)
OFFICER = Principal("officer.md", "mission-md", OrgKind.RECEIVING_MISSION,
                    UserRole.RECEIVING_OFFICER)
COORD = Principal("coord.rs", "mission-rs", OrgKind.SENDING_MISSION, UserRole.COORDINATOR)
COORD2 = Principal("coord2.rs", "mission-rs", OrgKind.SENDING_MISSION, UserRole.COORDINATOR)


def stored(version: int, event_type: str, payload: dict) -> StoredEvent:
    return StoredEvent(version, "c-123456", version, uuid.uuid4(), event_type, 1, payload,
                       "mission-rs", "coord.rs", T, T, Causation(), "", "")


REFERRAL = stored(1, "case.referral_registered", {
    "sending_mission": "mission-rs", "receiving_mission": "mission-md",
    "border_partner": "ngo-md-border", "age_category": "12_17"})


def test_an_unknown_case_has_no_facts_and_is_not_found():
    assert case_facts("c-123456", []) is None
    assert authorise(COORD, Action.CASE_VIEW, None).status == 404


def test_the_receiving_mission_sees_the_case_from_its_first_task():
    facts = case_facts("c-123456", [REFERRAL])
    assert facts.minor and relation(OFFICER, facts) is Relation.RECEIVING_NOT_YET
    assert authorise(OFFICER, Action.CASE_VIEW, facts).status == 404
    task = str(uuid.uuid4())
    facts = case_facts("c-123456", [REFERRAL, stored(2, "task.opened", {
        "task_id": task, "kind": "best_interest_determination", "assignee_org": "mission-md"})])
    assert relation(OFFICER, facts) is Relation.RECEIVING
    assert authorise(OFFICER, Action.CASE_VIEW, facts).allowed
    assert authorise(OFFICER, Action.TASK_COMPLETE, facts, task_id=task).allowed
    assert authorise(COORD, Action.TASK_COMPLETE, facts, task_id=task).status == 403


def test_a_withdrawal_recorded_by_the_workflow_alone_ends_sharing():
    granted = stored(2, "sharing.granted", {"org_id": "ngo-md-border",
                                            "consent_record_id": "rec_abcdefgh"})
    facts = case_facts("c-123456", [REFERRAL, granted])
    assert authorise(PARTNER, Action.IDENTITY_READ, facts).allowed
    facts = case_facts("c-123456", [REFERRAL, granted,
                                     stored(3, "consent.withdrawn", {"change": "deferred"})])
    assert facts.consent_withdrawn and not facts.shared_with
    assert not authorise(PARTNER, Action.IDENTITY_READ, facts).allowed


def test_a_task_reassigned_to_a_colleague_is_theirs_alone():
    task = str(uuid.uuid4())
    events = [REFERRAL, stored(2, "task.opened", {
        "task_id": task, "kind": "screening_interview", "assignee_org": "mission-rs"})]
    facts = case_facts("c-123456", events)
    assert authorise(COORD, Action.TASK_COMPLETE, facts, task_id=task).allowed
    events.append(stored(3, "operator.task_reassigned", {"task_id": task,
                                                          "to_user": "coord2.rs"}))
    facts = case_facts("c-123456", events)
    assert authorise(COORD, Action.TASK_COMPLETE, facts, task_id=task).code == (
        "assigned_to_colleague")
    assert authorise(COORD2, Action.TASK_COMPLETE, facts, task_id=task).allowed


def test_a_late_grant_after_a_withdrawal_shares_nothing():
    events = [REFERRAL, stored(2, "consent.withdrawn", {"change": "withdrawn"}),
              stored(3, "sharing.granted", {"org_id": "ngo-md-border",
                                            "consent_record_id": "rec_abcdefgh"})]
    facts = case_facts("c-123456", events)
    assert not facts.shared_with
    assert not authorise(PARTNER, Action.IDENTITY_READ, facts).allowed


WELFARE = Principal("worker.csw", "csw-chisinau", OrgKind.PARTNER_NGO, UserRole.PARTNER_WORKER)


def test_a_minors_guardian_organisation_may_read_her_identity_and_no_one_else():
    appointed = stored(2, "minor.guardian_appointed", {
        "task_id": str(uuid.uuid4()), "guardian_record_id": "rec_abcdefgh",
        "authority": "social_welfare_centre", "guardian_org": "csw-chisinau"})
    facts = case_facts("c-123456", [REFERRAL, appointed])
    assert facts.guardian_org == "csw-chisinau"
    assert relation(WELFARE, facts) is Relation.GUARDIAN
    assert authorise(WELFARE, Action.IDENTITY_READ, facts).allowed
    assert not authorise(WELFARE, Action.CASE_STEER, facts).allowed
    assert not authorise(PARTNER, Action.IDENTITY_READ, facts).allowed

    adult = stored(1, "case.referral_registered", {
        "sending_mission": "mission-rs", "receiving_mission": "mission-md",
        "border_partner": "ngo-md-border", "age_category": "25_34"})
    facts = case_facts("c-123456", [adult, appointed])
    assert relation(WELFARE, facts) is Relation.NONE  # a guardian only for a child
