"""The road as it really happens, on the time-skipping server against a real event store:
repeated border holds, a flight cancelled during a hold, facts out of their moment,
a withdrawal after departure that brings her to safety, age reassessment, and a person
who never arrives. Each scenario asserts the exact sequence of event types."""

from __future__ import annotations

import asyncio
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
    WAIT_BOUND,
    CaseDriver,
    HeldAppend,
    case_input,
    documents_issued,
    medical_fit,
    rec,
    record_history,
    security,
)
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities import build_activities
from domain.journey import messages as msg
from domain.journey.vocabulary import (
    Determination,
    LegFailure,
    RiskLevel,
    SafeHandover,
    SafePlace,
    TaskKind,
    TracingFinding,
    TracingNext,
)
from domain.kernel import AgeAssessor, AgeCategory
from workflows import WORKFLOWS, ReturnCaseWorkflow
from workflows import search_attributes as sa

RETURNED = ["escort.released", "outcome.returned"]


async def start(workflow_env, task_queue, store, **overrides) -> CaseDriver:
    return await CaseDriver.start(workflow_env.client, task_queue, store, case_input(**overrides))


async def at_border(workflow_env, case: CaseDriver) -> None:
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.depart_and_arrive(workflow_env.sleep)


async def refused_because(call) -> str:
    """The sentence a refused Update gives its caller."""
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await call
    return str(refused.value.cause)


async def refusal(call) -> tuple:
    """The machine-readable details of a refused Update: (code, expected, allowed from)."""
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await call
    return refused.value.cause.details[:3]


def safe_place(handed_to: SafeHandover,
               place: SafePlace = SafePlace.PARTNER_NGO_CARE) -> msg.SafePlaceResult:
    return msg.SafePlaceResult(place=place, handed_to=handed_to, safe_place_record_id=rec())


def traced(finding: TracingFinding, then: TracingNext | None = None) -> msg.TracingResult:
    return msg.TracingResult(finding=finding, then=then, tracing_record_id=rec())


# --- the border as a state machine ------------------------------------------------------


async def test_hold_lift_hold_lift_clear_each_hold_with_its_own_timers(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await at_border(workflow_env, case)

    first = await case.fact("border_hold_started")
    assert (first.event_types, first.duplicate, first.stage) == (
        ("border.hold_started",), False, "border")
    again = await case.fact("border_hold_started")  # the same hold, reported twice
    assert (again.event_types, again.duplicate) == ((), True)
    assert (await case.status()).blocked_on == "border_hold"
    await workflow_env.sleep(timedelta(hours=6, minutes=1))
    await case.task(TaskKind.BORDER_COMPANION)
    lifted = await case.fact("border_hold_lifted")
    assert lifted.event_types == ("border.hold_lifted", "task.cancelled")
    view = await case.status()
    # Waiting at the border again: for the next fact, no longer on the hold.
    assert (view.stage, view.blocked_on, view.open_tasks) == ("border", "road:border", ())

    await case.fact("border_hold_started")  # held again: the timers start again
    # "Not yet" an hour before the companion is due (workflow time runs on in real time
    # between skips: an hour is more than any machine takes for one query).
    await workflow_env.sleep(timedelta(hours=5))
    assert not (await case.status()).open_tasks
    await workflow_env.sleep(timedelta(hours=1, minutes=2))
    await case.task(TaskKind.BORDER_COMPANION)
    await workflow_env.sleep(timedelta(hours=18))
    await case.until(lambda v: v.blocked_on == "escalation:border_hold_exceeded",
                     "the second hold's escalation")
    await case.fact("border_hold_lifted")
    assert (await case.status()).blocked_on == "road:border"
    assert (await case.search_attributes())[sa.BLOCKED_ON.name] == "road:border"
    await case.fact("border_cleared")
    await case.stage("reception")
    await case.reception()
    assert (await case.result()).outcome == "returned"
    await record_history(case, "border_holds_repeated")

    events = await case.events()
    assert [e.event_type for e in events] == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *BOOKED, *TRAVEL_TO_BORDER,
        "border.hold_started", "task.opened", "border.hold_lifted", "task.cancelled",
        # Nobody took the second companion task within its 2 h: it escalated as overdue.
        "border.hold_started", "task.opened", "task.overdue_escalated", "case.escalated",
        "border.hold_lifted", "task.cancelled", "border.cleared", *RECEPTION, *RETURNED,
    ]
    holds = [e for e in events if e.event_type == "border.hold_started"]
    escalated = next(e for e in events if e.event_type == "case.escalated")
    # The escalation belongs to the second hold, 24 h after it started.
    assert escalated.occurred_at - holds[1].occurred_at >= timedelta(hours=24)
    assert datetime.fromisoformat(escalated.payload["since"]) == holds[1].occurred_at


