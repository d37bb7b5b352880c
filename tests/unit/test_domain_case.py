"""The case state machine: ``decide`` refuses illegal steps with reasons a coordinator
understands; ``evolve`` folds the resulting events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pytest

from domain.journey import decider as c
from domain.journey import events as ev
from domain.journey import messages as msg
from domain.journey.policies import handoff_code_hash
from domain.journey.vocabulary import (
    ChildPresence,
    ConsentChange,
    DecidedBy,
    Determination,
    EscalationReason,
    EscortKind,
    EscortReleaseReason,
    EscortScope,
    LegFailure,
    Outcome,
    Placement,
    ReferralSource,
    RiskLevel,
    RoadFact,
    RouteKind,
    TaskKind,
    TravelAdapter,
)
from domain.kernel import AgeAssessor, AgeCategory, Refusal

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
SENDING, RECEIVING, PARTNER = "iom-belgrade", "iom-chisinau", "ngo-border"


def referral_input(**kw) -> msg.ReturnCaseInput:
    fields = dict(case_id="case-0001", sending_mission=SENDING, receiving_mission=RECEIVING,
                  border_partner=PARTNER, host_country="RS", destination_country="MD",
                  referral_source=ReferralSource.NGO, first_placement=Placement.SAFE_HOUSE,
                  risk_level=RiskLevel.LOW, age_category=AgeCategory.AGE_25_TO_34)
    fields.update(kw)
    return msg.ReturnCaseInput(**fields)


class Timed(NamedTuple):
    """A command decided at a given time (by default, commands are decided at NOW)."""

    command: c.Command
    at: datetime


def fact(name: str, at: datetime = NOW + timedelta(days=2), **kw) -> Timed:
    return Timed(c.RecordFact(RoadFact(name), **kw), at)


def decide(state: c.JourneyState, command: c.Command | Timed) -> c.Decision:
    command, at = command if isinstance(command, Timed) else (command, NOW)
    return c.decide(state, command, c.Context(now=at))


def ok(state: c.JourneyState, command) -> c.JourneyState:
    decision = decide(state, command)
    assert not isinstance(decision, Refusal), decision
    return c.fold(state, decision)


def refused(state: c.JourneyState, command) -> str:
    decision = decide(state, command)
    assert isinstance(decision, Refusal), decision
    return decision.reason


def open_and_complete(state: c.JourneyState, kind: TaskKind, result, org=None) -> c.JourneyState:
    task_id = uuid.uuid4()
    state = ok(state, c.OpenTask(task_id, kind, NOW + timedelta(days=1)))
    org = org or state.open_tasks[task_id].assignee_org
    completion = msg.TaskCompletion(task_id=task_id, organisation_id=org, actor_id="u-1",
                                    result=result)
    return ok(state, c.CompleteTask(completion))


def rec() -> str:
    return f"rec_{uuid.uuid4().hex[:12]}"


def consented(**kw) -> c.JourneyState:
    """Through her consent; a child's guardian is appointed first and decides with her."""
    s = ok(c.JourneyState(case_id="case-0001"), c.RegisterReferral(referral_input(**kw)))
    by, present = DecidedBy.PERSON, None
    if s.minor:
        s = open_and_complete(s, TaskKind.GUARDIAN_APPOINTMENT, msg.GuardianAppointmentResult(
            guardian_record_id=rec(), authority="court"))
        by, present = DecidedBy.CHILD_WITH_GUARDIAN, ChildPresence.GUARDIAN
    s = open_and_complete(s, TaskKind.SCREENING_INTERVIEW, msg.ScreeningResult(
        interview_record_id=rec(), interview_language="ro", interpreter_used=False,
        reads_languages=("ro",), trafficking_status="ActualVictimOfTrafficking",
        child_accompanied_by=present))
    s = open_and_complete(s, TaskKind.OPTIONS_DECISION, msg.OptionsDecisionResult(
        choice="return", counselled_in_language="ro", decided_by=by))
    return open_and_complete(s, TaskKind.INFORMED_CONSENT, msg.ConsentResult(
        consent_form_record_id=rec(), form_language="ro", form_version="2026-1",
        interpreter_used=False, signed_at=NOW, consented_by=by))


