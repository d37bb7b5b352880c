"""Activity behind StackCheckWorkflow: append one system event, idempotently."""

from __future__ import annotations

import uuid
from datetime import datetime

from temporalio import activity

from activities.log import activity_logger
from store.event_store import EventStore
from store.events import Causation, NewEvent
from workflows.stack_check import STACK_CHECK_STREAM, StackCheckAppend, StackCheckResult


class StackCheckActivities:
    def __init__(self, store: EventStore):
        self._store = store

    @activity.defn(name="append_stack_check")
    async def append_stack_check(self, request: StackCheckAppend) -> StackCheckResult:
        info = activity.info()
        event = NewEvent(
            event_id=uuid.UUID(request.event_id),
            event_type="stack_check_recorded",
            schema_version=1,
            payload={"workflow_id": request.workflow_id},
            author_org="system",
            actor="system:stack-check",
            occurred_at=datetime.fromisoformat(request.occurred_at),
            causation=Causation(
                workflow_id=request.workflow_id,
                run_id=request.run_id,
                activity_id=info.activity_id,
            ),
        )
        [stored] = await self._store.append(STACK_CHECK_STREAM, None, [event])
        activity_logger().info("stack check recorded", position=stored.position)
        return StackCheckResult(position=stored.position, version=stored.version)
