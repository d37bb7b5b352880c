"""The return journey end to end on the time-skipping server, against a real event store.

Each scenario asserts the outcome and the exact sequence of event types in the store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from case_driver import (
    BOOKED,
    CHILD_REFERRAL_TO_CONSENT,
    DOCUMENTS_AND_CLEARANCES,
    PARTNER,
    RECEIVING,
    RECEPTION,
    REFERRAL_TO_CONSENT,
    SENDING,
    TRAVEL_TO_BORDER,
    CaseDriver,
    advance,
    case_input,
    consent,
    decision,
    documents_issued,
    rec,
    record_history,
    screening,
)
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from domain.journey import messages as msg
from domain.journey.config import JourneyConfig
from domain.journey.vocabulary import (
    ChildPresence,
    DecidedBy,
    Determination,
    EscalationResolution,
    LegFailure,
    RiskLevel,
    TaskKind,
    TraffickingStatus,
)
from domain.kernel import AgeCategory
from workflows import ReturnCaseWorkflow


async def start(workflow_env, task_queue, store, **overrides) -> CaseDriver:
    return await CaseDriver.start(workflow_env.client, task_queue, store, case_input(**overrides))


async def test_adult_happy_path_to_reception(workflow_env, worker, task_queue, store, travel):
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    await case.stage("reception")
    await case.reception()

    result = await case.result()
    assert result.outcome == "returned"
    assert await case.event_types() == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *BOOKED, *TRAVEL_TO_BORDER,
        "border.cleared", *RECEPTION, "escort.released", "outcome.returned",
    ]
    await record_history(case, "adult_happy_path")
    assert result.events_appended == len(await case.events())
    events = await case.events()
    # Each part of the file is written by the organisation that owns it.
    authors = {e.event_type: e.author_org for e in events}
    assert authors["case.referral_registered"] == SENDING
    assert authors["reception.handoff_confirmed"] == RECEIVING
    assert authors["task.opened"] == "homeward"
    # Only the hash of the handoff code is ever written.
    code_hash = next(e for e in events if e.event_type == "reception.handoff_code_issued")
    assert set(code_hash.payload) == {"code_hash"}


# --- minors ---------------------------------------------------------------------------


async def test_minor_with_negative_best_interest_determination_is_never_booked(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store, age_category=AgeCategory.AGE_12_TO_17)
    await case.through_consent(datetime.now(UTC))
    await case.minor_safeguards(Determination.RETURN_NOT_IN_BEST_INTEREST)

    result = await case.result()
    assert result.outcome == "return_not_in_best_interest"
    await record_history(case, "minor_negative_determination")
    types = await case.event_types()
    assert types == [
        *CHILD_REFERRAL_TO_CONSENT,
        "task.opened", "minor.best_interest_determined",
        "outcome.return_not_in_best_interest",
    ]
    assert not any(t.startswith(("journey.", "documents.", "escort.")) for t in types)
    opened = {e.payload["kind"]: e.payload for e in await case.events()
              if e.event_type == "task.opened"}
    assert opened["guardian_appointment"]["assignee_org"] == SENDING
    # The family / home assessment is done by the receiving side.
    assert opened["best_interest_determination"]["assignee_org"] == RECEIVING


async def test_a_childs_guardian_comes_before_her_decisions_and_consents_with_her(
    workflow_env, worker, task_queue, store
):
    """Interviewed first with a child protection officer present; her options decision
    waits for the guardian, who decides and consents with her (recorded)."""
    case = await start(workflow_env, task_queue, store, age_category=AgeCategory.AGE_12_TO_17)
    view = await case.until(lambda v: {t.kind for t in v.open_tasks} == {
        TaskKind.GUARDIAN_APPOINTMENT, TaskKind.SCREENING_INTERVIEW}, "guardian and interview")
    assert view.stage == "screening"
    with pytest.raises(WorkflowUpdateFailedError, match="interviewed only with her guardian"):
        await case.complete(TaskKind.SCREENING_INTERVIEW, screening())
    with pytest.raises(WorkflowUpdateFailedError, match="no guardian is appointed yet"):
        await case.complete(TaskKind.SCREENING_INTERVIEW,
                            screening(child_accompanied_by=ChildPresence.GUARDIAN))
    await case.complete(TaskKind.SCREENING_INTERVIEW,
                        screening(child_accompanied_by=ChildPresence.CHILD_PROTECTION_OFFICER))

    view = await case.stage("minor_safeguards")
    assert view.blocked_on == "task:guardian_appointment"
    assert [t.kind for t in view.open_tasks] == [TaskKind.GUARDIAN_APPOINTMENT]  # no options
    await case.appoint_guardian()
    with pytest.raises(WorkflowUpdateFailedError, match="together with her legal guardian"):
        await case.complete(TaskKind.OPTIONS_DECISION, decision())
    await case.complete(TaskKind.OPTIONS_DECISION,
                        decision(decided_by=DecidedBy.CHILD_WITH_GUARDIAN))
    with pytest.raises(WorkflowUpdateFailedError, match="together with her legal guardian"):
        await case.complete(TaskKind.INFORMED_CONSENT, consent(datetime.now(UTC)))
    await case.complete(TaskKind.INFORMED_CONSENT,
                        consent(datetime.now(UTC), consented_by=DecidedBy.CHILD_WITH_GUARDIAN))
    await case.task(TaskKind.BEST_INTEREST_DETERMINATION)
    await record_history(case, "child_interviewed_before_her_guardian")

    events = await case.events()
    assert [e.event_type for e in events] == [
        "case.referral_registered", "task.opened", "task.opened",
        "screening.interview_recorded", "minor.guardian_appointed",
        "task.opened", "options.decision_recorded", "task.opened", "consent.recorded",
        "task.opened",  # the best-interest determination, before any document or booking
    ]
    by_type = {e.event_type: e.payload for e in events}
    assert by_type["screening.interview_recorded"]["child_accompanied_by"] == (
        "child_protection_officer")
    assert by_type["options.decision_recorded"]["decided_by"] == "child_with_guardian"
    assert by_type["consent.recorded"]["consented_by"] == "child_with_guardian"
    await case.terminate()


@pytest.mark.parametrize("age", [AgeCategory.UNKNOWN, AgeCategory.DISPUTED])
async def test_unknown_or_disputed_age_is_treated_as_a_minor(
    workflow_env, worker, task_queue, store, age
):
    case = await start(workflow_env, task_queue, store, age_category=age)
    await case.task(TaskKind.GUARDIAN_APPOINTMENT)  # opened with her interview
    await case.complete(TaskKind.SCREENING_INTERVIEW,
                        screening(child_accompanied_by=ChildPresence.CHILD_PROTECTION_OFFICER))
    view = await case.stage("minor_safeguards")
    assert view.blocked_on == "task:guardian_appointment"
    assert [t.kind for t in view.open_tasks] == [TaskKind.GUARDIAN_APPOINTMENT]
    assert (await case.search_attributes())["HomewardMinor"] is True
    await case.terminate()


async def test_found_to_be_a_child_before_her_decision_her_guardian_is_appointed_first(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await case.complete(TaskKind.SCREENING_INTERVIEW, screening())
    await case.task(TaskKind.OPTIONS_DECISION)
    assessed = await case.assess_age(AgeCategory.AGE_12_TO_17)
    assert assessed.minor and assessed.event_types == ("case.age_assessed", "task.opened")
    with pytest.raises(WorkflowUpdateFailedError, match="no guardian is appointed yet"):
        await case.complete(TaskKind.OPTIONS_DECISION,
                            decision(decided_by=DecidedBy.CHILD_WITH_GUARDIAN))
    await case.appoint_guardian()
    await case.complete(TaskKind.OPTIONS_DECISION,
                        decision(decided_by=DecidedBy.CHILD_WITH_GUARDIAN))
    await case.complete(TaskKind.INFORMED_CONSENT,
                        consent(datetime.now(UTC), consented_by=DecidedBy.CHILD_WITH_GUARDIAN))
    await case.task(TaskKind.BEST_INTEREST_DETERMINATION)
    assert [t for t in await case.event_types()
            if t.startswith("minor.")] == ["minor.guardian_appointed"]  # one guardian
    await case.terminate()


async def test_a_child_not_identified_as_a_victim_closes_with_nothing_left_open(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store, age_category=AgeCategory.UNDER_12)
    await case.complete(TaskKind.SCREENING_INTERVIEW, screening(
        child_accompanied_by=ChildPresence.CHILD_PROTECTION_OFFICER,
        trafficking_status=TraffickingStatus.NOT_A_VICTIM))
    result = await case.result()
    assert result.outcome == "not_identified_as_victim"
    events = await case.events()
    assert [e.event_type for e in events] == [
        "case.referral_registered", "task.opened", "task.opened",
        "screening.interview_recorded", "task.cancelled", "outcome.not_identified_as_victim"]
    cancelled = next(e for e in events if e.event_type == "task.cancelled")
    assert (cancelled.payload["kind"], cancelled.payload["reason"]) == (
        "guardian_appointment", "case_closed")
    assert (await case.status()).open_tasks == ()


async def test_minor_with_positive_determination_escorted_end_to_end_to_the_guardian(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store, age_category=AgeCategory.UNDER_12,
                       risk_level=RiskLevel.HIGH)
    await case.through_consent(datetime.now(UTC))
    await case.minor_safeguards(Determination.RETURN_IN_BEST_INTEREST)
    await case.documents_and_clearances(risk=RiskLevel.HIGH)
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    await case.reception()
    await case.stage("guardian_handover")
    await case.guardian_handover()

    result = await case.result()
    await record_history(case, "minor_escorted_to_guardian")
    assert result.outcome == "returned"
    assert await case.event_types() == [
        *CHILD_REFERRAL_TO_CONSENT,
        "task.opened", "minor.best_interest_determined",
        *DOCUMENTS_AND_CLEARANCES,
        "journey.booked", "escort.assigned", "escort.assigned",  # staff end to end + police
        "reception.handoff_code_issued",
        *TRAVEL_TO_BORDER, "border.cleared", *RECEPTION,
        "escort.released",  # the police escort, at the handoff
        "task.opened", "minor.handed_over_to_guardian",
        "escort.released",  # the staff escort, only after the handover to the family
        "outcome.returned",
    ]
    events = await case.events()
    assigned = {e.payload["escort_id"]: e.payload for e in events
                if e.event_type == "escort.assigned"}
    released = [e.payload for e in events if e.event_type == "escort.released"]
    staff = next(k for k, p in assigned.items() if p["kind"] == "staff")
    police = next(k for k, p in assigned.items() if p["kind"] == "police")
    assert assigned[staff]["scope"] == "end_to_end"
    assert released == [
        {"escort_id": police, "reason": "handoff_complete"},
        {"escort_id": staff, "reason": "guardian_handover_complete"},
    ]


# --- consent withdrawn ----------------------------------------------------------------


async def test_consent_withdrawn_after_booking_unwinds_everything(
    workflow_env, worker, task_queue, store, travel
):
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.stage("awaiting_departure")

    withdrawn = await case.withdraw()
    assert (withdrawn.path, withdrawn.duplicate) == ("unwind", False)
    result = await case.result()
    await record_history(case, "consent_withdrawn_after_booking")
    # The case is closed: a departure reported now is refused, not queued for later.
    with pytest.raises(RPCError, match="not found"):
        await case.fact("departed")

    assert result.outcome == "alternative_pathway"
    types = await case.event_types()
    assert types == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *BOOKED,
        "consent.withdrawn", "journey.booking_cancelled", "escort.released",
        "outcome.alternative_pathway",
    ]
    booking = next(e for e in await case.events() if e.event_type == "journey.booked")
    assert travel.is_cancelled(booking.payload["booking_ref"])
    released = next(e for e in await case.events() if e.event_type == "escort.released")
    assert released.payload["reason"] == "consent_withdrawn"


async def test_consent_deferred_while_documents_pending_withdraws_the_request(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.task(TaskKind.TRAVEL_DOCUMENTS)
    await case.withdraw(change="deferred")
    result = await case.result()

    assert result.outcome == "alternative_pathway"
    assert await case.event_types() == [
        *REFERRAL_TO_CONSENT, "documents.requested", "task.opened",
        "consent.withdrawn", "documents.request_withdrawn", "task.cancelled",
        "outcome.alternative_pathway",
    ]
    outcome = (await case.events())[-1]
    assert outcome.payload == {"change": "deferred"}
    await record_history(case, "consent_deferred")


async def test_a_withdrawal_relayed_by_the_receiving_mission_is_hers_and_recorded(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await case.task(TaskKind.SCREENING_INTERVIEW)
    recorded = await case.withdraw(org=RECEIVING)
    assert recorded.path == "unwind"
    assert (await case.result()).outcome == "alternative_pathway"
    withdrawn = next(e for e in await case.events() if e.event_type == "consent.withdrawn")
    assert withdrawn.author_org == RECEIVING
    assert withdrawn.payload["relayed_by"] == "receiving_mission"
    # Nobody outside the case can withdraw for her.
    other = await start(workflow_env, task_queue, store)
    await other.task(TaskKind.SCREENING_INTERVIEW)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await other.withdraw(org=PARTNER)
    assert refused.value.cause.details[0] == "not_your_fact"
    await other.terminate()


# --- non-return options: every choice ends in its own outcome -------------------------


@pytest.mark.parametrize(
    ("choice", "extra", "outcome"),
    [
        ("reflection_period", {"reflection_days": 28}, "reflection_period"),
        ("temporary_residence", {}, "temporary_residence"),
        ("resettlement_referral", {}, "resettlement_referral"),
        ("stay_in_shelter", {}, "staying_in_shelter"),
        ("decline_assistance", {}, "assistance_declined"),
        ("return_by_other_means", {}, "returned_by_other_means"),
    ],
)
async def test_every_non_return_choice_ends_with_its_own_outcome(
    workflow_env, worker, task_queue, store, choice, extra, outcome
):
    from case_driver import decision, screening

    case = await start(workflow_env, task_queue, store)
    await case.complete(TaskKind.SCREENING_INTERVIEW, screening())
    await case.complete(TaskKind.OPTIONS_DECISION, decision(choice, **extra))
    result = await case.result()
    assert result.outcome == outcome
    assert await case.event_types() == [
        "case.referral_registered", "task.opened", "screening.interview_recorded",
        "task.opened", "options.decision_recorded", f"outcome.{outcome}",
    ]
    await record_history(case, f"outcome_{outcome}")


async def test_reflection_period_shorter_than_the_host_country_minimum_is_refused(
    workflow_env, worker, task_queue, store
):
    from case_driver import decision, screening

    case = await start(workflow_env, task_queue, store)  # host RS: 4 weeks minimum
    await case.complete(TaskKind.SCREENING_INTERVIEW, screening())
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.complete(TaskKind.OPTIONS_DECISION,
                            decision("reflection_period", reflection_days=14))
    assert "at least 28 days" in str(refused.value.cause)
    await case.terminate()


# --- flights fail -----------------------------------------------------------------------


async def test_flight_cancelled_twice_then_the_third_booking_flies(
    workflow_env, worker, task_queue, store
):
    cancelled = LegFailure.CANCELLED_FLIGHT
    case = await start(workflow_env, task_queue, store,
                       simulated_disruptions=(cancelled, cancelled))
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await advance(workflow_env, case,
                  lambda v: v.booking_attempts == 3 and v.stage == "awaiting_departure",
                  "the third booking")
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    await case.reception()
    result = await case.result()

    assert result.outcome == "returned"
    types = await case.event_types()
    await record_history(case, "flight_cancelled_twice")
    assert types == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *BOOKED,
        "journey.leg_failed", "journey.rebooking_scheduled", "journey.booked",
        "journey.leg_failed", "journey.rebooking_scheduled", "journey.booked",
        *TRAVEL_TO_BORDER, "border.cleared", *RECEPTION, "escort.released", "outcome.returned",
    ]
    assert types.count("documents.requested") == 1  # documents kept through rebooking
    events = await case.events()
    attempts = [e.payload["attempt"] for e in events if e.event_type == "journey.booked"]
    assert attempts == [1, 2, 3]
    # Backoff doubles: 2 h after the first failure, 4 h after the second.
    failed = [e for e in events if e.event_type == "journey.leg_failed"]
    scheduled = [e for e in events if e.event_type == "journey.rebooking_scheduled"]
    delays = [datetime.fromisoformat(s.payload["not_before"]) - s.occurred_at for s in scheduled]
    assert len(failed) == 2
    assert delays == [timedelta(hours=2), timedelta(hours=4)]
    assert {f.payload["source"] for f in failed} == {"provider_feed"}


@pytest.mark.parametrize("resolution", [EscalationResolution.RETRY,
                                        EscalationResolution.STOP_RETURN])
async def test_flights_failing_beyond_the_limit_escalate_to_the_coordinator(
    workflow_env, worker, task_queue, store, travel, resolution
):
    failures = (LegFailure.CANCELLED_FLIGHT, LegFailure.DENIED_BOARDING,
                LegFailure.MISSED_CONNECTION)
    case = await start(workflow_env, task_queue, store, simulated_disruptions=failures)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    view = await advance(workflow_env, case,
                         lambda v: v.blocked_on == "escalation:rebooking_limit_reached",
                         "the escalation")
    assert [t.kind for t in view.open_tasks] == [TaskKind.ESCALATION_REVIEW]
    assert view.booking_attempts == 3
    await case.complete(TaskKind.ESCALATION_REVIEW,
                        msg.EscalationReviewResult(resolution=resolution))
    failing = [
        *BOOKED,
        "journey.leg_failed", "journey.rebooking_scheduled", "journey.booked",
        "journey.leg_failed", "journey.rebooking_scheduled", "journey.booked",
        "journey.leg_failed", "case.escalated", "task.opened", "case.escalation_resolved",
    ]
    if resolution is EscalationResolution.STOP_RETURN:
        result = await case.result()
        await record_history(case, "rebooking_limit_stopped")
        assert result.outcome == "return_stopped"
        assert await case.event_types() == [
            *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *failing,
            "escort.released", "outcome.return_stopped",
        ]
        return
    await advance(workflow_env, case,
                  lambda v: v.booking_attempts == 4 and v.stage == "awaiting_departure",
                  "the fourth booking")
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    await case.reception()
    result = await case.result()
    assert result.outcome == "returned"
    assert await case.event_types() == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *failing, "journey.booked",
        *TRAVEL_TO_BORDER, "border.cleared", *RECEPTION, "escort.released", "outcome.returned",
    ]


async def test_missed_connection_reported_in_transit_rebooks(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.stage("awaiting_departure")
    await case.fact("departed")
    await workflow_env.sleep(case.input.config.departure_lead + timedelta(minutes=1))
    await case.stage("in_transit")
    await case.fact("leg_failed", LegFailure.MISSED_CONNECTION)
    await advance(workflow_env, case,
                  lambda v: v.booking_attempts == 2 and v.stage == "awaiting_departure",
                  "the rebooking")
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    await case.reception()
    assert (await case.result()).outcome == "returned"
    types = await case.event_types()
    assert types[len(REFERRAL_TO_CONSENT) + len(DOCUMENTS_AND_CLEARANCES):][:7] == [
        *BOOKED, "journey.departed", "journey.leg_failed", "journey.rebooking_scheduled",
        "journey.booked",
    ]
    failed = next(e for e in await case.events() if e.event_type == "journey.leg_failed")
    assert failed.payload["source"] == "field_report"
    assert failed.author_org == SENDING and failed.actor == "u-2001"


# --- the border -----------------------------------------------------------------------


async def test_border_hold_of_30_hours_calls_a_companion_escalates_and_continues(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_hold_started")
    await case.until(lambda v: v.blocked_on == "border_hold", "the hold")
    held_from = next(e for e in await case.events()
                     if e.event_type == "border.hold_started").occurred_at

    async def skip_to(moment: datetime) -> None:
        """Skip to a moment of the hold (workflow time), wherever the clock is now."""
        now = await workflow_env.get_current_time()
        await workflow_env.sleep(max(moment - now, timedelta(0)))

    # "Not yet" is checked a whole hour before each timer is due: between skips workflow
    # time runs on in real time, and an hour is more than any machine takes for the steps
    # in between. The exact moments are asserted below from the events' workflow times.
    await skip_to(held_from + timedelta(hours=5))
    assert not (await case.status()).open_tasks  # no companion before 6 h
    await skip_to(held_from + timedelta(hours=6, minutes=1))
    companion = await case.task(TaskKind.BORDER_COMPANION)
    assert companion.assignee_org == PARTNER
    await case.complete(TaskKind.BORDER_COMPANION,
                        msg.BorderCompanionResult(companion_record_id=rec()))

    await skip_to(held_from + timedelta(hours=23))
    assert "case.escalated" not in await case.event_types()  # not before 24 h
    await skip_to(held_from + timedelta(hours=24, minutes=1))
    await case.until(lambda v: v.blocked_on == "escalation:border_hold_exceeded",
                     "the escalation")
    await skip_to(held_from + timedelta(hours=30))
    lifted = await case.fact("border_hold_lifted")
    # Lifted is not crossed: she waits at the border again, and nothing blocks the case.
    assert lifted.stage == "border"
    view = await case.status()
    assert view.blocked_on == "road:border" and "border_cleared" in view.expected_facts
    await case.fact("border_cleared")
    await case.stage("reception")
    await case.reception()
    assert (await case.result()).outcome == "returned"
    await record_history(case, "border_hold_30h")

    events = await case.events()
    types = [e.event_type for e in events]
    assert types == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *BOOKED, *TRAVEL_TO_BORDER,
        "border.hold_started", "task.opened", "border.companion_assigned", "case.escalated",
        "border.hold_lifted", "border.cleared", *RECEPTION, "escort.released",
        "outcome.returned",
    ]
    at = {e.event_type: e.occurred_at for e in events}
    started = at["border.hold_started"]
    companion_at = events[types.index("border.hold_started") + 1].occurred_at - started
    # Never early: exact, in workflow time. Late only by the time the machine takes to handle
    # the timer (workflow time runs on in real time meanwhile): 10 minutes is far above what
    # a busy machine takes and far below a rule gone wrong (hours off).
    late = timedelta(minutes=10)
    assert timedelta(hours=6) <= companion_at < timedelta(hours=6) + late
    assert timedelta(hours=24) <= at["case.escalated"] - started < timedelta(hours=24) + late
    lifted = next(e for e in events if e.event_type == "border.hold_lifted")
    assert 30 * 3600 <= lifted.payload["held_seconds"] < 30 * 3600 + late.total_seconds()
    assert lifted.payload["held_seconds"] == int((lifted.occurred_at - started).total_seconds())


async def test_entry_refused_replans_through_an_alternative_route(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("entry_refused")
    await case.until(lambda v: v.booking_attempts == 2, "the re-planned booking")
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    await case.reception()
    assert (await case.result()).outcome == "returned"
    events = await case.events()
    booked = [e.payload for e in events if e.event_type == "journey.booked"]
    assert [(b["entry_point"], b["route"]) for b in booked] == [("KIV", "direct"),
                                                                 ("IAS", "alternative")]
    refused = next(e for e in events if e.event_type == "border.entry_refused")
    assert refused.payload == {"entry_point": "KIV"}
    # Escorts and the handoff code stay with the case through the re-planning.
    types = [e.event_type for e in events]
    assert types == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *BOOKED, *TRAVEL_TO_BORDER,
        "border.entry_refused", "journey.booked", *TRAVEL_TO_BORDER, "border.cleared",
        *RECEPTION, "escort.released", "outcome.returned",
    ]
    await record_history(case, "entry_refused_replanned")


# --- the witness ----------------------------------------------------------------------


async def test_witness_cannot_depart_before_the_prosecutor_notice_period(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store, witness=True)
    await case.through_consent(datetime.now(UTC))
    await case.complete(TaskKind.TRAVEL_DOCUMENTS, documents_issued())
    from case_driver import medical_fit, security

    await case.task(TaskKind.PROSECUTOR_NOTICE)
    opened = [e for e in await case.events() if e.event_type == "task.opened"][-3:]
    assert [e.payload["kind"] for e in opened] == [
        "medical_clearance", "prosecutor_notice", "security_assessment"]
    notified_at = opened[1].occurred_at  # notified the moment the task opened
    await case.complete(TaskKind.MEDICAL_CLEARANCE, medical_fit())
    await case.complete(TaskKind.PROSECUTOR_NOTICE, msg.ProsecutorNoticeResult(
        notified_at=notified_at, testimony="remote_testimony_arranged"))
    await case.complete(TaskKind.SECURITY_ASSESSMENT, security())
    await case.stage("awaiting_departure")
    earliest = notified_at + timedelta(days=10)
    # A departure before the notice period is refused, with the date it becomes allowed;
    # it is never recorded with another date.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.fact("departed")
    assert refused.value.cause.details == ("witness_notice_period", [],
                                           earliest.isoformat(), "awaiting_departure")
    assert "journey.departed" not in await case.event_types()
    await workflow_env.sleep(timedelta(days=10, hours=1))
    recorded = await case.fact("departed")
    assert recorded.event_types == ("journey.departed",)
    await case.stage("in_transit")

    events = await case.events()
    booked = next(e for e in events if e.event_type == "journey.booked")
    departed = next(e for e in events if e.event_type == "journey.departed")
    assert datetime.fromisoformat(booked.payload["departure_at"]) == earliest
    assert departed.occurred_at >= earliest
    notice = next(e for e in events if e.event_type == "clearance.prosecutor_notified")
    assert datetime.fromisoformat(notice.payload["earliest_departure_at"]) == earliest
    assert [e.event_type for e in events] == [
        *REFERRAL_TO_CONSENT, "documents.requested", "task.opened", "documents.issued",
        "task.opened", "task.opened", "task.opened",  # medical, prosecutor, security
        "clearance.medical_recorded", "clearance.prosecutor_notified",
        "clearance.security_assessed", *BOOKED, "journey.departed",
    ]
    await record_history(case, "witness_notice_period")
    await case.terminate()


# --- travel documents -----------------------------------------------------------------


async def test_document_refusals_request_again_then_escalate(
    workflow_env, worker, task_queue, store
):
    config = JourneyConfig(max_document_refusals=2)
    case = await start(workflow_env, task_queue, store, config=config)
    await case.through_consent(datetime.now(UTC))
    refused = msg.TravelDocumentsResult(issued=False, refusal_reason="photos_rejected")
    await case.complete(TaskKind.TRAVEL_DOCUMENTS, refused)
    await case.complete(TaskKind.TRAVEL_DOCUMENTS, refused)
    view = await case.until(
        lambda v: v.blocked_on == "escalation:document_refusals_limit_reached", "escalation")
    assert view.stage == "documents"
    await case.complete(TaskKind.ESCALATION_REVIEW,
                        msg.EscalationReviewResult(resolution="retry"))
    await case.complete(TaskKind.TRAVEL_DOCUMENTS, documents_issued())
    await case.task(TaskKind.SECURITY_ASSESSMENT)
    types = await case.event_types()
    assert types == [
        *REFERRAL_TO_CONSENT,
        "documents.requested", "task.opened", "documents.refused",
        "documents.requested", "task.opened", "documents.refused",
        "case.escalated", "task.opened", "case.escalation_resolved",
        "documents.requested", "task.opened", "documents.issued",
        "task.opened", "task.opened",
    ]
    requests = [e.payload for e in await case.events() if e.event_type == "documents.requested"]
    assert [r["attempt"] for r in requests] == [1, 2, 3]
    assert len({r["request_id"] for r in requests}) == 3
    await record_history(case, "document_refusals_escalated")
    await case.terminate()


# --- overdue tasks --------------------------------------------------------------------


async def test_an_overdue_task_escalates_once(workflow_env, worker, task_queue, store):
    case = await start(workflow_env, task_queue, store)
    task = await case.task(TaskKind.SCREENING_INTERVIEW)
    await workflow_env.sleep(timedelta(days=2, minutes=1))
    view = await case.until(lambda v: v.open_tasks and v.open_tasks[0].escalated, "escalation")
    await workflow_env.sleep(timedelta(days=5))
    from case_driver import screening

    await case.complete(TaskKind.SCREENING_INTERVIEW, screening())
    await case.task(TaskKind.OPTIONS_DECISION)
    events = await case.events()
    assert [e.event_type for e in events] == [
        "case.referral_registered", "task.opened", "task.overdue_escalated",
        "screening.interview_recorded", "task.opened",
    ]
    escalated = events[2]
    assert escalated.payload["task_id"] == str(task.task_id)
    # Never before it is due; after it by no more than a busy machine takes to handle the
    # timer (workflow time runs on in real time meanwhile): minutes, not the next day.
    assert task.due_at <= escalated.occurred_at < task.due_at + timedelta(minutes=10)
    assert view.blocked_on == "task:screening_interview"
    await record_history(case, "overdue_escalation")
    await case.terminate()


async def test_manual_travel_adapter_the_coordinator_enters_the_booking(
    workflow_env, worker, task_queue, store, travel
):
    case = await start(workflow_env, task_queue, store, travel_adapter="manual")
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    task = await case.task(TaskKind.ENTER_BOOKING)
    now = (await case.events())[-1].occurred_at  # workflow time

    def entered(departure_at):
        return msg.TaskCompletion(task_id=task.task_id, organisation_id=SENDING, actor_id="u-3",
                                  result=msg.EnterBookingResult(
                                      booking_ref="JU-4F7K2Q", entry_point="KIV",
                                      departure_at=departure_at))

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.handle.execute_update(ReturnCaseWorkflow.complete_task,
                                         entered(now - timedelta(hours=1)))
    assert "must be in the future" in str(refused.value.cause)
    done = await case.handle.execute_update(ReturnCaseWorkflow.complete_task,
                                            entered(now + timedelta(days=1)))
    assert done.event_types == ("journey.booked",)
    await case.stage("awaiting_departure")
    await case.withdraw()
    assert (await case.result()).outcome == "alternative_pathway"
    events = await case.events()
    booked = next(e for e in events if e.event_type == "journey.booked")
    assert booked.payload["provider"] == "manual" and booked.actor == "u-3"
    assert booked.payload["task_id"] == str(task.task_id)
    cancelled = next(e for e in events if e.event_type == "journey.booking_cancelled")
    assert cancelled.payload == {"booking_ref": "JU-4F7K2Q", "provider": "manual"}
    assert not travel.is_cancelled("JU-4F7K2Q")  # the coordinator cancels with the carrier
    assert [e.event_type for e in events] == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, "task.opened", *BOOKED,
        "consent.withdrawn", "journey.booking_cancelled", "escort.released",
        "outcome.alternative_pathway",
    ]
    await record_history(case, "manual_booking_withdrawn")


async def test_medically_unfit_is_reassessed_before_booking(
    workflow_env, worker, task_queue, store
):
    from case_driver import medical_fit, security

    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.complete(TaskKind.TRAVEL_DOCUMENTS, documents_issued())
    await case.complete(TaskKind.MEDICAL_CLEARANCE, msg.MedicalClearanceResult(
        fit_to_travel=False, medical_record_id=rec()))
    await case.complete(TaskKind.SECURITY_ASSESSMENT, security())
    view = await case.until(lambda v: v.blocked_on == "medical_reassessment", "reassessment")
    assert not view.open_tasks and view.booking_attempts == 0
    await workflow_env.sleep(case.input.config.medical_reassessment_after + timedelta(minutes=1))
    await case.complete(TaskKind.MEDICAL_CLEARANCE, medical_fit())
    await case.stage("awaiting_departure")
    types = await case.event_types()
    assert types == [
        *REFERRAL_TO_CONSENT, "documents.requested", "task.opened", "documents.issued",
        "task.opened", "task.opened", "clearance.medical_recorded",
        "clearance.security_assessed",
        "task.opened", "clearance.medical_recorded", *BOOKED,
    ]
    await record_history(case, "medical_reassessment")
    await case.terminate()


# --- not identified as a victim -------------------------------------------------------


async def test_an_adult_not_identified_as_a_victim_closes_after_the_screening(
    workflow_env, worker, task_queue, store
):
    from case_driver import screening

    from domain.journey.vocabulary import TraffickingStatus

    case = await start(workflow_env, task_queue, store)
    await case.complete(TaskKind.SCREENING_INTERVIEW, screening(
        trafficking_status=TraffickingStatus.NOT_A_VICTIM))
    result = await case.result()
    assert result.outcome == "not_identified_as_victim"
    # The case exists and counts: no options, no consent, nothing booked.
    assert await case.event_types() == [
        "case.referral_registered", "task.opened", "screening.interview_recorded",
        "outcome.not_identified_as_victim",
    ]
    await record_history(case, "outcome_not_identified_as_victim")