def ready_to_book(**kw) -> c.JourneyState:
    s = consented(**kw)
    if s.minor:
        s = open_and_complete(s, TaskKind.BEST_INTEREST_DETERMINATION, msg.BestInterestResult(
            determination=Determination.RETURN_IN_BEST_INTEREST,
            family_assessment_record_id=rec()))
    s = ok(s, c.RequestDocuments(uuid.uuid4()))
    s = open_and_complete(s, TaskKind.TRAVEL_DOCUMENTS,
                          msg.TravelDocumentsResult(issued=True, document_record_id=rec()))
    s = open_and_complete(s, TaskKind.MEDICAL_CLEARANCE,
                          msg.MedicalClearanceResult(fit_to_travel=True, medical_record_id=rec()))
    if s.witness:
        s = open_and_complete(s, TaskKind.PROSECUTOR_NOTICE, msg.ProsecutorNoticeResult(
            notified_at=NOW, testimony="testimony_given"))
    return open_and_complete(s, TaskKind.SECURITY_ASSESSMENT,
                             msg.SecurityAssessmentResult(risk_level=RiskLevel.LOW))


def booking(departure_at=NOW + timedelta(days=2), entry_point="KIV") -> c.RecordBooking:
    return c.RecordBooking(msg.Booking(booking_ref="SIM-AAAA1111", provider=TravelAdapter.SIMULATED,
                                       route=RouteKind.DIRECT, entry_point=entry_point,
                                       departure_at=departure_at))


def test_minor_cannot_be_booked_before_the_best_interest_determination():
    s = consented(age_category=AgeCategory.AGE_12_TO_17)
    assert s.guardian_appointed
    assert refused(s, booking()) == (
        "travel cannot be booked: best-interest determination for a minor is not complete")
    assert "best-interest determination" in refused(s, c.RequestDocuments(uuid.uuid4()))


def test_minor_without_guardian_and_negative_determination_are_refused():
    # Found to be of unknown age after she consented as an adult: no guardian yet.
    s = consented()
    s = ok(s, c.AssessAge(AgeAssessor.POLICE, AgeCategory.UNKNOWN, rec()))
    assert "no legal guardian" in refused(s, booking())
    s = open_and_complete(s, TaskKind.GUARDIAN_APPOINTMENT, msg.GuardianAppointmentResult(
        guardian_record_id=rec(), authority="court"))
    s = open_and_complete(s, TaskKind.BEST_INTEREST_DETERMINATION, msg.BestInterestResult(
        determination=Determination.RETURN_NOT_IN_BEST_INTEREST,
        family_assessment_record_id=rec()))
    assert "not in the child's interest" in refused(s, booking())
    assert ok(s, c.CloseCase(Outcome.RETURN_NOT_IN_BEST_INTEREST)).outcome == (
        "return_not_in_best_interest")


@pytest.mark.parametrize(
    ("missing", "words"),
    [("consent", "informed consent"), ("documents", "travel documents are not issued")],
)
def test_booking_needs_consent_and_documents(missing, words):
    if missing == "consent":
        s = ok(c.JourneyState(case_id="case-0001"), c.RegisterReferral(referral_input()))
    else:
        s = consented()
    assert words in refused(s, booking())


def test_booking_refuses_a_double_booking_and_a_refused_entry_point():
    s = ok(ready_to_book(), booking())
    assert "already booked" in refused(s, booking())
    s = ok(s, fact("departed"))
    s = ok(s, fact("arrived_at_border"))
    s = ok(s, fact("entry_refused"))
    assert s.booking is None and s.refused_entry_points == ("KIV",)
    assert "entry was refused at KIV" in refused(s, booking())
    assert ok(s, booking(entry_point="IAS")).booking.entry_point == "IAS"


