"""On the Temporal dev server (real visibility, no time skipping): the demo runs a case
end to end, and operators find cases by search attributes.

No test here measures speed (the machine may be shared and loaded): they wait on
conditions; how fast a case runs is `homeward bench`'s business."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from case_driver import SENDING, CaseDriver, case_input, consent, decision, screening
from temporalio.worker import Worker

from activities import build_activities
from activities.travel import SimulatedTravelProvider
from domain.journey.vocabulary import TaskKind
from store.event_store import EventStore
from workers.demo import DEMO_CONFIG, run_demo
from workflows import WORKFLOWS
from workflows.search_attributes import BLOCKED_ON, DESTINATION_COUNTRY, MINOR, STAGE


async def test_demo_runs_a_case_end_to_end(dev_server, engine, task_queue):
    store = EventStore(engine)
    lines: list[str] = []
    async with Worker(dev_server.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(store, SimulatedTravelProvider())):
        code = await run_demo(dev_server.client, store, task_queue, out=lines.append)
    assert code == 0, "\n".join(lines)
    text = "\n".join(lines)
    assert "http://localhost:8233/namespaces/default/workflows/return-demo-" in text
    assert "cancelled" in text and "held at the border" in text
    assert "task completed: reception_handoff (mission-md)" in text
    assert lines[-1].startswith("outcome: returned")

    case_id = lines[0].split()[1]
    types = [e.event_type for e in await store.read_stream(case_id)]
    assert types.count("journey.booked") == 2 and "journey.leg_failed" in types
    assert "border.hold_started" in types and "border.companion_assigned" in types
    # The journey ends returned; the demo then runs reintegration to its closure.
    assert "outcome.returned" in types and types[-1] == "reintegration.closed"

    handle = dev_server.client.get_workflow_handle(f"return-{case_id}")
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(STAGE) == "closed"
    assert attributes.get(DESTINATION_COUNTRY) == "MD"
    assert attributes.get(MINOR) is False
    assert attributes.get(BLOCKED_ON) is None


async def test_an_operator_finds_cases_held_at_a_border_with_one_query(
    dev_server, engine, task_queue
):
    store = EventStore(engine)
    async with Worker(dev_server.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(store, SimulatedTravelProvider())):
        config = DEMO_CONFIG.model_copy(update={"border_companion_after": timedelta(hours=6),
                                                "border_escalation_after": timedelta(hours=24)})
        case = await CaseDriver.start(dev_server.client, task_queue, store,
                                      case_input(config=config))
        await case.complete(TaskKind.SCREENING_INTERVIEW, screening())
        await case.complete(TaskKind.OPTIONS_DECISION, decision())
        await case.complete(TaskKind.INFORMED_CONSENT, consent(datetime.now(UTC)))
        await case.documents_and_clearances()
        await case.until(lambda v: v.stage == "awaiting_departure", "booking")
        await case.fact("departed")
        await case.until(lambda v: v.stage == "in_transit", "departure")
        await case.fact("arrived_at_border")
        await case.fact("border_hold_started")
        await case.until(lambda v: v.blocked_on == "border_hold", "the hold")

        # The README's query, with "12 hours ago" moved to "in a minute" (no time skipping).
        since = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = (f"HomewardBlockedOn = 'border_hold' AND HomewardBlockedSince < '{since}' "
                 f"AND HomewardSendingMission = '{SENDING}'")
        # Visibility is eventually consistent: poll until the case shows up. The bound
        # only stops a broken query from hanging the suite; it is generous because the
        # dev server's visibility lags further behind on a loaded machine.
        found: list[str] = []
        deadline = asyncio.get_running_loop().time() + 120
        while not found and asyncio.get_running_loop().time() < deadline:
            found = [w.id async for w in dev_server.client.list_workflows(query)]
            if not found:
                await asyncio.sleep(0.2)
        assert found == [case.handle.id]
        await case.handle.terminate("test over")