async def test_a_flight_cancelled_during_a_hold_is_rebooked_and_the_hold_timers_run_on(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await at_border(workflow_env, case)
    await case.fact("border_hold_started")
    await workflow_env.sleep(timedelta(hours=1))
    failed = await case.fact("leg_failed", LegFailure.CANCELLED_FLIGHT)
    assert failed.event_types == ("journey.leg_failed",)
    await case.until(lambda v: v.blocked_on == "rebooking", "the rebooking wait")
    await workflow_env.sleep(timedelta(hours=2, minutes=1))
    view = await case.until(lambda v: v.booking_attempts == 2, "the onward leg rebooked")
    # Still held at the same border, blocked on the hold again.
    assert (view.stage, view.blocked_on) == ("border", "border_hold")
    await workflow_env.sleep(timedelta(hours=3))  # 6 h after the hold started
    companion = await case.task(TaskKind.BORDER_COMPANION)
    assert companion.assignee_org == PARTNER
    await case.complete(TaskKind.BORDER_COMPANION,
                        msg.BorderCompanionResult(companion_record_id=rec()))
    await case.fact("border_hold_lifted")
    await case.fact("border_cleared")
    await case.reception()
    assert (await case.result()).outcome == "returned"
    await record_history(case, "flight_cancelled_during_hold")

    types = await case.event_types()
    assert types == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *BOOKED, *TRAVEL_TO_BORDER,
        "border.hold_started", "journey.leg_failed", "journey.rebooking_scheduled",
        "journey.booked", "task.opened", "border.companion_assigned", "border.hold_lifted",
        "border.cleared", *RECEPTION, *RETURNED,
    ]


# --- every fact is answered -------------------------------------------------------------


async def test_facts_out_of_their_moment_are_refused_with_what_is_expected(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await case.task(TaskKind.SCREENING_INTERVIEW)
    code, expected, _ = await refusal(case.fact("departed"))
    assert (code, expected) == ("fact_not_expected_now", [])

    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.stage("awaiting_departure")
    code, expected, _ = await refusal(case.fact("border_cleared"))
    assert (code, expected) == ("fact_not_expected_now",
                                ["departed", "did_not_board", "leg_failed"])
    code, _, _ = await refusal(case.fact("departed", org=PARTNER))
    assert code == "not_your_fact"
    code, _, _ = await refusal(case.fact("departed", org=RECEIVING))
    assert code == "not_your_fact"
    before = await case.event_types()

    await workflow_env.sleep(timedelta(days=2, minutes=1))
    await case.fact("departed")
    code, expected, _ = await refusal(case.fact("border_hold_started"))
    assert expected == ["arrived_at_border", "leg_failed", "missing_in_transit"]
    code, _, _ = await refusal(case.fact("border_cleared"))
    assert code == "fact_not_expected_now"
    # Refused facts wrote nothing and left no Update in the history.
    assert await case.event_types() == [*before, "journey.departed"]
    history = await case.handle.fetch_history()
    accepted = [e for e in history.events if e.HasField(
        "workflow_execution_update_accepted_event_attributes")]
    names = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
             for e in accepted]
    assert names.count("report_fact") == 1
    await case.terminate()


async def test_facts_during_a_minors_safeguards_are_refused_not_replayed_later(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store, age_category=AgeCategory.AGE_12_TO_17)
    await case.through_consent(datetime.now(UTC))
    await case.task(TaskKind.BEST_INTEREST_DETERMINATION)
    for fact in ("departed", "arrived_at_border", "border_cleared"):
        code, expected, _ = await refusal(case.fact(fact))
        assert (code, expected) == ("fact_not_expected_now", [])
    await case.minor_safeguards(Determination.RETURN_IN_BEST_INTEREST)
    await case.documents_and_clearances()
    view = await case.stage("awaiting_departure")
    await workflow_env.sleep(timedelta(days=3))
    # Nothing was held back to be replayed: she is still waiting to depart.
    assert (await case.status()).stage == "awaiting_departure"
    assert view.booking_attempts == 1
    assert "journey.departed" not in await case.event_types()
    await case.terminate()


# --- a withdrawal after departure brings her to safety first ----------------------------


