"""The first completion of a task, read back from a real Temporal history (decision
0044): found in the current run, in a run before a continue-as-new, never confused with
another task's, and never looked for before the task was opened."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowContinuedAsNewError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.completions import completion_update_id, first_completion
from domain.journey import messages as msg
from store.keys import Key, Keyring
from workers.codec import make_data_converter


@workflow.defn(sandboxed=False)
class TasksWorkflow:
    """Completes tasks by Update; its first run continues as new after one completion."""

    def __init__(self) -> None:
        self._completed = 0

    @workflow.run
    async def run(self, run: int) -> None:
        await workflow.wait_condition(lambda: self._completed > 0)
        await workflow.wait_condition(workflow.all_handlers_finished)
        if run == 1:
            workflow.continue_as_new(2)
        await workflow.wait_condition(lambda: False)

    @workflow.update
    async def complete_task(self, completion: msg.TaskCompletion) -> msg.TaskCompleted:
        self._completed += 1
        return msg.TaskCompleted(task_id=completion.task_id,
                                 event_types=("clearance.security_assessed",))


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        data_converter=make_data_converter(Keyring(Key(b"c" * 32))),
    )
    try:
        yield env
    finally:
        await env.shutdown()


def _completion(task_id: uuid.UUID, risk: str = "low") -> msg.TaskCompletion:
    return msg.TaskCompletion(task_id=task_id, organisation_id="mission-rs",
                              actor_id="coord.rs",
                              result={"kind": "security_assessment", "risk_level": risk})


async def test_the_first_completion_is_found_in_this_run_and_after_continue_as_new(
    temporal: WorkflowEnvironment,
) -> None:
    client = temporal.client
    opened = datetime.now(UTC)
    task_queue = f"completions-{uuid.uuid4().hex[:8]}"
    task, other = uuid.uuid4(), uuid.uuid4()
    async with Worker(client, task_queue=task_queue, workflows=[TasksWorkflow]):
        handle = await client.start_workflow(TasksWorkflow.run, 1, id=f"wf-{uuid.uuid4()}",
                                             task_queue=task_queue)
        first_run = handle.result_run_id
        answer = await handle.execute_update(
            TasksWorkflow.complete_task, _completion(task), id=completion_update_id(task))

        # The first run ends in a continue-as-new once the Update is answered.
        with pytest.raises(WorkflowContinuedAsNewError):
            await client.get_workflow_handle(handle.id, run_id=first_run).result(
                follow_runs=False)
        latest = await client.get_workflow_handle(handle.id).describe()
        assert latest.run_id != first_run

        async def lookup(task_id: uuid.UUID, **kwargs):
            return await first_completion(
                client, handle.id, completion_update_id(task_id),
                request_type=msg.TaskCompletion, answer_type=msg.TaskCompleted, **kwargs)

        found = await lookup(task, not_before=opened)
        assert found is not None
        assert found.request == _completion(task)
        assert found.request != _completion(task, risk="high")
        assert (found.answer, found.failed) == (answer, False)

        assert await lookup(other, not_before=opened) is None  # never completed
        # A completion cannot precede its task: the walk stops at the task's opening.
        assert await lookup(task, not_before=datetime.now(UTC) + timedelta(hours=1)) is None
        assert await first_completion(
            client, f"wf-{uuid.uuid4()}", completion_update_id(task),
            request_type=msg.TaskCompletion, answer_type=msg.TaskCompleted) is None