def test_witness_departure_waits_for_the_notice_period():
    s = ready_to_book(witness=True)
    assert s.earliest_departure == NOW + timedelta(days=10)
    assert "cannot depart before" in refused(s, booking(departure_at=NOW + timedelta(days=9)))
    s = ok(s, booking(departure_at=NOW + timedelta(days=10)))
    assert "10 days in advance" in refused(s, fact("departed", NOW + timedelta(days=9)))
    assert ok(s, fact("departed", NOW + timedelta(days=10))).departed


def test_rebooking_stops_at_the_limit_until_the_coordinator_resolves():
    s = ready_to_book()
    for attempt in range(1, 4):
        s = ok(s, booking())
        s = ok(s, fact("leg_failed", failure="cancelled_flight", source="provider_feed"))
        assert s.failed_attempts == attempt
        if attempt < 3:
            s = ok(s, c.ScheduleRebooking(NOW))
    assert "escalated to the coordinator" in refused(s, c.ScheduleRebooking(NOW))
    assert "review the escalation" in refused(s, booking())
    s = ok(s, c.EscalateCase(EscalationReason.REBOOKING_LIMIT_REACHED, NOW))
    s = open_and_complete(s, TaskKind.ESCALATION_REVIEW,
                          msg.EscalationReviewResult(resolution="retry"))
    assert s.failed_attempts == 0
    assert ok(s, booking()).booking_attempts == 4


def test_task_completion_refusals():
    s = ok(c.JourneyState(case_id="case-0001"), c.RegisterReferral(referral_input()))
    task_id = uuid.uuid4()
    s = ok(s, c.OpenTask(task_id, TaskKind.SCREENING_INTERVIEW, NOW))
    result = msg.ScreeningResult(interview_record_id=rec(), interview_language="ro",
                                 interpreter_used=False, reads_languages=("ro",),
                                 trafficking_status="PossibleVictimOfTrafficking")

    def complete(**kw):
        fields = dict(task_id=task_id, organisation_id=SENDING, actor_id="u-1", result=result)
        fields.update(kw)
        return c.CompleteTask(msg.TaskCompletion(**fields))

    assert "assigned to iom-belgrade; iom-chisinau cannot" in refused(
        s, complete(organisation_id=RECEIVING))
    assert "no such task" in refused(s, complete(task_id=uuid.uuid4()))
    assert "cannot complete it" in refused(s, complete(
        result=msg.OptionsDecisionResult(choice="return", counselled_in_language="ro")))
    assert "first interview: it needs no repeat reason" in refused(
        s, complete(result=result.model_copy(update={"repeat_reason": "new_information"})))
    done = ok(s, complete())
    assert "already completed" in refused(done, complete())
    # One interview, reused: a second one only with a recorded reason.
    second = uuid.uuid4()
    done = ok(done, c.OpenTask(second, TaskKind.SCREENING_INTERVIEW, NOW))
    assert "needs a recorded reason" in refused(done, complete(task_id=second))
    repeat = result.model_copy(update={"repeat_reason": "new_information"})
    again = ok(done, complete(task_id=second, result=repeat))
    assert again.interviews == 2
    cancelled = ok(s, c.CancelTask(task_id, "consent_withdrawn"))
    assert "was cancelled" in refused(cancelled, complete())


def test_tasks_go_to_the_organisation_of_their_role():
    s = ok(c.JourneyState(case_id="case-0001"), c.RegisterReferral(referral_input()))
    for kind, org in [(TaskKind.BEST_INTEREST_DETERMINATION, RECEIVING),
                      (TaskKind.BORDER_COMPANION, PARTNER),
                      (TaskKind.TRAVEL_DOCUMENTS, SENDING)]:
        [opened] = decide(s, c.OpenTask(uuid.uuid4(), kind, NOW))
        assert opened.assignee_org == org


def test_overdue_escalation_happens_once():
    s = ok(c.JourneyState(case_id="case-0001"), c.RegisterReferral(referral_input()))
    task_id = uuid.uuid4()
    s = ok(s, c.OpenTask(task_id, TaskKind.SCREENING_INTERVIEW, NOW))
    s = ok(s, c.EscalateOverdueTask(task_id))
    assert s.open_tasks[task_id].escalated
    assert "already escalated" in refused(s, c.EscalateOverdueTask(task_id))