async def test_withdrawal_in_transit_keeps_her_leg_and_escorts_until_a_safe_place(
    workflow_env, worker, task_queue, store, travel
):
    case = await start(workflow_env, task_queue, store, risk_level=RiskLevel.HIGH)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances(risk=RiskLevel.HIGH)
    await case.depart(workflow_env.sleep)

    recorded = await case.withdraw()
    assert (recorded.path, recorded.duplicate) == ("to_safety", False)
    assert (await case.withdraw()).duplicate
    view = await case.until(lambda v: v.blocked_on == "task:safe_place", "the safe place task")
    assert view.stage == "to_safety"
    [task] = view.open_tasks
    assert (task.kind, task.assignee_org) == (TaskKind.SAFE_PLACE, SENDING)
    # She is still on the road: what happens there is recorded.
    assert (await case.fact("arrived_at_border")).event_types == ("journey.arrived_at_border",)
    # Late confirmation escalates.
    await workflow_env.sleep(timedelta(hours=12, minutes=1))
    await case.until(lambda v: v.open_tasks[0].escalated, "the overdue safe place")
    # Her police escort hands her only to a named authority or a guardian.
    assert "police escort" in await refused_because(
        case.complete(TaskKind.SAFE_PLACE, safe_place(SafeHandover.HERSELF)))
    await case.complete(TaskKind.SAFE_PLACE, safe_place(SafeHandover.NAMED_AUTHORITY))
    assert (await case.result()).outcome == "alternative_pathway"
    await record_history(case, "withdrawal_in_transit")

    events = await case.events()
    assert [e.event_type for e in events] == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES,
        "journey.booked", "escort.assigned", "escort.assigned", "reception.handoff_code_issued",
        "journey.departed", "consent.withdrawn", "task.opened", "journey.arrived_at_border",
        "task.overdue_escalated", "safety.safe_place_confirmed",
        "escort.released", "escort.released", "outcome.alternative_pathway",
    ]
    withdrawn = next(e for e in events if e.event_type == "consent.withdrawn")
    assert withdrawn.payload["after_departure"] is True
    booking = next(e for e in events if e.event_type == "journey.booked")
    assert not travel.is_cancelled(booking.payload["booking_ref"])  # the leg she was on
    assert {e.payload["reason"] for e in events if e.event_type == "escort.released"} == {
        "safe_place_reached"}


async def test_withdrawal_held_at_the_border_keeps_the_companion_with_her(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await at_border(workflow_env, case)
    await case.fact("border_hold_started")
    await workflow_env.sleep(timedelta(hours=6, minutes=1))
    await case.task(TaskKind.BORDER_COMPANION)
    await case.withdraw()
    view = await case.until(lambda v: v.blocked_on == "task:safe_place", "the way to safety")
    assert view.stage == "to_safety"
    assert {t.kind for t in view.open_tasks} == {TaskKind.BORDER_COMPANION, TaskKind.SAFE_PLACE}
    await case.complete(TaskKind.BORDER_COMPANION,
                        msg.BorderCompanionResult(companion_record_id=rec()))
    await workflow_env.sleep(timedelta(hours=18))  # the hold goes on: it still escalates
    await case.until(lambda v: v.outcome is None and any(
        t.kind is TaskKind.SAFE_PLACE for t in v.open_tasks), "still waiting for safety")
    await case.fact("border_hold_lifted")
    await case.complete(TaskKind.SAFE_PLACE, safe_place(SafeHandover.PARTNER_NGO,
                                                        SafePlace.RETURN_TO_SHELTER))
    assert (await case.result()).outcome == "alternative_pathway"
    await record_history(case, "withdrawal_during_hold")
    types = await case.event_types()
    assert types == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *BOOKED, *TRAVEL_TO_BORDER,
        "border.hold_started", "task.opened", "consent.withdrawn", "task.opened",
        "border.companion_assigned", "task.overdue_escalated", "case.escalated",
        "border.hold_lifted", "safety.safe_place_confirmed", "escort.released",
        "outcome.alternative_pathway",
    ]


async def test_a_childs_withdrawal_in_transit_ends_only_with_her_guardian_or_an_authority(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store, age_category=AgeCategory.AGE_12_TO_17)
    await case.through_consent(datetime.now(UTC))
    await case.minor_safeguards(Determination.RETURN_IN_BEST_INTEREST)
    await case.documents_and_clearances()
    await case.depart(workflow_env.sleep)
    await case.withdraw()
    await case.task(TaskKind.SAFE_PLACE)
    assert "a child is handed only" in await refused_because(
        case.complete(TaskKind.SAFE_PLACE, safe_place(SafeHandover.PARTNER_NGO)))
    assert "escort.released" not in await case.event_types()
    await case.complete(TaskKind.SAFE_PLACE,
                        safe_place(SafeHandover.CHILD_PROTECTION_AUTHORITY))
    assert (await case.result()).outcome == "alternative_pathway"
    await record_history(case, "minor_withdrawal_in_transit")
    events = await case.events()
    assert [e.event_type for e in events][-6:] == [
        "journey.departed", "consent.withdrawn", "task.opened", "safety.safe_place_confirmed",
        "escort.released", "outcome.alternative_pathway",
    ]
    released = next(e for e in events if e.event_type == "escort.released")
    assert released.payload["reason"] == "safe_place_reached"


