"""Starting and steering a return case from outside (API, CLI, demo).

Not imported by the workflow module: this is client code.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from domain.boundary import workflow_id_for
from domain.journey.messages import ReturnCaseInput, ReturnCaseResult
from workflows.return_case import ReturnCaseWorkflow


async def start_return_case(
    client: Client, input: ReturnCaseInput, task_queue: str
) -> WorkflowHandle[ReturnCaseWorkflow, ReturnCaseResult]:
    """Start the one workflow of a case. A case id is used once: starting it again, even
    after the case closed, is refused (``WorkflowAlreadyStartedError``)."""
    return await client.start_workflow(
        ReturnCaseWorkflow.run,
        input,
        id=workflow_id_for(input.case_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