def test_consent_withdrawal_stops_everything_but_the_unwinding():
    s = ok(ready_to_book(), booking())
    s = ok(s, c.AssignEscort(uuid.uuid4(), EscortKind.STAFF, EscortScope.TO_HANDOFF))
    s = ok(s, c.WithdrawConsent(ConsentChange.WITHDRAWN))
    assert "nothing moves forward" in refused(s, c.RequestDocuments(uuid.uuid4()))
    # A departure that happened anyway is recorded: she is then brought to a safe place.
    gone = ok(s, fact("departed", NOW + timedelta(days=3)))
    assert gone.on_road
    assert "safe place" in refused(gone, c.CloseCase(Outcome.ALTERNATIVE_PATHWAY))
    assert "must be undone first" in refused(s, c.CloseCase(Outcome.ALTERNATIVE_PATHWAY))
    assert "alternative pathway" in refused(s, c.CloseCase(Outcome.RETURNED))
    s = ok(s, c.CancelBooking())
    [escort] = s.escorts
    s = ok(s, c.ReleaseEscort(escort, EscortReleaseReason.CONSENT_WITHDRAWN))
    s = ok(s, c.CloseCase(Outcome.ALTERNATIVE_PATHWAY))
    assert s.outcome == "alternative_pathway"
    assert "the case is closed" in refused(s, c.RequestDocuments(uuid.uuid4()))


def test_consent_cannot_be_withdrawn_after_the_handoff():
    s = ok(ready_to_book(), booking())
    s = ok(s, c.IssueHandoffCode(handoff_code_hash("case-0001", "ABCDEFGH")))
    s = ok(s, fact("departed"))
    s = ok(s, fact("arrived_at_border"))
    s = ok(s, fact("border_cleared"))
    s = open_and_complete(s, TaskKind.RECEPTION_HANDOFF, msg.ReceptionHandoffResult(
        identification="handoff_code", handoff_code="ABCDEFGH", safe_arrival_confirmed=True))
    assert s.handoff_confirmed and s.safe_arrival
    assert "no longer be withdrawn" in refused(s, c.WithdrawConsent(ConsentChange.WITHDRAWN))
    assert ok(s, c.CloseCase(Outcome.RETURNED)).outcome == "returned"


def test_a_minor_escort_stays_until_the_guardian_handover():
    s = ok(ready_to_book(age_category=AgeCategory.AGE_12_TO_17), booking())
    escort = uuid.uuid4()
    assert "end to end" in refused(
        s, c.AssignEscort(escort, EscortKind.STAFF, EscortScope.TO_HANDOFF))
    s = ok(s, c.AssignEscort(escort, EscortKind.STAFF, EscortScope.END_TO_END))
    assert "stays until the handover" in refused(
        s, c.ReleaseEscort(escort, EscortReleaseReason.HANDOFF_COMPLETE))
    s = ok(s, c.IssueHandoffCode(handoff_code_hash("case-0001", "ABCDEFGH")))
    s = ok(s, fact("departed"))
    s = ok(s, fact("arrived_at_border"))
    s = ok(s, fact("border_cleared"))
    s = open_and_complete(s, TaskKind.RECEPTION_HANDOFF, msg.ReceptionHandoffResult(
        identification="photo_match", safe_arrival_confirmed=True))
    assert "handover to the guardian" in refused(s, c.CloseCase(Outcome.RETURNED))
    s = open_and_complete(s, TaskKind.GUARDIAN_HANDOVER, msg.GuardianHandoverResult(
        handed_to="legal_guardian", guardian_record_id=rec()))
    s = ok(s, c.ReleaseEscort(escort, EscortReleaseReason.GUARDIAN_HANDOVER_COMPLETE))
    assert ok(s, c.CloseCase(Outcome.RETURNED)).outcome == "returned"


