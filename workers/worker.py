"""The Temporal worker: every workflow and activity of homeward on one task queue."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from activities import build_activities
from activities.stack_check import StackCheckActivities
from activities.travel import make_travel_provider
from store.event_store import EventStore
from workflows import WORKFLOWS
from workflows.stack_check import StackCheckWorkflow


def build_worker(client: Client, store: EventStore, task_queue: str, travel_adapter: str) -> Worker:
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
    )
