"""A one-step workflow that proves orchestration reaches the event store.

`homeward check` runs it against a running stack: the workflow makes an event id,
an activity appends one `stack_check_recorded` event to the `system-stack-check`
stream. It carries no case data.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

STACK_CHECK_STREAM = "system-stack-check"


class StackCheckAppend(BaseModel):
    event_id: str
    occurred_at: str
    workflow_id: str
    run_id: str


class StackCheckResult(BaseModel):
    position: int
    version: int


@workflow.defn
class StackCheckWorkflow:
    @workflow.run
    async def run(self) -> StackCheckResult:
        info = workflow.info()
        request = StackCheckAppend(
            event_id=str(workflow.uuid4()),
            occurred_at=workflow.now().isoformat(),
            workflow_id=info.workflow_id,
            run_id=info.run_id,
        )
        return await workflow.execute_activity(
            "append_stack_check",
            request,
            result_type=StackCheckResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=5),
        )
