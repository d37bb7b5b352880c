"""Transfers between organisations in the journey's decider (decision 0068): a request
opens a decision task for the organisation offered the role; its acceptance moves the
role, the role's open tasks and every later task; a decline moves nothing; nothing moves
once she has left."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.journey import decider as c
from domain.journey import events as ev
from domain.journey import messages as msg
from domain.journey.vocabulary import (
    Placement,
    ReferralSource,
    RiskLevel,
    TaskKind,
    TransferDeclineReason,
    TransferReason,
    TransferredRole,
)
from domain.kernel import AgeCategory, Refusal, Role

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
SENDING, RECEIVING, PARTNER = "mission-rs", "mission-md", "ngo-md-border"
NEW = "mission-md-north"


def registered(age: AgeCategory = AgeCategory.AGE_25_TO_34) -> c.JourneyState:
    i = msg.ReturnCaseInput(case_id="case-x", sending_mission=SENDING,
                            receiving_mission=RECEIVING, border_partner=PARTNER,
                            host_country="RS", destination_country="MD",
                            referral_source=ReferralSource.NGO,
                            first_placement=Placement.SAFE_HOUSE, risk_level=RiskLevel.LOW,
                            age_category=age)
    state = c.JourneyState(case_id="case-x")
    return c.fold(state, decided(state, c.RegisterReferral(i)))


def decided(state: c.JourneyState, command: c.Command) -> list[ev.JourneyEvent]:
    decision = c.decide(state, command, c.Context(now=NOW))
    assert not isinstance(decision, Refusal), decision
    return decision


def refusal(state: c.JourneyState, command: c.Command) -> Refusal:
    decision = c.decide(state, command, c.Context(now=NOW))
    assert isinstance(decision, Refusal), decision
    return decision


def offer(to_org: str = NEW, role: TransferredRole = TransferredRole.RECEIVING_MISSION
          ) -> c.RequestTransfer:
    return c.RequestTransfer(uuid.uuid4(), role, to_org, TransferReason.DESTINATION_CHANGED,
                             NOW + timedelta(days=3))


def answer(state: c.JourneyState, task_id: uuid.UUID, org: str, accepted: bool = True,
           ) -> c.CompleteTask:
    result = msg.TransferDecisionResult(
        accepted=accepted,
        decline_reason=None if accepted else TransferDeclineReason.NO_CAPACITY)
    return c.CompleteTask(msg.TaskCompletion(task_id=task_id, organisation_id=org,
                                             actor_id="officer.x", result=result))


def test_a_request_opens_a_decision_task_for_the_organisation_offered_the_role():
    state = registered()
    command = offer()
    requested, opened = decided(state, command)
    assert isinstance(requested, ev.TransferRequested)
    assert (requested.transfer_id, requested.from_org, requested.to_org) == (
        command.task_id, RECEIVING, NEW)
    assert isinstance(opened, ev.TaskOpened)
    assert (opened.kind, opened.assignee_org, opened.assignee_role) == (
        TaskKind.TRANSFER_DECISION, NEW, Role.RECEIVING_MISSION)
    state = c.fold(state, [requested, opened])
    # The same request again writes nothing; another organisation waits for the answer.
    assert decided(state, offer()) == []
    assert refusal(state, offer("mission-md-south")).code == "transfer_pending"
    assert state.organisation_for(Role.RECEIVING_MISSION) == RECEIVING


def test_acceptance_moves_the_role_its_open_tasks_and_later_tasks():
    state = registered(AgeCategory.AGE_12_TO_17)
    # A child's best-interest determination is the receiving mission's, open before.
    best_interest = uuid.uuid4()
    state = c.fold(state, decided(state, c.OpenTask(best_interest,
                                                    TaskKind.BEST_INTEREST_DETERMINATION,
                                                    NOW + timedelta(days=21))))
    assert state.open_tasks[best_interest].assignee_org == RECEIVING
    command = offer()
    state = c.fold(state, decided(state, command))
    # Only the organisation offered the role answers.
    assert "cannot complete" in refusal(state, answer(state, command.task_id, RECEIVING)).reason
    [accepted] = decided(state, answer(state, command.task_id, NEW))
    assert isinstance(accepted, ev.TransferAccepted)
    assert accepted.reassigned_tasks == (best_interest,)
    state = c.fold(state, [accepted])
    assert state.organisation_for(Role.RECEIVING_MISSION) == NEW
    assert state.open_tasks[best_interest].assignee_org == NEW
    assert command.task_id in state.done_tasks and not state.transfers
    assert c.role_of(state, NEW) is Role.RECEIVING_MISSION
    assert c.role_of(state, RECEIVING) is None  # it plays no part any more
    [handoff] = decided(state, c.OpenTask(uuid.uuid4(), TaskKind.RECEPTION_HANDOFF,
                                          NOW + timedelta(hours=12)))
    assert handoff.assignee_org == NEW


def test_a_decline_moves_nothing():
    state = registered()
    command = offer(PARTNER + "-2", TransferredRole.BORDER_PARTNER)
    state = c.fold(state, decided(state, command))
    [declined] = decided(state, answer(state, command.task_id, PARTNER + "-2", accepted=False))
    assert isinstance(declined, ev.TransferDeclined)
    assert declined.reason is TransferDeclineReason.NO_CAPACITY
    state = c.fold(state, [declined])
    assert state.organisation_for(Role.PARTNER) == PARTNER and not state.transfers
    assert not state.holders
    # Answered: a new offer may follow.
    assert decided(state, offer(PARTNER + "-3", TransferredRole.BORDER_PARTNER))


def test_nothing_moves_once_she_has_left_and_parties_are_not_offered_a_role():
    state = registered()
    assert refusal(state, offer(RECEIVING)).code == "already_holder"
    assert refusal(state, offer(SENDING)).code == "already_a_party"
    command = offer()
    pending = c.fold(state, decided(state, command))
    gone = c.evolve(pending, ev.JourneyDeparted(booking_ref="BK-1"))
    assert refusal(gone, offer("mission-md-south")).code == "transfer_pending"
    left = c.evolve(state, ev.JourneyDeparted(booking_ref="BK-1"))
    assert refusal(left, offer()).code == "transfer_too_late"
    # Accepting after departure is refused; declining is still possible.
    assert refusal(gone, answer(gone, command.task_id, NEW)).code == "transfer_too_late"
    assert decided(gone, answer(gone, command.task_id, NEW, accepted=False))


def test_a_decline_reason_comes_with_a_decline_only():
    with pytest.raises(ValidationError):
        msg.TransferDecisionResult(accepted=True,
                                   decline_reason=TransferDeclineReason.OUTSIDE_AREA)
    with pytest.raises(ValidationError):
        msg.TransferDecisionResult(accepted=False)
