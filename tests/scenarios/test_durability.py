"""Durability: a worker that dies mid-journey (even right after an append committed)
loses nothing and duplicates nothing; recorded histories replay against today's code."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from case_driver import HISTORIES, CaseDriver, case_input
from converter import TEST_DATA_CONVERTER
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, Worker

from activities import build_activities
from activities.travel import SimulatedTravelProvider
from domain.journey import messages as msg
from store.event_store import EventStore
from workflows import WORKFLOWS
from workflows.return_case import ReturnCaseWorkflow


class CrashAfterCommit(EventStore):
    """Commits the append, then never answers: the worker dies before reporting success."""

    def __init__(self, engine, crash_on: str):
        super().__init__(engine)
        self.crash_on = crash_on
        self.crashed = asyncio.Event()

    async def append(self, case_id, expected_version, events_):
        stored = await super().append(case_id, expected_version, events_)
        if not self.crashed.is_set() and any(e.event_type == self.crash_on for e in events_):
            self.crashed.set()
            await asyncio.Event().wait()  # hang until the worker is torn down
        return stored


async def test_worker_restarted_mid_journey_continues_without_duplicates(
    workflow_env, engine, task_queue
):
    client = workflow_env.client
    crashing = CrashAfterCommit(engine, crash_on="journey.booked")
    case: CaseDriver
    # No sticky cache on the first worker: the time-skipping test server does not move a
    # dead worker's sticky tasks (and queries) back to the shared queue.
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(crashing, SimulatedTravelProvider()),
                      max_cached_workflows=0):
        case = await CaseDriver.start(client, task_queue, crashing, case_input())
        await case.through_consent(datetime.now(UTC))
        await case.documents_and_clearances()
        # A condition, not a budget: the bound only keeps a broken worker from hanging the
        # suite, and is generous because the machine running the tests may be loaded.
        await asyncio.wait_for(crashing.crashed.wait(), 300)
    # The first worker is gone, with the booking committed but never reported.
    assert (await case.event_types())[-1] == "journey.booked"

    store = EventStore(engine)
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(store, SimulatedTravelProvider())):
        # A new worker has an empty cache: it rebuilds the case by replaying its history.
        case = CaseDriver(client, case.handle, case.input, store)
        for _ in range(100):  # the append activity retries after its backoff (skipped time)
            if (await case.status()).stage == "awaiting_departure":
                break
            await workflow_env.sleep(timedelta(seconds=2))
        else:
            pytest.fail("the new worker never finished the booking the first one committed")
        await case.depart_and_arrive(workflow_env.sleep)
        await case.fact("border_cleared")
        await case.reception()
        result = await case.result()

    assert result.outcome == "returned"
    events = await case.events()
    types = [e.event_type for e in events]
    assert types.count("journey.booked") == 1
    assert types[-3:] == ["reception.assistance_recorded", "escort.released", "outcome.returned"]
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert len({e.event_id for e in events}) == len(events)
    assert result.events_appended == len(events)


def recorded_histories() -> list[Path]:
    """Today's paths, and in pre_road_updates/ the histories of runs started before road
    facts became Updates: those runs must still replay (workflows/legacy_road.py)."""
    return sorted(HISTORIES.rglob("*.json"))


ROAD_PATHS = {
    "border_holds_repeated", "flight_cancelled_during_hold", "withdrawal_in_transit",
    "withdrawal_during_hold", "minor_withdrawal_in_transit", "age_reassessed_as_minor",
    "disputed_age_resolved_as_adult", "did_not_board_found_safe", "missing_in_transit",
    "not_met_at_arrival_found_safe",
}


def test_histories_are_recorded():
    """Every path of the road has a recorded history, and so do the runs from before road
    facts became Updates (re-record: docs/testing.md)."""
    names = {p.stem for p in HISTORIES.glob("*.json")}
    assert ROAD_PATHS <= names, sorted(ROAD_PATHS - names)
    assert len(list((HISTORIES / "pre_road_updates").glob("*.json"))) == 8


@pytest.mark.parametrize("path", recorded_histories(),
                         ids=lambda p: str(p.relative_to(HISTORIES).with_suffix("")))
async def test_recorded_history_replays_against_current_code(path: Path):
    history = WorkflowHistory.from_json(f"return-replay-{uuid.uuid4()}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=TEST_DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


@workflow.defn(name="ReturnCaseWorkflow", sandboxed=False)
class WaitsBeforeReferral(ReturnCaseWorkflow):
    """An incompatible change: a new timer before the first step, without workflow.patched."""

    @workflow.run
    async def run(self, input: msg.ReturnCaseInput) -> msg.ReturnCaseResult:
        return await super().run(input)

    async def _run_journey(self) -> None:
        await workflow.sleep(timedelta(hours=1))
        await super()._run_journey()


async def test_the_replay_test_catches_an_incompatible_change():
    """Recorded histories fail against a workflow that changed its steps: the replay test
    has teeth (such a change needs ``workflow.patched``)."""
    recorded = HISTORIES / "pre_road_updates" / "adult_happy_path.json"
    history = WorkflowHistory.from_json("return-replay-changed", recorded.read_text())
    replayer = Replayer(workflows=[WaitsBeforeReferral], data_converter=TEST_DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    # Nondeterminism specifically: a replay that fails for another reason (a payload that
    # no longer decodes, an exception in the workflow) is a different bug, not this check.
    assert isinstance(result.replay_failure, workflow.NondeterminismError), repr(
        result.replay_failure)
    # The new timer is what the history does not have.
    assert "Timer" in str(result.replay_failure), str(result.replay_failure)
