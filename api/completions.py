"""The first completion of a task, as the workflow's history holds it.

A task is completed through the ``complete_task`` Update with update id
``complete-<task id>``. Temporal answers every later call with that id with the first
call's outcome, whatever the later call carried: it deduplicates by id, not by content.
So the API reads back the request Temporal accepted under that id and compares it with
the caller's (decision 0044): the same result from the same organisation gets the first
answer (200); anything else is a conflict (409 ``task_already_completed``). Nothing is
written either way.

The history is read newest first (the accepted request is near the end right after a
completion), and across continue-as-new into the runs before, back to the moment the
task was opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

PAGE_SIZE = 100
# The workflow clock (task opened) and the history's event times are the server's; the
# margin only keeps a walk from stopping one event early.
_CLOCK_MARGIN = timedelta(minutes=1)


def completion_update_id(task_id: Any) -> str:
    return f"complete-{task_id}"


@dataclass(frozen=True)
class FirstCompletion:
    request: Any  # the completion message Temporal accepted under the update id
    answer: Any | None  # its result; None while running, or if the Update failed
    failed: bool


async def first_completion(client: Client, workflow_id: str, update_id: str, *,
                           request_type: type, answer_type: type,
                           not_before: datetime | None = None) -> FirstCompletion | None:
    """The request accepted under ``update_id`` and its outcome, or None if the history
    holds none (never accepted, or the history is gone after Temporal's retention)."""
    run_id = ""
    answer: Any | None = None
    failed = False
    while True:
        token = b""
        previous_run = ""
        while True:
            try:
                page = await client.workflow_service.get_workflow_execution_history_reverse(
                    GetWorkflowExecutionHistoryReverseRequest(
                        namespace=client.namespace,
                        execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                        maximum_page_size=PAGE_SIZE, next_page_token=token))
            except RPCError as error:
                if error.status is RPCStatusCode.NOT_FOUND:
                    return None
                raise
            for event in page.history.events:
                if event.HasField("workflow_execution_update_completed_event_attributes"):
                    done = event.workflow_execution_update_completed_event_attributes
                    if done.meta.update_id == update_id:
                        if done.outcome.HasField("success"):
                            [answer] = await client.data_converter.decode(
                                list(done.outcome.success.payloads), [answer_type])
                        else:
                            failed = True
                elif event.HasField("workflow_execution_update_accepted_event_attributes"):
                    accepted = event.workflow_execution_update_accepted_event_attributes
                    if accepted.accepted_request.meta.update_id == update_id:
                        [request] = await client.data_converter.decode(
                            list(accepted.accepted_request.input.args.payloads), [request_type])
                        return FirstCompletion(request, answer, failed)
                elif event.HasField("workflow_execution_started_event_attributes"):
                    started = event.workflow_execution_started_event_attributes
                    previous_run = started.continued_execution_run_id
                at = event.event_time.ToDatetime(tzinfo=UTC)
                if not_before is not None and at < not_before - _CLOCK_MARGIN:
                    return None  # older than the task: it cannot have been completed there
            token = page.next_page_token
            if not token:
                break
        if not previous_run:
            return None
        run_id = previous_run
