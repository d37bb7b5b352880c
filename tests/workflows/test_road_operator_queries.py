"""On the Temporal dev server (real visibility, no time skipping): the README's operator
queries for the road find the cases they describe, and only those: held at a border, in
transit with no report, being traced, and on the way to a safe place."""

from __future__ import annotations

from datetime import UTC, datetime

from case_driver import CaseDriver, case_input
from temporalio.worker import Worker
from test_reintegration_operator_queries import dev_server, found  # noqa: F401 - fixture

from activities import build_activities
from activities.travel import SimulatedTravelProvider
from store.event_store import EventStore
from workflows import WORKFLOWS

QUERIES = {
    "held": "HomewardBlockedOn = 'border_hold'",
    "no_report": "HomewardBlockedOn = 'road:in_transit'",
    "traced": "HomewardMissing = true AND ExecutionStatus = 'Running'",
    "to_safety": "HomewardStage = 'to_safety' AND HomewardBlockedOn = 'task:safe_place'",
}


async def test_operators_find_held_silent_traced_and_to_safety_cases(dev_server,  # noqa: F811
                                                                     engine, task_queue):
    store = EventStore(engine)
    async with Worker(dev_server.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(store, SimulatedTravelProvider())):
        cases = {name: await CaseDriver.start(dev_server.client, task_queue, store,
                                              case_input())
                 for name in QUERIES}
        for case in cases.values():
            await case.through_consent(datetime.now(UTC))
            await case.documents_and_clearances()
            await case.stage("awaiting_departure")
            await case.fact("departed")
        await cases["held"].fact("arrived_at_border")
        await cases["held"].fact("border_hold_started")
        await cases["traced"].fact("missing_in_transit")
        await cases["to_safety"].withdraw()

        for name, query in QUERIES.items():
            ids = await found(dev_server, f"{query} AND TaskQueue = '{task_queue}'")
            assert ids == [cases[name].handle.id], (name, ids)
        for case in cases.values():
            await case.terminate()
