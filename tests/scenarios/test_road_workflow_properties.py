"""Property-based, through the real workflow on the time-skipping server (a bounded number
of examples: each one is a whole journey). Random sequences of road facts, from either
mission, with time passing, withdrawals and the safety tasks' results:

- every report is answered: recorded (its events in the store at once) or refused with a
  machine-readable code; an answer with no event is a repeated report;
- a leg under way is never cancelled; a minor's or a police escort is released only at a
  handover, a confirmed safe place, or when tracing concluded she is missing;
- the case ends closed with an outcome, or waiting with ``blocked_on`` set.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from case_driver import RECEIVING, SENDING, CaseDriver, case_input, rec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import WorkflowUpdateFailedError

from domain.journey import messages as msg
from domain.journey.vocabulary import (
    LegFailure,
    RiskLevel,
    RoadFact,
    SafeHandover,
    SafePlace,
    TaskKind,
    TracingFinding,
    TracingNext,
)
from domain.kernel import AgeCategory

actions = st.lists(st.one_of(
    st.tuples(st.just("fact"), st.sampled_from(list(RoadFact)),
              st.sampled_from([SENDING, SENDING, RECEIVING])),
    st.tuples(st.just("wait"), st.sampled_from([1, 7, 26, 50])),
    st.tuples(st.just("withdraw")),
    st.tuples(st.just("safety_tasks"), st.sampled_from(list(TracingFinding)),
              st.sampled_from(list(TracingNext))),
), min_size=3, max_size=12)

_HANDOVERS = {"guardian_handover_complete", "safe_place_reached", "person_missing"}


async def _complete_safety_tasks(case: CaseDriver, finding: TracingFinding,
                                 then: TracingNext) -> None:
    for task in (await case.status()).open_tasks:
        result = {
            TaskKind.SAFE_PLACE: msg.SafePlaceResult(
                place=SafePlace.PARTNER_NGO_CARE,
                handed_to=SafeHandover.CHILD_PROTECTION_AUTHORITY,
                safe_place_record_id=rec()),
            TaskKind.TRACING: msg.TracingResult(
                finding=finding, then=then if finding is TracingFinding.FOUND_SAFE else None,
                tracing_record_id=rec()),
            TaskKind.BORDER_COMPANION: msg.BorderCompanionResult(companion_record_id=rec()),
        }.get(task.kind)
        if result is not None:
            await case.complete(task.kind, result, org=task.assignee_org)


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(minor=st.booleans(), steps=actions)
async def test_random_roads_through_the_workflow(workflow_env, worker, task_queue, store,
                                                 minor, steps):
    age = AgeCategory.AGE_12_TO_17 if minor else AgeCategory.AGE_25_TO_34
    case = await CaseDriver.start(workflow_env.client, task_queue, store,
                                  case_input(age_category=age, risk_level=RiskLevel.HIGH))
    await case.through_consent(datetime.now(UTC))
    if minor:
        await case.minor_safeguards("return_in_best_interest")
    await case.documents_and_clearances(risk=RiskLevel.HIGH)
    await case.stage("awaiting_departure")
    await workflow_env.sleep(timedelta(days=2, minutes=1))

    for step in steps:
        view = await case.status()
        if view.outcome is not None:
            break
        match step:
            case ("fact", fact, org):
                before = len(await case.events())
                failure = LegFailure.CANCELLED_FLIGHT if fact is RoadFact.LEG_FAILED else None
                try:
                    recorded = await case.fact(fact, failure, org=org)
                except WorkflowUpdateFailedError as refused:
                    assert refused.cause.details[0]  # a machine-readable code
                    continue
                after = await case.events()
                if recorded.duplicate:
                    assert recorded.event_types == ()
                else:
                    types = [e.event_type for e in after[before:]]
                    assert list(recorded.event_types[:1]) == types[:1], (recorded, types)
            case ("wait", hours):
                await workflow_env.sleep(timedelta(hours=hours))
            case ("withdraw",):
                try:
                    await case.withdraw()
                except WorkflowUpdateFailedError as refused:
                    assert refused.cause.details[0]
            case ("safety_tasks", finding, then):
                try:
                    await _complete_safety_tasks(case, finding, then)
                except WorkflowUpdateFailedError as refused:
                    assert refused.cause.details or str(refused.cause)

    view = await case.until(lambda v: v.outcome is not None or v.blocked_on is not None,
                            "the case to close or to wait on something")
    events = await case.events()
    departed: set[str] = set()
    for e in events:
        if e.event_type == "journey.departed":
            departed.add(e.payload["booking_ref"])
        if e.event_type == "journey.booking_cancelled":
            assert e.payload["booking_ref"] not in departed, "a leg under way was cancelled"
        if e.event_type == "escort.released" and any(
                d.event_type == "journey.departed" for d in events[:events.index(e)]):
            assert e.payload["reason"] in _HANDOVERS | {"handoff_complete"}, e.payload
    assert view.outcome is not None or view.blocked_on
    if view.outcome is None:
        await case.terminate()
