"""Completing a task from the inbox: forwarded to the workflow that owns it (the return,
or the reintegration follow-up), and a repeated completion compared with the first one
the workflow's history holds (decision 0044): the same result from the same
organisation gets the first answer, anything else is refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.service import RPCError

from api.completions import FirstCompletion, completion_update_id, first_completion
from api.errors import ApiError
from api.service.cases import CaseService
from domain import boundary as wf
from domain.journey import messages as msg
from domain.reintegration import messages as rm
from store.accounts import Principal
from store.read_models import ReadModels, TaskRow

log = structlog.get_logger("homeward.api")

_FOLLOW_UP_RESULTS = rm.ReintegrationTaskResult.__origin__.__args__


@dataclass(frozen=True)
class _Target:
    workflow_id: str
    request_type: type
    answer_type: type


class TaskService:
    def __init__(self, cases: CaseService, temporal: Client, read_models: ReadModels,
                 catch_up: Callable[[], Awaitable[None]]) -> None:
        self.cases = cases
        self.temporal = temporal
        self.read_models = read_models
        self.catch_up = catch_up

    async def complete(self, caller: Principal, task: TaskRow,
                       result: Any) -> msg.TaskCompleted | rm.Recorded:
        """Forward the completion of ``task`` (its kind and references checked) and answer
        with the workflow's answer, or the first completion's when it is the same."""
        completion: msg.TaskCompletion | rm.ReintegrationTaskCompletion
        if isinstance(result, _FOLLOW_UP_RESULTS):
            # Follow-up tasks belong to the case's reintegration workflow.
            completion = rm.ReintegrationTaskCompletion(
                task_id=task.task_id, organisation_id=caller.org_id, actor_id=caller.user_id,
                result=result)
            target = _Target(wf.reintegration_workflow_id_for(task.case_id),
                             rm.ReintegrationTaskCompletion, rm.Recorded)
        else:
            completion = msg.TaskCompletion(task_id=task.task_id, organisation_id=caller.org_id,
                                            actor_id=caller.user_id, result=result)
            target = _Target(wf.workflow_id_for(task.case_id), msg.TaskCompletion,
                             msg.TaskCompleted)
        try:
            if isinstance(completion, rm.ReintegrationTaskCompletion):
                answer = await self.cases.forward_reintegration_completion(task.case_id,
                                                                           completion)
            else:
                answer = await self.cases.forward_completion(task.case_id, completion)
        except ApiError as refused:
            # The workflow may have moved on since the first completion (closed and gone,
            # or continued as new): the first answer is still in the history of the runs
            # before.
            if refused.status != 409:
                raise
            first = await self._first_if_completed(task, target)
            if first is None or first.answer is None:
                raise
            answer = first.answer
        else:
            first = await self._first_completion(task, target)
        if first is None:
            # The Update was answered, so its request is in the history; not finding it
            # means the history cannot be read right now: better no answer than a wrong one.
            raise ApiError(503, "temporal_unavailable",
                           "the completion could not be confirmed; send it again")
        _same_or_refuse(first.request, completion, task)
        return answer

    async def _first_completion(self, task: TaskRow, target: _Target) -> FirstCompletion | None:
        try:
            return await first_completion(
                self.temporal, target.workflow_id, completion_update_id(task.task_id),
                request_type=target.request_type, answer_type=target.answer_type,
                not_before=task.opened_at)
        except RPCError as error:
            log.warning("reading the first completion failed", status=error.status.name)
            raise ApiError(503, "temporal_unavailable",
                           "the workflow service did not answer; try again") from None

    async def _first_if_completed(self, task: TaskRow,
                                  target: _Target) -> FirstCompletion | None:
        now_row = await self.read_models.task(task.task_id)
        if now_row is None or now_row.status != "completed":
            # The completion may be written and not projected yet: look once more with
            # the read models current (a rare answer, so it may wait; lists never do).
            await self.catch_up()
            now_row = await self.read_models.task(task.task_id)
        if now_row is None or now_row.status != "completed":
            return None
        return await self._first_completion(now_row, target)


def _same_or_refuse(first: Any, completion: Any, task: TaskRow) -> None:
    if (first.organisation_id, first.result) == (completion.organisation_id,
                                                 completion.result):
        return
    how = ("by another organisation" if first.organisation_id != completion.organisation_id
           else "with another result")
    raise ApiError(409, "task_already_completed",
                   f"this {task.kind.replace('_', ' ')} task was already completed {how}; "
                   "a completed task is not completed again")
