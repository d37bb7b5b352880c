"""The Temporal worker: every workflow and activity of homeward on one task queue, sized
by the ``HOMEWARD_WORKER_*`` settings (decision 0055), with the build id of its version
(decision 0059)."""

from __future__ import annotations

from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from activities import build_activities
from activities.maintenance import MaintenanceActivities
from activities.stack_check import StackCheckActivities
from activities.travel import make_travel_provider
from store.event_store import EventStore
from workers.settings import Settings, load_settings
from workflows import WORKFLOWS
from workflows.maintenance import MAINTENANCE_WORKFLOWS
from workflows.stack_check import StackCheckWorkflow


def build_id(settings: Settings) -> str:
    """The worker's build id: ``HOMEWARD_BUILD_ID``, else homeward's package version
    (decision 0059). Recorded by the server with the workflow tasks this worker completes;
    it routes nothing (no worker versioning): ``workflow.patched`` keeps old histories
    replaying on new code."""
    if settings.build_id:
        return settings.build_id
    try:
        return version("homeward")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unversioned"


def worker_options(settings: Settings) -> dict[str, Any]:
    """The Worker's sizing, shutdown and build id keywords, from the settings."""
    return {
        "build_id": build_id(settings),
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "sticky_queue_schedule_to_start_timeout":
            timedelta(seconds=settings.worker_sticky_queue_timeout),
        "graceful_shutdown_timeout":
            timedelta(seconds=settings.worker_graceful_shutdown_timeout),
    }


def maintenance_activities(engine: AsyncEngine, store: EventStore,
                           settings: Settings) -> MaintenanceActivities:
    """The scheduled retention and verification's activities (decision 0062)."""
    from store.vault import PersonVault
    from workers.lifecycle import CaseLifecycle

    def vault() -> PersonVault:
        from workers.services import master_keyring

        return PersonVault(engine, master_keyring(settings), store)

    return MaintenanceActivities(engine, store, vault, CaseLifecycle(store).closed_at,
                                 settings.retention_years)


def build_worker(client: Client, store: EventStore, task_queue: str, travel_adapter: str,
                 settings: Settings | None = None, *,
                 engine: AsyncEngine | None = None) -> Worker:
    """The worker; its sizing from ``settings``, else from the HOMEWARD_ environment.
    With ``engine`` (the store's database) it also runs the scheduled maintenance."""
    settings = settings or load_settings()
    travel = make_travel_provider(travel_adapter)
    activities = [
        *build_activities(store, travel),
        StackCheckActivities(store).append_stack_check,
        *(maintenance_activities(engine, store, settings).all() if engine else []),
    ]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[*WORKFLOWS, StackCheckWorkflow, *MAINTENANCE_WORKFLOWS],
        activities=activities,
        **worker_options(settings),
    )
