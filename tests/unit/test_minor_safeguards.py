"""A child's guardian comes first: appointed before her options decision and consent, and
taking part in both; her one interview happens with her guardian or a child protection
officer present. Adults decide for themselves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain import catalogue
from domain.journey import decider as c
from domain.journey import events as ev
from domain.journey import messages as msg
from domain.journey.vocabulary import (
    ChildPresence,
    ConsentChange,
    DecidedBy,
    Placement,
    ReferralSource,
    ReturnOption,
    RiskLevel,
    TaskKind,
    TraffickingStatus,
)
from domain.kernel import AgeAssessor, AgeCategory, Refusal

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
CHILD_AGES = [AgeCategory.UNDER_12, AgeCategory.AGE_12_TO_17, AgeCategory.UNKNOWN,
              AgeCategory.DISPUTED]


def registered(age: AgeCategory, *, guardian_takes_part: bool = True) -> c.JourneyState:
    referral = msg.ReturnCaseInput(
        case_id="case-0001", sending_mission="iom-belgrade", receiving_mission="iom-chisinau",
        border_partner="ngo-border", host_country="RS", destination_country="MD",
        referral_source=ReferralSource.NGO, first_placement=Placement.SAFE_HOUSE,
        risk_level=RiskLevel.LOW, age_category=age)
    decision = decide(c.JourneyState(case_id="case-0001"),
                        c.RegisterReferral(referral, guardian_takes_part=guardian_takes_part))
    return c.fold(c.JourneyState(case_id="case-0001"), decision)


def decide(state: c.JourneyState, command: c.Command) -> c.Decision:
    return c.decide(state, command, c.Context(now=NOW))


def complete(state: c.JourneyState,
             result) -> c.Decision | tuple[c.JourneyState, list[ev.JourneyEvent]]:
    """Open a task for the result's kind and complete it: the refusal, or the new state and
    the events recorded."""
    task_id = uuid.uuid4()
    opened = decide(state, c.OpenTask(task_id, TaskKind(result.kind),
                                               NOW + timedelta(days=1)))
    state = c.fold(state, opened)
    completion = msg.TaskCompletion(task_id=task_id, actor_id="u-1", result=result,
                                    organisation_id=state.open_tasks[task_id].assignee_org)
    decision = decide(state, c.CompleteTask(completion))
    if isinstance(decision, Refusal):
        return decision
    return c.fold(state, decision), decision


def done(state: c.JourneyState, result) -> tuple[c.JourneyState, list[ev.JourneyEvent]]:
    outcome = complete(state, result)
    assert not isinstance(outcome, Refusal), outcome
    return outcome


def refusal(state: c.JourneyState, result) -> Refusal:
    outcome = complete(state, result)
    assert isinstance(outcome, Refusal), outcome
    return outcome


def screening(present: ChildPresence | None = None) -> msg.ScreeningResult:
    return msg.ScreeningResult(interview_record_id="rec_00000001", interview_language="ro",
                               interpreter_used=False, reads_languages=("ro",),
                               trafficking_status=TraffickingStatus.ACTUAL,
                               child_accompanied_by=present)


def options(by: DecidedBy = DecidedBy.PERSON) -> msg.OptionsDecisionResult:
    return msg.OptionsDecisionResult(choice=ReturnOption.RETURN, counselled_in_language="ro",
                                     decided_by=by)


def consent(by: DecidedBy = DecidedBy.PERSON) -> msg.ConsentResult:
    return msg.ConsentResult(consent_form_record_id="rec_00000002", form_language="ro",
                             form_version="2026-1", interpreter_used=False, signed_at=NOW,
                             consented_by=by)


GUARDIAN = msg.GuardianAppointmentResult(guardian_record_id="rec_00000003", authority="court")


@pytest.mark.parametrize("age", CHILD_AGES)
def test_a_child_is_never_interviewed_alone(age):
    s = registered(age)
    assert refusal(s, screening()).code == "child_unaccompanied"
    # Before a guardian exists, "her guardian was there" cannot be true.
    assert refusal(s, screening(ChildPresence.GUARDIAN)).code == "guardian_not_appointed"
    _, [recorded] = done(s, screening(ChildPresence.CHILD_PROTECTION_OFFICER))
    assert recorded.child_accompanied_by is ChildPresence.CHILD_PROTECTION_OFFICER
    with_guardian, _ = done(s, GUARDIAN)
    _, [recorded] = done(with_guardian, screening(ChildPresence.GUARDIAN))
    assert recorded.child_accompanied_by is ChildPresence.GUARDIAN


@pytest.mark.parametrize("age", CHILD_AGES)
def test_a_child_decides_and_consents_only_with_her_appointed_guardian(age):
    s, _ = done(registered(age), screening(ChildPresence.CHILD_PROTECTION_OFFICER))
    for result in (options(DecidedBy.CHILD_WITH_GUARDIAN), consent(DecidedBy.CHILD_WITH_GUARDIAN)):
        assert refusal(s, result).code == "guardian_not_appointed"
    s, _ = done(s, GUARDIAN)
    assert refusal(s, options(DecidedBy.PERSON)).code == "guardian_must_take_part"
    s, [decided] = done(s, options(DecidedBy.CHILD_WITH_GUARDIAN))
    assert decided.decided_by is DecidedBy.CHILD_WITH_GUARDIAN
    assert refusal(s, consent(DecidedBy.PERSON)).code == "guardian_must_take_part"
    s, [consented] = done(s, consent(DecidedBy.CHILD_WITH_GUARDIAN))
    assert consented.consented_by is DecidedBy.CHILD_WITH_GUARDIAN
    assert s.consent_given


def test_an_adult_decides_and_consents_herself():
    s, [interview] = done(registered(AgeCategory.AGE_18_TO_24), screening())
    assert interview.child_accompanied_by is None
    assert refusal(s, options(DecidedBy.CHILD_WITH_GUARDIAN)).code == "adult_decides_herself"
    s, [decided] = done(s, options())
    assert decided.decided_by is DecidedBy.PERSON
    assert refusal(s, consent(DecidedBy.CHILD_WITH_GUARDIAN)).code == "adult_decides_herself"
    _, [consented] = done(s, consent())
    assert consented.consented_by is DecidedBy.PERSON


def test_found_to_be_a_child_before_her_decision_she_waits_for_a_guardian():
    s, _ = done(registered(AgeCategory.AGE_18_TO_24), screening())
    s = c.fold(s, decide(s, c.AssessAge(AgeAssessor.MEDICAL_ASSESSMENT,
                                                    AgeCategory.AGE_12_TO_17, "rec_00000004")))
    assert refusal(s, options()).code == "guardian_not_appointed"
    s, _ = done(s, GUARDIAN)
    done(s, options(DecidedBy.CHILD_WITH_GUARDIAN))


def test_her_withdrawal_needs_no_guardian():
    """Stopping is always hers: a child withdraws without waiting for anyone."""
    s, _ = done(registered(AgeCategory.AGE_12_TO_17),
                screening(ChildPresence.CHILD_PROTECTION_OFFICER))
    [withdrawn] = decide(s, c.WithdrawConsent(ConsentChange.WITHDRAWN, "rec_00000005"))
    assert withdrawn.type == "consent.withdrawn"


def test_a_case_registered_before_the_rule_keeps_its_order():
    """Runs started before the guardian came first consented before the appointment; their
    histories replay, so the rule applies to cases registered under it."""
    s = registered(AgeCategory.AGE_12_TO_17, guardian_takes_part=False)
    s, _ = done(s, screening())
    s, _ = done(s, options())
    s, _ = done(s, consent())
    assert s.consent_given and not s.guardian_appointed


def test_the_rule_a_case_runs_under_is_recorded_with_its_referral():
    assert registered(AgeCategory.UNDER_12).referral.guardian_takes_part
    old_payload = registered(AgeCategory.UNDER_12).referral.model_dump(
        mode="json", exclude={"guardian_takes_part"})
    parsed = catalogue.parse_event("case.referral_registered", 2, old_payload)
    assert parsed.guardian_takes_part is False  # stored before the rule: the old order