def test_border_hold_lifecycle():
    """Held → lifted is waiting at the border again, not across it; holds repeat."""
    s = ok(ok(ok(ready_to_book(), booking()), fact("departed")),
           fact("arrived_at_border"))
    s = ok(s, fact("border_hold_started", NOW + timedelta(days=2, hours=1)))
    assert decide(s, fact("border_hold_started")) == []  # the same hold reported twice
    assert "not expected now" in refused(s, fact("border_cleared"))
    [lifted] = decide(s, fact("border_hold_lifted", NOW + timedelta(days=2, hours=3)))
    assert lifted.held_seconds == 2 * 3600
    s = c.evolve(s, lifted)
    assert not s.border_cleared and not s.hold_on and s.at_border == "KIV"
    s = ok(s, fact("border_hold_started", NOW + timedelta(days=2, hours=5)))
    assert s.holds == 2
    s = ok(ok(s, fact("border_hold_lifted")), fact("border_cleared"))
    assert s.border_cleared


def test_referral_rules():
    s = c.JourneyState(case_id="case-0001")
    assert "no referral" in refused(s, c.RequestDocuments(uuid.uuid4()))
    assert "different organisations" in refused(
        s, c.RegisterReferral(referral_input(receiving_mission=SENDING)))
    s = ok(s, c.RegisterReferral(referral_input()))
    assert "already registered" in refused(s, c.RegisterReferral(referral_input()))
    assert c.role_of(s, SENDING).value == "sending_mission"
    assert c.role_of(s, "homeward").value == "system"
    assert c.role_of(s, "iom-elsewhere") is None


def test_evolve_ignores_nothing_it_should_track():
    s = ok(c.JourneyState(case_id="case-0001"), c.RegisterReferral(referral_input()))
    s = c.evolve(s, ev.CaseEscalated(reason="border_hold_exceeded", since=NOW))
    assert s.escalations == (EscalationReason.BORDER_HOLD_EXCEEDED,)


def test_simulated_disruptions_need_the_simulated_adapter():
    from pydantic import ValidationError

    with pytest.raises(ValidationError,
                       match="simulated_disruptions need the simulated travel adapter"):
        referral_input(travel_adapter="manual", simulated_disruptions=("cancelled_flight",))
    # The manual adapter without disruptions, and the simulated one with them, are fine.
    assert referral_input(travel_adapter="manual").travel_adapter is TravelAdapter.MANUAL
    accepted = referral_input(simulated_disruptions=("cancelled_flight", None))
    assert accepted.travel_adapter is TravelAdapter.SIMULATED
    assert accepted.simulated_disruptions == (LegFailure.CANCELLED_FLIGHT, None)


def test_the_guardians_organisation_is_recorded_with_the_appointment():
    s = consented(age_category=AgeCategory.AGE_12_TO_17)
    task_id = uuid.uuid4()
    s = ok(s, c.OpenTask(task_id, TaskKind.GUARDIAN_APPOINTMENT, NOW + timedelta(days=1)))
    completion = msg.TaskCompletion(
        task_id=task_id, organisation_id=s.open_tasks[task_id].assignee_org, actor_id="u-1",
        result=msg.GuardianAppointmentResult(guardian_record_id=rec(), authority="court",
                                             guardian_org="csw-chisinau"))
    [event] = decide(s, c.CompleteTask(completion))
    assert event.type == "minor.guardian_appointed"
    assert event.guardian_org == "csw-chisinau"


def test_an_event_written_outside_the_workflow_completes_no_task():
    """An operator's reassignment names a task; folding it with the case's events must not
    count the task as done (the coordinator's pre-check would refuse her colleague)."""
    from domain.outside_events import OperatorTaskReassigned

    s = ok(c.JourneyState(case_id="case-0001"), c.RegisterReferral(referral_input()))
    task_id = uuid.uuid4()
    s = ok(s, c.OpenTask(task_id, TaskKind.SCREENING_INTERVIEW, NOW + timedelta(days=1)))
    moved = OperatorTaskReassigned(task_id=task_id, kind="screening_interview", org=SENDING,
                                   to_user="u-2002", reason="colleague_on_leave")
    assert c.evolve(s, moved) == s
    assert task_id in s.open_tasks
