"""The Temporal worker: every workflow and activity of homeward on one task queue, sized
by the ``HOMEWARD_WORKER_*`` settings (decision 0055)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities import build_activities
from activities.stack_check import StackCheckActivities
from activities.travel import make_travel_provider
from store.event_store import EventStore
from workers.settings import Settings, load_settings
from workflows import WORKFLOWS
from workflows.stack_check import StackCheckWorkflow


def worker_options(settings: Settings) -> dict[str, Any]:
    """The Worker's sizing keywords, from the settings."""
    return {
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "sticky_queue_schedule_to_start_timeout":
            timedelta(seconds=settings.worker_sticky_queue_timeout),
        "graceful_shutdown_timeout":
            timedelta(seconds=settings.worker_graceful_shutdown_timeout),
    }


def build_worker(client: Client, store: EventStore, task_queue: str, travel_adapter: str,
                 settings: Settings | None = None) -> Worker:
    """The worker; its sizing from ``settings``, else from the HOMEWARD_ environment."""
    travel = make_travel_provider(travel_adapter)
    activities = [
        *build_activities(store, travel),
        StackCheckActivities(store).append_stack_check,
    ]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[*WORKFLOWS, StackCheckWorkflow],
        activities=activities,
        **worker_options(settings or load_settings()),
    )
