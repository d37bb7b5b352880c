"""The maintenance workflows on the time-skipping server, their activities replaced under
the same names: what each run records, that an empty listing erases nothing, and that a
broken chain fails the run only after its event is recorded. No schedule starts these
runs, so their streams are named by the workflow's start."""

from __future__ import annotations

import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.maintenance import ChainVerified, MaintenanceTask, RetentionErased, maintenance_stream
from workflows.maintenance import (
    CHAIN_TAMPERED,
    ChainReport,
    ChainVerificationWorkflow,
    MaintenanceAppend,
    MaintenanceRecorded,
    RetentionErasureWorkflow,
    RetentionListing,
    RetentionOutcome,
)


class FakeMaintenance:
    def __init__(self, listing: RetentionListing, report: ChainReport):
        self.listing, self.report = listing, report
        self.erased: list[RetentionListing] = []
        self.appended: list[MaintenanceAppend] = []

    @activity.defn(name="list_expired_cases")
    async def list_expired_cases(self) -> RetentionListing:
        return self.listing

    @activity.defn(name="erase_expired_cases")
    async def erase_expired_cases(self, listing: RetentionListing) -> RetentionOutcome:
        self.erased.append(listing)
        return RetentionOutcome(erased_case_ids=[c.case_id for c in listing.cases[1:]],
                                skipped_case_ids=[c.case_id for c in listing.cases[:1]])

    @activity.defn(name="verify_event_chains")
    async def verify_event_chains(self) -> ChainReport:
        return self.report

    @activity.defn(name="append_maintenance_event")
    async def append_maintenance_event(self, request: MaintenanceAppend) -> MaintenanceRecorded:
        self.appended.append(request)
        return MaintenanceRecorded(stream_id=request.stream_id, position=1, version=1,
                                   event=request.event)

    def all(self):
        return [self.list_expired_cases, self.erase_expired_cases, self.verify_event_chains,
                self.append_maintenance_event]


LISTING = RetentionListing.model_validate({"retention_years": 5, "cases": [
    {"case_id": f"case-{n}xyz", "closed_at": "2015-01-01T00:00:00Z",
     "expired_at": "2020-01-01T00:00:00Z"} for n in range(3)]})
INTACT = ChainReport(cases_checked=7, events_checked=40)
BROKEN = ChainReport(cases_checked=3, events_checked=12, broken_case_id="case-b77",
                     broken_version=4, broken_reason="hash mismatch: the event's content "
                     "differs from what was hashed")


async def run(env: WorkflowEnvironment, fake: FakeMaintenance, workflow) -> MaintenanceRecorded:
    task_queue = f"maintenance-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=task_queue, workflows=[workflow],
                      activities=fake.all()):
        handle = await env.client.start_workflow(workflow.run, id=f"m-{uuid.uuid4()}",
                                                 task_queue=task_queue)
        result = await handle.result()
        started = (await handle.describe()).start_time
        assert result.stream_id == maintenance_stream(fake_task(workflow), started)
        return result


def fake_task(workflow) -> MaintenanceTask:
    return (MaintenanceTask.RETENTION_ERASURE if workflow is RetentionErasureWorkflow
            else MaintenanceTask.STORE_VERIFY)


async def test_retention_records_what_was_erased_and_skipped(workflow_env):
    fake = FakeMaintenance(LISTING, INTACT)

    recorded = await run(workflow_env, fake, RetentionErasureWorkflow)

    assert fake.erased == [LISTING]
    [append] = fake.appended
    assert append.event == recorded.event == RetentionErased(
        retention_years=5, erased=2, skipped=1, erased_case_ids=["case-1xyz", "case-2xyz"],
        skipped_case_ids=["case-0xyz"])


async def test_retention_with_nothing_past_retention_erases_nothing_and_says_so(workflow_env):
    fake = FakeMaintenance(RetentionListing(retention_years=5, cases=[]), INTACT)

    recorded = await run(workflow_env, fake, RetentionErasureWorkflow)

    assert fake.erased == []
    assert recorded.event == RetentionErased(retention_years=5, erased=0, skipped=0,
                                             erased_case_ids=[], skipped_case_ids=[])


async def test_intact_chains_are_recorded(workflow_env):
    fake = FakeMaintenance(LISTING, INTACT)

    recorded = await run(workflow_env, fake, ChainVerificationWorkflow)

    assert recorded.event == ChainVerified(intact=True, cases_checked=7, events_checked=40)


async def test_a_broken_chain_is_recorded_then_fails_the_run(workflow_env):
    fake = FakeMaintenance(LISTING, BROKEN)

    with pytest.raises(WorkflowFailureError) as failed:
        await run(workflow_env, fake, ChainVerificationWorkflow)

    [append] = fake.appended
    assert append.event == ChainVerified(intact=False, cases_checked=3, events_checked=12,
                                         broken_case_id="case-b77", broken_version=4)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == CHAIN_TAMPERED
    assert "case case-b77 version 4: hash mismatch" in cause.message
    assert append.stream_id in cause.message