async def test_withdrawal_across_the_border_is_a_task_for_the_receiving_mission(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await at_border(workflow_env, case)
    await case.fact("border_cleared")
    await case.task(TaskKind.RECEPTION_HANDOFF)
    await case.withdraw()
    view = await case.until(lambda v: v.blocked_on == "task:safe_place", "the safe place task")
    [task] = view.open_tasks
    assert (task.kind, task.assignee_org) == (TaskKind.SAFE_PLACE, RECEIVING)
    await case.complete(TaskKind.SAFE_PLACE, safe_place(SafeHandover.HERSELF,
                                                        SafePlace.SAFE_ADDRESS_OF_HER_CHOICE),
                        org=RECEIVING)
    assert (await case.result()).outcome == "alternative_pathway"
    events = await case.events()
    assert [e.event_type for e in events][-8:] == [
        "border.cleared", "task.opened", "consent.withdrawn", "task.cancelled", "task.opened",
        "safety.safe_place_confirmed", "escort.released", "outcome.alternative_pathway",
    ]
    confirmed = next(e for e in events if e.event_type == "safety.safe_place_confirmed")
    assert confirmed.author_org == RECEIVING
    cancelled = next(e for e in events if e.event_type == "task.cancelled")
    assert cancelled.payload["kind"] == "reception_handoff"


# --- age assessment ---------------------------------------------------------------------


async def test_an_adult_found_to_be_a_child_gets_the_safeguards_before_booking(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.task(TaskKind.TRAVEL_DOCUMENTS)
    assessed = await case.assess_age(AgeCategory.AGE_12_TO_17, AgeAssessor.MEDICAL_ASSESSMENT)
    assert assessed.minor and assessed.event_types == ("case.age_assessed",)
    await case.task(TaskKind.GUARDIAN_APPOINTMENT)
    assert (await case.search_attributes())[sa.MINOR.name] is True
    # Documents are on hold until the guardian and the best-interest determination.
    assert "no legal guardian" in await refused_because(
        case.complete(TaskKind.TRAVEL_DOCUMENTS, documents_issued()))
    await case.minor_safeguards(Determination.RETURN_IN_BEST_INTEREST)
    await case.documents_and_clearances()
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    await case.reception()
    await case.guardian_handover()
    assert (await case.result()).outcome == "returned"
    await record_history(case, "age_reassessed_as_minor")
    events = await case.events()
    assert [e.event_type for e in events] == [
        *REFERRAL_TO_CONSENT, "documents.requested", "task.opened", "case.age_assessed",
        "task.opened", "minor.guardian_appointed", "task.opened",
        "minor.best_interest_determined", "documents.issued",
        "task.opened", "task.opened", "clearance.medical_recorded",
        "clearance.security_assessed", *BOOKED, *TRAVEL_TO_BORDER, "border.cleared",
        *RECEPTION, "task.opened", "minor.handed_over_to_guardian", "escort.released",
        "outcome.returned",
    ]
    escort = next(e for e in events if e.event_type == "escort.assigned")
    assert escort.payload["scope"] == "end_to_end"


async def test_a_child_found_after_booking_is_rebooked_with_an_escort_to_her_guardian(
    workflow_env, worker, task_queue, store, travel
):
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.stage("awaiting_departure")
    await case.assess_age(AgeCategory.DISPUTED, AgeAssessor.POLICE)
    await case.task(TaskKind.GUARDIAN_APPOINTMENT)
    await case.minor_safeguards(Determination.RETURN_IN_BEST_INTEREST)
    # The new booking is equipped (its escort, then the stage) after it is recorded.
    await case.until(lambda v: v.booking_attempts == 2 and v.stage == "awaiting_departure",
                     "the new booking, equipped")
    events = await case.events()
    types = [e.event_type for e in events]
    assert types[len(REFERRAL_TO_CONSENT) + len(DOCUMENTS_AND_CLEARANCES):] == [
        # The guardian task opens at once; the booking and its adult escort are undone.
        *BOOKED, "case.age_assessed", "task.opened", "journey.booking_cancelled",
        "escort.released", "minor.guardian_appointed", "task.opened",
        "minor.best_interest_determined", "journey.booked", "escort.assigned",
    ]
    first, second = [e for e in events if e.event_type == "escort.assigned"]
    assert (first.payload["scope"], second.payload["scope"]) == ("to_handoff", "end_to_end")
    assert travel.is_cancelled(next(e for e in events if e.event_type == "journey.booked")
                               .payload["booking_ref"])
    await case.terminate()


async def test_a_disputed_age_resolved_as_adult_ends_the_child_safeguards(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store, age_category=AgeCategory.DISPUTED)
    await case.through_consent(datetime.now(UTC))  # her guardian took part: she was a child
    await case.task(TaskKind.BEST_INTEREST_DETERMINATION)
    assessed = await case.assess_age(AgeCategory.AGE_18_TO_24, AgeAssessor.COURT)
    assert assessed.minor is False
    assert assessed.event_types == ("case.age_assessed", "task.cancelled")
    await case.task(TaskKind.TRAVEL_DOCUMENTS)
    assert (await case.search_attributes())[sa.MINOR.name] is False
    await record_history(case, "disputed_age_resolved_as_adult")
    types = await case.event_types()
    assert types == [*CHILD_REFERRAL_TO_CONSENT, "task.opened", "case.age_assessed",
                     "task.cancelled", "documents.requested", "task.opened"]
    await case.terminate()


async def test_one_assessment_never_makes_a_recorded_child_an_adult(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store, age_category=AgeCategory.AGE_12_TO_17)
    await case.task(TaskKind.SCREENING_INTERVIEW)
    code, _, _ = await refusal(case.assess_age(AgeCategory.AGE_25_TO_34))
    assert code == "age_not_lowered"
    assert (await case.assess_age(AgeCategory.DISPUTED)).minor
    assert not (await case.assess_age(AgeCategory.AGE_18_TO_24)).minor
    await case.terminate()


# --- she did not arrive -----------------------------------------------------------------


async def test_did_not_board_is_traced_and_found_safe_replans(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.stage("awaiting_departure")
    reported = await case.fact("did_not_board")
    assert reported.event_types == ("journey.did_not_arrive", "case.escalated", "task.opened")
    assert reported.stage == "tracing"
    view = await case.status()
    [task] = view.open_tasks
    assert (task.kind, task.assignee_org) == (TaskKind.TRACING, RECEIVING)
    assert view.blocked_on == "tracing:did_not_board"
    assert (await case.search_attributes())[sa.MISSING.name] is True
    code, expected, _ = await refusal(case.fact("departed"))  # nothing moves while traced
    assert (code, expected) == ("fact_not_expected_now", [])
    await case.complete(TaskKind.TRACING, traced(TracingFinding.FOUND_SAFE, TracingNext.REPLAN))
    await case.until(lambda v: v.booking_attempts == 2 and v.stage == "awaiting_departure",
                     "the new booking")
    assert (await case.search_attributes())[sa.MISSING.name] is False
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    await case.reception()
    assert (await case.result()).outcome == "returned"
    await record_history(case, "did_not_board_found_safe")
    types = await case.event_types()
    assert types[len(REFERRAL_TO_CONSENT) + len(DOCUMENTS_AND_CLEARANCES):] == [
        *BOOKED, "journey.did_not_arrive", "case.escalated", "task.opened",
        "tracing.concluded", "journey.booked", *TRAVEL_TO_BORDER, "border.cleared",
        *RECEPTION, *RETURNED,
    ]


async def test_missing_in_transit_not_found_closes_as_missing_and_is_counted(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.depart(workflow_env.sleep)
    await case.fact("missing_in_transit", org=RECEIVING)  # either mission reports it
    await case.complete(TaskKind.TRACING, traced(TracingFinding.MISSING))
    result = await case.result()
    assert result.outcome == "missing"
    await record_history(case, "missing_in_transit")
    events = await case.events()
    assert [e.event_type for e in events][-7:] == [
        "journey.departed", "journey.did_not_arrive", "case.escalated", "task.opened",
        "tracing.concluded", "escort.released", "outcome.missing",
    ]
    reported = next(e for e in events if e.event_type == "journey.did_not_arrive")
    assert (reported.author_org, reported.payload["reported_by"]) == (
        RECEIVING, "receiving_mission")
    assert events[-1].payload == {"fact": "missing_in_transit"}
    assert events[-2].payload["reason"] == "person_missing"
    assert (await case.search_attributes())[sa.MISSING.name] is True


async def test_not_met_at_arrival_found_safe_continues_to_the_handoff(
    workflow_env, worker, task_queue, store
):
    case = await start(workflow_env, task_queue, store)
    await at_border(workflow_env, case)
    await case.fact("border_cleared")
    await case.task(TaskKind.RECEPTION_HANDOFF)
    await case.fact("not_met_at_arrival", org=RECEIVING)
    view = await case.status()
    assert view.stage == "tracing" and view.blocked_on == "tracing:not_met_at_arrival"
    await case.complete(TaskKind.TRACING, traced(TracingFinding.FOUND_SAFE,
                                                 TracingNext.CONTINUE_JOURNEY))
    await case.stage("reception")
    await case.reception()
    assert (await case.result()).outcome == "returned"
    await record_history(case, "not_met_at_arrival_found_safe")
    types = await case.event_types()
    assert types[-11:] == [
        "border.cleared", "task.opened", "journey.did_not_arrive", "case.escalated",
        "task.opened", "tracing.concluded", "reception.handoff_confirmed",
        "reception.safe_arrival_confirmed", "reception.assistance_recorded", *RETURNED,
    ]


async def test_stopping_a_return_after_departure_also_brings_her_to_safety(
    workflow_env, worker, task_queue, store
):
    """Flights failing in transit up to the limit, and the coordinator stops the return:
    she is not stranded at a transit airport."""
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.complete(TaskKind.TRAVEL_DOCUMENTS, documents_issued())
    await case.complete(TaskKind.MEDICAL_CLEARANCE, medical_fit())
    await case.complete(TaskKind.SECURITY_ASSESSMENT, security())
    for attempt in range(1, 4):
        await case.until(lambda v, a=attempt: v.booking_attempts == a
                         and v.stage == "awaiting_departure", f"booking {attempt}")
        await workflow_env.sleep(timedelta(days=2, minutes=1))
        await case.fact("departed")
        await case.fact("leg_failed", LegFailure.MISSED_CONNECTION)
        if attempt < 3:
            await workflow_env.sleep(timedelta(hours=2 ** attempt, minutes=1))
    await case.complete(TaskKind.ESCALATION_REVIEW,
                        msg.EscalationReviewResult(resolution="stop_return"))
    await case.task(TaskKind.SAFE_PLACE)
    assert (await case.status()).stage == "to_safety"
    await case.complete(TaskKind.SAFE_PLACE, safe_place(SafeHandover.SHELTER_STAFF,
                                                        SafePlace.RETURN_TO_SHELTER))
    assert (await case.result()).outcome == "return_stopped"
    types = await case.event_types()
    assert types[len(REFERRAL_TO_CONSENT) + len(DOCUMENTS_AND_CLEARANCES):] == [
        *BOOKED,
        "journey.departed", "journey.leg_failed", "journey.rebooking_scheduled",
        "journey.booked",
        "journey.departed", "journey.leg_failed", "journey.rebooking_scheduled",
        "journey.booked",
        "journey.departed", "journey.leg_failed", "case.escalated", "task.opened",
        "case.escalation_resolved",
        # Nothing is cancelled under her and her escort stays until the safe place.
        "task.opened", "safety.safe_place_confirmed", "escort.released",
        "outcome.return_stopped",
    ]


async def test_missing_on_the_way_to_safety_closes_as_missing(
    workflow_env, worker, task_queue, store
):
    """Found by the property test: a withdrawal in transit, then she disappears. The case
    closes as missing (counted), not stuck waiting for a safe place that cannot come."""
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.depart(workflow_env.sleep)
    await case.withdraw()
    await case.fact("missing_in_transit")
    await case.complete(TaskKind.TRACING, traced(TracingFinding.MISSING))
    assert (await case.result()).outcome == "missing"
    assert (await case.event_types())[-10:] == [
        "journey.departed", "consent.withdrawn", "task.opened", "journey.did_not_arrive",
        "case.escalated", "task.opened", "tracing.concluded", "escort.released",
        "task.cancelled", "outcome.missing",
    ]


# --- a withdrawal racing a task completion ----------------------------------------------
#
# "Consent withdrawal ... is possible at any moment" and stops the journey in the workflow
# task that receives it (decision 0008): the journey is cancelled there, so no further step
# starts, even one that a task completion in the same workflow task would have set going;
# a step already under way finishes and is then unwound. The tests below hand both to the
# workflow in ONE workflow task: the workflow worker is stopped while the server admits
# them, and the next worker finds them together (proved from the Temporal history).

def workflows_only(client, task_queue: str) -> Worker:
    """A worker for the workflow alone (activities run on their own worker, on through a
    stop of this one). No sticky cache: the next workflow task goes to the shared queue,
    where the next worker finds it."""
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS, max_cached_workflows=0)


async def eventually(check, what: str):
    """Until ``check()`` answers something true (returned); at most WAIT_BOUND."""
    deadline = asyncio.get_running_loop().time() + WAIT_BOUND
    while not (answer := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return answer


async def admitted(case: CaseDriver, update_id: str) -> bool:
    """The server holds this Update (admitted; no worker has accepted it yet)."""
    stage = UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
    try:
        await case.client.workflow_service.poll_workflow_execution_update(
            PollWorkflowExecutionUpdateRequest(
                namespace=case.client.namespace, identity="test",
                update_ref=UpdateRef(workflow_execution=WorkflowExecution(
                    workflow_id=case.handle.id), update_id=update_id),
                wait_policy=WaitPolicy(lifecycle_stage=stage)),
            timeout=timedelta(seconds=10))
    except RPCError as error:
        # Not there yet; or a slow answer: ``eventually`` asks again, within its bound.
        if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.DEADLINE_EXCEEDED):
            return False
        raise
    return True


def accepted_after(history, update_id: str) -> tuple[int, int]:
    """Where the Update was accepted: (index of its acceptance, index of the completed
    workflow task that accepted it) in the history's events."""
    events = list(history.events)
    at = next(i for i, e in enumerate(events)
              if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
              and e.workflow_execution_update_accepted_event_attributes.protocol_instance_id
              == update_id)
    task = max(i for i, e in enumerate(events[:at])
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    return at, task


def activities_scheduled(history) -> list[str]:
    return [e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]


def completing_security(task_id) -> msg.TaskCompletion:
    return msg.TaskCompletion(task_id=task_id, organisation_id=SENDING, actor_id="u-1001",
                              result=security())


def her_withdrawal() -> msg.ConsentWithdrawal:
    return msg.ConsentWithdrawal(organisation_id=SENDING, actor_id="u-1001",
                                 change="withdrawn", form_record_id=rec())


async def waiting_for_the_last_clearance(case: CaseDriver):
    """Everything done but the security assessment: its result is what sets the booking
    going. Returns the open task, once nothing of the case is in flight."""
    await case.through_consent(datetime.now(UTC))
    await case.complete(TaskKind.TRAVEL_DOCUMENTS, documents_issued())
    await case.complete(TaskKind.MEDICAL_CLEARANCE, medical_fit())
    task = await case.task(TaskKind.SECURITY_ASSESSMENT)
    await case.settled()
    return task


async def settle(completing, withdrawing, case: CaseDriver):
    """Both answers and the case's result. Bounded: a workflow that went on with the return
    would never close, and the test would hang instead of failing."""
    return await asyncio.wait_for(asyncio.gather(completing, withdrawing, case.result()),
                                  WAIT_BOUND)


NOTHING_MOVES_ON = ("task.opened", "journey.booked", "escort.assigned", "documents.requested",
                    "reception.handoff_code_issued")


async def test_a_withdrawal_and_a_completion_in_one_workflow_task_book_nothing(
    workflow_env, task_queue, store, travel
):
    client = workflow_env.client
    async with Worker(client, task_queue=task_queue,
                      activities=build_activities(store, travel)):
        async with workflows_only(client, task_queue):
            case = await start(workflow_env, task_queue, store)
            task = await waiting_for_the_last_clearance(case)
        # No workflow worker: the server admits both Updates and holds them ...
        completion_id = f"complete-{task.task_id}"
        completing = asyncio.create_task(case.handle.execute_update(
            ReturnCaseWorkflow.complete_task, completing_security(task.task_id),
            id=completion_id))
        await eventually(lambda: admitted(case, completion_id), "the completion at the server")
        withdrawing = asyncio.create_task(case.handle.execute_update(
            ReturnCaseWorkflow.record_withdrawal, her_withdrawal(), id="withdrawal"))
        await eventually(lambda: admitted(case, "withdrawal"), "the withdrawal at the server")
        # ... and the next worker finds them in one workflow task.
        async with workflows_only(client, task_queue):
            completed, withdrawn, result = await settle(completing, withdrawing, case)
        await record_history(case, "withdrawal_with_a_completion_in_one_task")

    history = await case.handle.fetch_history()
    (_, completion_task), (_, withdrawal_task) = (accepted_after(history, completion_id),
                                                  accepted_after(history, "withdrawal"))
    assert completion_task == withdrawal_task, "not in one workflow task"
    # The completion came first: its step was under way, so it finished and was recorded.
    # Nothing after it moved the return on: no booking was even asked for.
    assert completed.event_types == ("clearance.security_assessed",)
    assert (withdrawn.path, result.outcome) == ("unwind", "alternative_pathway")
    assert "book_journey" not in activities_scheduled(history)
    types = await case.event_types()
    assert types == [
        *REFERRAL_TO_CONSENT, "documents.requested", "task.opened", "documents.issued",
        "task.opened", "task.opened", "clearance.medical_recorded",
        "clearance.security_assessed", "consent.withdrawn", "outcome.alternative_pathway",
    ]


async def test_a_withdrawal_arriving_with_the_end_of_a_completion_stops_what_it_set_going(
    workflow_env, task_queue, engine, travel
):
    """The sharpest moment: the completion's append has just finished (the workflow task
    that hears of it would go on to book) and the withdrawal arrives in that same task."""
    client = workflow_env.client
    store = HeldAppend(engine, "clearance.security_assessed")
    async with Worker(client, task_queue=task_queue,
                      activities=build_activities(store, travel)):
        async with workflows_only(client, task_queue):
            case = await start(workflow_env, task_queue, store)
            task = await waiting_for_the_last_clearance(case)
            completion_id = f"complete-{task.task_id}"
            completing = asyncio.create_task(case.handle.execute_update(
                ReturnCaseWorkflow.complete_task, completing_security(task.task_id),
                id=completion_id))
            await asyncio.wait_for(store.reached.wait(), WAIT_BOUND)  # its append under way
        # No workflow worker now: the withdrawal waits at the server while the append ends.
        withdrawing = asyncio.create_task(case.handle.execute_update(
            ReturnCaseWorkflow.record_withdrawal, her_withdrawal(), id="withdrawal"))
        await eventually(lambda: admitted(case, "withdrawal"), "the withdrawal at the server")
        store.release.set()

        async def append_done():
            history = await case.handle.fetch_history()
            return history.events[-1].event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED

        await eventually(append_done, "the completion's append to finish")
        async with workflows_only(client, task_queue):
            completed, withdrawn, result = await settle(completing, withdrawing, case)
        await record_history(case, "withdrawal_with_the_end_of_a_completion")

    history = await case.handle.fetch_history()
    _, withdrawal_task = accepted_after(history, "withdrawal")
    events = list(history.events)
    append_completed = max(i for i, e in enumerate(events[:withdrawal_task])
                           if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
    # The workflow task that heard the append had finished is the one that took the
    # withdrawal: no workflow task in between could start a step.
    assert not any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                   for e in events[append_completed:withdrawal_task])
    assert completed.event_types == ("clearance.security_assessed",)
    assert (withdrawn.path, result.outcome) == ("unwind", "alternative_pathway")
    assert "book_journey" not in activities_scheduled(history)
    types = await case.event_types()
    assert types[len(REFERRAL_TO_CONSENT):] == [
        "documents.requested", "task.opened", "documents.issued",
        "task.opened", "task.opened", "clearance.medical_recorded",
        "clearance.security_assessed", "consent.withdrawn", "outcome.alternative_pathway",
    ]
    assert not set(types[types.index("consent.withdrawn"):]) & set(NOTHING_MOVES_ON)


# --- a withdrawal in transit: the leg she is on goes on, legs not yet started do not -----


async def test_withdrawal_in_transit_cancels_the_onward_leg_not_yet_started(
    workflow_env, worker, task_queue, store, travel
):
    """README: "the leg she is on is never cancelled, legs not yet started are, her escorts
    stay ... The case closes only then". Her connection was missed and the onward leg
    rebooked; she withdraws before it leaves."""
    case = await start(workflow_env, task_queue, store)
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.depart(workflow_env.sleep)
    await case.stage("in_transit")
    await case.fact("leg_failed", LegFailure.MISSED_CONNECTION)
    await case.until(lambda v: v.blocked_on == "rebooking", "the rebooking wait")
    await workflow_env.sleep(timedelta(hours=2, minutes=1))
    await case.until(lambda v: v.booking_attempts == 2, "the onward leg booked")

    recorded = await case.withdraw()
    assert (recorded.path, recorded.duplicate) == ("to_safety", False)
    view = await case.status()
    assert (view.stage, view.blocked_on, view.outcome) == ("to_safety", "task:safe_place", None)
    [task] = view.open_tasks
    assert (task.kind, task.assignee_org) == (TaskKind.SAFE_PLACE, SENDING)
    assert "escort.released" not in await case.event_types()  # her escort stays with her
    await case.complete(TaskKind.SAFE_PLACE, safe_place(SafeHandover.SHELTER_STAFF,
                                                        SafePlace.RETURN_TO_SHELTER))
    assert (await case.result()).outcome == "alternative_pathway"
    await record_history(case, "withdrawal_in_transit_onward_leg_cancelled")

    events = await case.events()
    assert [e.event_type for e in events] == [
        *REFERRAL_TO_CONSENT, *DOCUMENTS_AND_CLEARANCES, *BOOKED,
        "journey.departed", "journey.leg_failed", "journey.rebooking_scheduled",
        "journey.booked",
        "consent.withdrawn", "journey.booking_cancelled", "task.opened",
        "safety.safe_place_confirmed", "escort.released", "outcome.alternative_pathway",
    ]
    first, onward = [e.payload["booking_ref"] for e in events
                     if e.event_type == "journey.booked"]
    assert not travel.is_cancelled(first)  # the leg she was on
    assert travel.is_cancelled(onward)  # the leg not yet started
    cancelled = next(e for e in events if e.event_type == "journey.booking_cancelled")
    assert cancelled.payload["booking_ref"] == onward
    released = next(e for e in events if e.event_type == "escort.released")
    assert released.payload["reason"] == "safe_place_reached"


# --- the list of recorded histories in docs/testing.md stays true ------------------------


def test_docs_name_every_recorded_journey_history():
    """docs/testing.md lists the journey's recorded histories (the follow-up's as
    ``reintegration_*``): each one it names exists, and each one that exists is named."""
    import re

    from case_driver import HISTORIES

    docs = (HISTORIES.parents[2] / "docs" / "testing.md").read_text()
    section = docs[docs.index("## Recorded histories"):docs.index("## Time")]
    named = {n for n in re.findall(r"`([a-z0-9_]+)`", section)
             if not n.startswith(("test_", "pre_", "reintegration_", "_"))}
    recorded = {p.stem for p in HISTORIES.glob("*.json")
                if not p.stem.startswith("reintegration_")}
    assert named == recorded, (sorted(named - recorded), sorted(recorded - named))
