"""Activities of the maintenance workflows: the store's own retention and verification
code (the same ``homeward retention erase`` and ``homeward store verify`` run), and the
append of a run's event."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.log import activity_logger
from domain.catalogue import payload_of
from domain.kernel import SYSTEM_ORGANISATION
from store.event_store import EventStore
from store.events import Causation, NewEvent
from store.keys import KeyConfigError
from store.retention import (
    RETENTION_ACTOR,
    ClosedAt,
    ExpiredCase,
    erase_expired,
    expired_cases,
)
from store.vault import PersonVault
from store.verify import verify_chain
from workflows.maintenance import (
    ChainReport,
    ExpiredCaseRef,
    MaintenanceAppend,
    MaintenanceRecorded,
    RetentionListing,
    RetentionOutcome,
)

MAINTENANCE_ACTOR = "system:maintenance"
RETENTION_ORG = "system"  # what `homeward retention erase` records unless --org is given


class MaintenanceActivities:
    """``closed_at`` is the journey's knowledge of when a case closed, as the CLI's
    retention reads it. ``vault`` is called on first use: a worker configured without the
    vault's master key runs every other activity, and only a retention run fails, saying
    why. (Erasure destroys data keys and never opens one; the vault is built with its
    keyring all the same.)"""

    def __init__(self, engine: AsyncEngine, store: EventStore,
                 vault: Callable[[], PersonVault], closed_at: ClosedAt, retention_years: int):
        self._engine = engine
        self._store = store
        self._vault_factory = vault
        self._vault: PersonVault | None = None
        self._retention_years = retention_years
        self._closed_at = closed_at

    def _open_vault(self) -> PersonVault:
        if self._vault is None:
            try:
                self._vault = self._vault_factory()
            except KeyConfigError as exc:
                raise ApplicationError(f"retention needs the person vault: {exc}",
                                       type="KeyConfigError", non_retryable=True) from None
        return self._vault

    @activity.defn(name="list_expired_cases")
    async def list_expired_cases(self) -> RetentionListing:
        expired = await expired_cases(self._open_vault(), self._closed_at,
                                      retention_years=self._retention_years)
        return RetentionListing(
            retention_years=self._retention_years,
            cases=[ExpiredCaseRef(case_id=c.case_id, closed_at=c.closed_at,
                                  expired_at=c.expired_at) for c in expired])

    @activity.defn(name="erase_expired_cases")
    async def erase_expired_cases(self, listing: RetentionListing) -> RetentionOutcome:
        """Safe to retry: a case erased by an earlier attempt is erased again as a no-op
        (the vault completes its record) and counted as erased."""
        run = await erase_expired(
            self._open_vault(),
            [ExpiredCase(c.case_id, c.closed_at, c.expired_at) for c in listing.cases],
            self._closed_at,
            by_org=RETENTION_ORG, by_actor=RETENTION_ACTOR,
            retention_years=listing.retention_years,
            progress=lambda done, _total, _case_id: activity.heartbeat(done),
        )
        activity_logger().info("retention erased", erased=len(run.erased),
                               skipped=len(run.skipped))
        return RetentionOutcome(erased_case_ids=[e.case_id for e in run.erased],
                                skipped_case_ids=run.skipped)

    @activity.defn(name="verify_event_chains")
    async def verify_event_chains(self) -> ChainReport:
        report = await verify_chain(self._engine,
                                    progress=lambda done, _total: activity.heartbeat(done))
        if report.broken is None:
            activity_logger().info("hash chains intact", cases=report.cases_checked,
                                   events=report.events_checked)
            return ChainReport(cases_checked=report.cases_checked,
                               events_checked=report.events_checked)
        broken = report.broken
        activity_logger().error("event store tampered: a hash chain is broken",
                                broken_case_id=broken.case_id, version=broken.version,
                                reason=broken.reason)
        return ChainReport(cases_checked=report.cases_checked,
                           events_checked=report.events_checked,
                           broken_case_id=broken.case_id, broken_version=broken.version,
                           broken_reason=broken.reason)

    @activity.defn(name="append_maintenance_event")
    async def append_maintenance_event(self, request: MaintenanceAppend) -> MaintenanceRecorded:
        info = activity.info()
        event = NewEvent(
            event_id=request.event_id,
            event_type=request.event.TYPE,
            schema_version=request.event.schema_version,
            payload=payload_of(request.event),
            author_org=SYSTEM_ORGANISATION,
            actor=MAINTENANCE_ACTOR,
            occurred_at=request.occurred_at,
            causation=Causation(info.workflow_id, info.workflow_run_id, info.activity_id),
        )
        [stored] = await self._store.append(request.stream_id, None, [event])
        return MaintenanceRecorded(stream_id=stored.case_id, position=stored.position,
                                   version=stored.version, event=request.event)

    def all(self) -> list[Callable]:
        return [self.list_expired_cases, self.erase_expired_cases, self.verify_event_chains,
                self.append_maintenance_event]
