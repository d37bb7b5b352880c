"""The task inbox of every organisation: its open tasks, one task, completing it.

Every record id in a result must name a record of the case's vault and every
organisation a registered one, or the completion is refused (422 ``unknown_record``,
``unknown_organisation``; ``api.references``, decision 0046) before anything is forwarded.
Completion is forwarded to the case's workflow as the ``complete_task`` Update with id
``complete-<task id>``: completing twice with the same result returns the first answer and
writes nothing; a different result for a completed task is a 409
``task_already_completed`` (``api.service.tasks``, decision 0044); the workflow validator's
refusal comes back as a 409 with its reason."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict

from api.access import Action, View, authorise, authorise_role
from api.deps import Caller, TaskIdPath, facts_for, mark, now, require, services
from api.errors import ApiError
from api.references import check_references
from api.schemas import TaskDone, TaskOut, TaskPage
from api.service import pages
from domain.journey import messages as msg
from domain.journey.vocabulary import TaskKind
from domain.reintegration import messages as rm
from domain.reintegration.vocabulary import ReintegrationTaskKind
from store.read_models import TaskRow

router = APIRouter(tags=["tasks"])


class CompletionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    result: msg.TaskResult | rm.ReintegrationTaskResult


def task_out(task: TaskRow, view: View, at: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task_id": task.task_id, "case_id": task.case_id, "kind": task.kind,
        "assignee_org": task.assignee_org, "status": task.status, "opened_at": task.opened_at,
        "due_at": task.due_at, "overdue": task.status == "open" and task.due_at < at,
        "escalated": task.escalated,
    }
    if view is not View.PARTNER:
        out.update(closed_at=task.closed_at, closed_by_org=task.closed_by_org,
                   assignee_user=task.assignee_user, reassigned_by=task.reassigned_by)
    else:
        out["assignee_user"] = task.assignee_user
    return out


@router.get("/tasks", response_model=TaskPage, response_model_exclude_unset=True,
            summary="My organisation's open tasks, the soonest due first, a page at a time")
async def inbox(request: Request, response: Response, caller: Caller,
                kind: TaskKind | ReintegrationTaskKind | None = None,
                overdue: bool | None = None,
                due_before: Annotated[AwareDatetime | None, Query()] = None,
                cursor: pages.CursorQuery = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    mark(request, Action.TASK_INBOX)
    decision = require(authorise(caller, Action.TASK_INBOX))
    position = pages.decode("tasks", cursor, [pages.parse_time, pages.an_id])
    svc = services(request)
    await svc.read_models_lag(request, response)
    at = now()
    rows = await svc.read_models.tasks(org=caller.org_id, kind=kind.value if kind else None,
                                       overdue=overdue, due_before=due_before, now=at,
                                       limit=limit + 1, after=position)
    shown, next_cursor = pages.page("tasks", rows, limit, lambda t: [t.due_at, t.task_id])
    return {"tasks": [task_out(t, decision.view, at) for t in shown],
            "next_cursor": next_cursor}


async def _task(request: Request, caller: Caller, action: Action,
                task_id: uuid.UUID) -> tuple[TaskRow, View]:
    mark(request, action, None, task_id)
    require(authorise_role(caller, action))
    svc = services(request)
    task = await svc.read_models.task(task_id)
    if task is None and await svc.projections.lag() > 0:
        # A task just opened may not be projected yet: the caller acts on it, so look
        # again once the read models are current (lists never wait so).
        await svc.catch_up()
        task = await svc.read_models.task(task_id)
    if task is None:
        raise ApiError(404, "not_found", "there is no such task")
    mark(request, action, task.case_id, task_id)
    facts = await facts_for(request, task.case_id)
    decision = require(authorise(caller, action, facts, task_id=task_id))
    return task, decision.view


@router.get("/tasks/{task_id}", response_model=TaskOut, response_model_exclude_unset=True,
            summary="One task")
async def get_task(task_id: TaskIdPath, request: Request, caller: Caller) -> dict[str, Any]:
    task, view = await _task(request, caller, Action.TASK_VIEW, task_id)
    return task_out(task, view, now())


@router.post("/tasks/{task_id}/complete", response_model=TaskDone,
             summary="Complete a task of my organisation (idempotent)",
             description="Completing again with the same result answers with the first "
             "answer and writes nothing; a different result, or another organisation's, "
             "for a task already completed is refused (409 `task_already_completed`).")
async def complete_task(task_id: TaskIdPath, body: CompletionIn, request: Request,
                        caller: Caller) -> TaskDone:
    task, _ = await _task(request, caller, Action.TASK_COMPLETE, task_id)
    if body.result.kind != task.kind:
        raise ApiError(422, "wrong_result_kind",
                       f"this is a {task.kind} task; a {body.result.kind} result cannot "
                       "complete it")
    # Its record ids name records of this case's vault, its organisations registered
    # ones (decision 0046): checked before anything reaches the workflow.
    await check_references(request, task.case_id, body)
    return _done(task, await services(request).tasks.complete(caller, task, body.result))


def _done(task: TaskRow, answer: msg.TaskCompleted | rm.Recorded) -> TaskDone:
    return TaskDone(case_id=task.case_id, task_id=task.task_id,
                    event_types=list(answer.event_types))
