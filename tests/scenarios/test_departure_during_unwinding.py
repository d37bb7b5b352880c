"""A departure that happens while her withdrawal is being unwound is recorded, and she is
brought to safety: the unwinding never strands her on a leg it tried to cancel.

The race is made deterministic by holding the append of ``consent.withdrawn`` until the
departure has been reported: the departure then waits for the append lock ahead of the
unwinding's booking cancellation, exactly as when she boards in the moments between."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from case_driver import WAIT_BOUND, CaseDriver, HeldAppend, case_input, rec, record_history
from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from activities import build_activities
from domain.journey import messages as msg
from domain.journey.vocabulary import SafeHandover, SafePlace, TaskKind
from workflows import WORKFLOWS


async def test_she_boards_while_her_withdrawal_is_unwound_and_is_brought_to_safety(
    workflow_env, task_queue, engine, travel
):
    store = HeldAppend(engine, "consent.withdrawn")
    async with Worker(workflow_env.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(store, travel)):
        case = await CaseDriver.start(workflow_env.client, task_queue, store, case_input())
        await case.through_consent(datetime.now(UTC))
        await case.documents_and_clearances()
        await case.stage("awaiting_departure")
        await workflow_env.sleep(case.input.config.departure_lead)  # boarding time

        withdrawal = asyncio.create_task(case.withdraw())
        await asyncio.wait_for(store.reached.wait(), WAIT_BOUND)  # a bound, not a timing
        departure = asyncio.create_task(case.fact("departed"))
        await _accepted_updates(case, 2)  # the withdrawal's and the departure's
        store.release.set()

        departed = await departure
        assert departed.event_types == ("journey.departed",)  # what happened is recorded
        recorded = await withdrawal
        assert recorded.path == "to_safety"
        booking = next(e for e in await case.events() if e.event_type == "journey.booked")
        assert not travel.is_cancelled(booking.payload["booking_ref"])  # her leg goes on
        assert "escort.released" not in await case.event_types()  # her escort stays

        await case.complete(TaskKind.SAFE_PLACE, msg.SafePlaceResult(
            place=SafePlace.PARTNER_NGO_CARE, handed_to=SafeHandover.PARTNER_NGO,
            safe_place_record_id=rec()))
        result = await case.result()
        assert result.outcome == "alternative_pathway"
        await record_history(case, "departure_during_unwinding")
        types = await case.event_types()
        assert types[types.index("consent.withdrawn"):] == [
            "consent.withdrawn", "journey.departed", "task.opened",
            "safety.safe_place_confirmed", "escort.released", "outcome.alternative_pathway"]


async def _accepted_updates(case: CaseDriver, count: int) -> None:
    """Until the workflow has accepted ``count`` Updates (each passed its validator and
    waits in the workflow for its turn)."""
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    deadline = asyncio.get_running_loop().time() + WAIT_BOUND
    while sum(e.event_type == accepted
              for e in (await case.handle.fetch_history()).events) < count:
        assert asyncio.get_running_loop().time() < deadline, "the Updates were never accepted"
        await asyncio.sleep(0.05)
