"""The scheduled maintenance runs (decision 0062): retention erasure and hash-chain
verification, started by the Temporal Schedules of ``workers.schedules``.

Each run does its work through activities on the existing store code and records its
result as one event (``domain.maintenance``) in a stream named by the task and the run's
scheduled time. The event id is made here, so a retried append writes nothing twice.
A broken chain fails the verification run after its event is recorded: the Schedules
page shows the run failed, and the worker logs the broken case at error level.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError

from domain.maintenance import (
    ChainVerified,
    MaintenanceEvent,
    MaintenanceTask,
    RetentionErased,
    StreamId,
    maintenance_stream,
)

# Set by the server on every workflow a schedule starts (a trigger's is the trigger time).
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")

CHAIN_TAMPERED = "ChainTampered"
"""The failure type of a verification run that found a broken chain."""

_RETRY = RetryPolicy(maximum_attempts=5)
_LONG_STEP = {"start_to_close_timeout": timedelta(hours=2),
              "heartbeat_timeout": timedelta(minutes=2), "retry_policy": _RETRY}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExpiredCaseRef(_Model):
    case_id: StreamId
    closed_at: datetime
    expired_at: datetime


class RetentionListing(_Model):
    retention_years: int
    cases: list[ExpiredCaseRef]


class RetentionOutcome(_Model):
    erased_case_ids: list[StreamId]
    skipped_case_ids: list[StreamId]


class ChainReport(_Model):
    cases_checked: int
    events_checked: int
    broken_case_id: StreamId | None = None
    broken_version: int | None = None
    broken_reason: str | None = None  # the store's words, ids and versions only


class MaintenanceAppend(_Model):
    stream_id: StreamId
    event_id: UUID
    occurred_at: datetime
    event: MaintenanceEvent


class MaintenanceRecorded(_Model):
    stream_id: StreamId
    position: int
    version: int
    event: MaintenanceEvent


def scheduled_at() -> datetime:
    """The run's scheduled time; the workflow's start for a run no schedule started."""
    info = workflow.info()
    return info.typed_search_attributes.get(SCHEDULED_START_TIME) or info.start_time


async def _record(task: MaintenanceTask, event: RetentionErased | ChainVerified
                  ) -> MaintenanceRecorded:
    return await workflow.execute_activity(
        "append_maintenance_event",
        MaintenanceAppend(stream_id=maintenance_stream(task, scheduled_at()),
                          event_id=workflow.uuid4(), occurred_at=workflow.now(), event=event),
        result_type=MaintenanceRecorded,
        start_to_close_timeout=timedelta(minutes=1),
        retry_policy=_RETRY,
    )


@workflow.defn
class RetentionErasureWorkflow:
    """List the cases past retention, erase them (each re-checked just before, as
    ``homeward retention erase`` does), record ``maintenance.retention_erased``."""

    @workflow.run
    async def run(self) -> MaintenanceRecorded:
        listing = await workflow.execute_activity(
            "list_expired_cases", result_type=RetentionListing, **_LONG_STEP)
        outcome = RetentionOutcome(erased_case_ids=[], skipped_case_ids=[])
        if listing.cases:
            outcome = await workflow.execute_activity(
                "erase_expired_cases", listing, result_type=RetentionOutcome, **_LONG_STEP)
        return await _record(MaintenanceTask.RETENTION_ERASURE, RetentionErased(
            retention_years=listing.retention_years,
            erased=len(outcome.erased_case_ids), skipped=len(outcome.skipped_case_ids),
            erased_case_ids=outcome.erased_case_ids, skipped_case_ids=outcome.skipped_case_ids,
        ))


@workflow.defn
class ChainVerificationWorkflow:
    """Walk every stream's hash chain (``homeward store verify``), record
    ``maintenance.chain_verified``, and fail if a link is broken."""

    @workflow.run
    async def run(self) -> MaintenanceRecorded:
        report = await workflow.execute_activity(
            "verify_event_chains", result_type=ChainReport, **_LONG_STEP)
        recorded = await _record(MaintenanceTask.STORE_VERIFY, ChainVerified(
            intact=report.broken_case_id is None,
            cases_checked=report.cases_checked, events_checked=report.events_checked,
            broken_case_id=report.broken_case_id, broken_version=report.broken_version,
        ))
        if report.broken_case_id is not None:
            raise ApplicationError(
                f"event store tampered: case {report.broken_case_id} version "
                f"{report.broken_version}: {report.broken_reason}; recorded in stream "
                f"{recorded.stream_id}. Run `homeward store verify`.",
                type=CHAIN_TAMPERED, non_retryable=True,
            )
        return recorded


MAINTENANCE_WORKFLOWS: list[type] = [RetentionErasureWorkflow, ChainVerificationWorkflow]
