"""Operators unblock stuck cases (stages, blocks and tasks; never identity); analysts read
aggregated statistics; administrators read a case's audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.access import (
    Action,
    ReportScope,
    View,
    authorise,
    authorise_role,
    may_be_assigned,
    project,
    report_scope,
)
from api.deps import (
    Caller,
    CaseIdPath,
    TaskIdPath,
    authorise_case,
    case_service,
    facts_for,
    mark,
    now,
    require,
    services,
)
from api.errors import ApiError
from api.schemas import (
    AuditPage,
    EscalationOut,
    ReassignOut,
    RetryOut,
    StatisticsOut,
    StuckCasePage,
)
from api.service import pages
from api.service.reports import build_report
from domain.outside_events import OperatorEscalated, OperatorRetryRequested, OperatorTaskReassigned
from store.reports import Period

router = APIRouter(tags=["operations"])

class EscalationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    reason: Literal["overdue_tasks", "long_border_hold", "failing_step", "no_progress",
                    "needs_mission_attention"]


@router.get("/operations/stuck-cases", response_model=StuckCasePage,
            response_model_exclude_unset=True,
            summary="Open cases that wait too long, longest first, a page at a time")
async def stuck_cases(request: Request, response: Response, caller: Caller,
                      blocked_for_minutes: Annotated[int, Query(ge=0, le=525_600)] = 60,
                      blocked_on: Annotated[str | None,
                                            Query(pattern=r"^[a-z0-9_:.-]{1,64}$")] = None,
                      cursor: pages.CursorQuery = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    mark(request, Action.OPS_STUCK)
    require(authorise(caller, Action.OPS_STUCK))
    position = pages.decode("stuck-cases", cursor,
                            [pages.nullable(pages.parse_time), pages.text])
    svc = services(request)
    await svc.read_models_lag(request, response)
    rows = await svc.read_models.stuck_cases(now=now(),
                                             blocked_for_seconds=blocked_for_minutes * 60,
                                             blocked_on_prefix=blocked_on, limit=limit + 1,
                                             after=position)
    shown, next_cursor = pages.page("stuck-cases", rows, limit,
                                    lambda r: [r["blocked_since"], r["case_id"]])
    return {"cases": [{**project(r, View.OPERATIONS), "overdue_tasks": r["overdue_tasks"]}
                      for r in shown], "next_cursor": next_cursor}


@router.post("/operations/cases/{case_id}/retry", status_code=202, response_model=RetryOut,
             summary="Retry the case's failing step now (its activity, from attempt 1)")
async def retry(case_id: CaseIdPath, request: Request, caller: Caller) -> RetryOut:
    await authorise_case(request, caller, Action.OPS_ACT, case_id)
    cases = case_service(request)
    steps = await cases.failing_steps(case_id)
    await cases.append_event(caller, case_id, OperatorRetryRequested.TYPE,
                             {"step": ",".join(steps)})
    await cases.retry_now(caller, case_id)
    return RetryOut(case_id=case_id, retried=steps)


@router.post("/operations/cases/{case_id}/escalate", status_code=202,
             response_model=EscalationOut, summary="Escalate the case to its missions")
async def escalate(case_id: CaseIdPath, body: EscalationIn, request: Request,
                   caller: Caller) -> EscalationOut:
    _, facts = await authorise_case(request, caller, Action.OPS_ACT, case_id)
    if facts.closed:
        raise ApiError(409, "case_closed", "the case is closed: there is nothing to escalate")
    await case_service(request).append_event(caller, case_id, OperatorEscalated.TYPE,
                           {"reason": body.reason})
    return EscalationOut(case_id=case_id, escalated=body.reason)


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    to_user: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9._-]{1,62}$",
        description="A colleague in the task's organisation; null: the whole organisation.")
    reason: Literal["assignee_unavailable", "overdue", "workload", "back_to_organisation"]


@router.post("/operations/tasks/{task_id}/reassign", response_model=ReassignOut,
             summary="Reassign an open task to a colleague within its organisation")
async def reassign(task_id: TaskIdPath, body: ReassignIn, request: Request,
                   caller: Caller) -> ReassignOut:
    mark(request, Action.OPS_ACT, None, task_id)
    require(authorise_role(caller, Action.OPS_ACT))
    svc = services(request)
    task = await svc.read_models.task(task_id)
    if task is None and await svc.projections.lag() > 0:
        await svc.catch_up()  # a task just opened, not projected yet: see api/routes/tasks
        task = await svc.read_models.task(task_id)
    if task is None:
        raise ApiError(404, "not_found", "there is no such task")
    mark(request, Action.OPS_ACT, task.case_id, task_id)
    require(authorise(caller, Action.OPS_ACT, await facts_for(request, task.case_id)))
    if task.status != "open":
        raise ApiError(409, "task_not_open", f"the task is {task.status}: nothing to reassign")
    if body.to_user is not None:
        user = await svc.accounts.user(body.to_user)
        if (user is None or user.org_id != task.assignee_org or user.disabled_at is not None
                or not may_be_assigned(user.role)):
            raise ApiError(422, "not_a_colleague",
                           f"to_user must be an active case worker of {task.assignee_org}, the "
                           "organisation the task is assigned to")
    if body.to_user == task.assignee_user:
        raise ApiError(409, "already_assigned", "the task is assigned so already")
    await case_service(request).append_event(caller, task.case_id, OperatorTaskReassigned.TYPE, {
        "task_id": str(task_id), "kind": task.kind, "org": task.assignee_org,
        "from_user": task.assignee_user, "to_user": body.to_user, "reason": body.reason})
    return ReassignOut(task_id=task_id, case_id=task.case_id, assignee_org=task.assignee_org,
                       assignee_user=body.to_user)


# --- statistics ------------------------------------------------------------------------

# GET /statistics: the one-way tables of GET /reports/statistical over all time, from the
# same engine, so that a cell hidden in one is hidden in the other (decision 0065).
_STATISTICS_TABLES = {"by_outcome": "outcome", "by_age_band": "age_band",
                      "minor_or_age_unknown": "minor",
                      "by_destination_country": "destination_country",
                      "by_host_country": "host_country"}


@router.get("/statistics", response_model=StatisticsOut,
            summary="Aggregated, anonymised statistics of the programme (or of my mission)")
async def statistics(request: Request, response: Response, caller: Caller) -> dict[str, Any]:
    mark(request, Action.STATISTICS)
    scope = report_scope(caller, Action.STATISTICS, None)
    if not isinstance(scope, ReportScope):
        require(scope)
    svc = services(request)
    await svc.read_models_lag(request, response)
    report = await build_report(svc.engine, Period(), scope)
    by_name = {t["name"]: t for t in report["tables"]}
    return {
        "coverage": report["coverage"],
        "persons_referred": report["persons_referred"],
        "persons_assisted": report["persons_assisted"],
        "screened_not_victim": report["screened_not_victim"],
        **{out: {r[name]: r["count"] for r in by_name[name]["rows"]}
           for out, name in _STATISTICS_TABLES.items()},
        "generated_at": now(),
    }


# --- audit -------------------------------------------------------------------------------


@router.get("/cases/{case_id}/audit", response_model=AuditPage,
            summary="Who did what to this case (administrators), oldest first, a page at a "
                    "time")
async def case_audit(case_id: CaseIdPath, request: Request, caller: Caller,
                     cursor: pages.CursorQuery = None,
                     after: Annotated[int, Query(
                         ge=0, le=2**62,
                         description="The entries after this audit id (use `cursor`).")] = 0,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> dict[str, Any]:
    await authorise_case(request, caller, Action.AUDIT_READ, case_id)
    position = pages.decode("audit", cursor, [pages.whole])
    entries = await services(request).audit.for_case(
        case_id, limit=limit + 1, after=position[0] if position else after)
    shown, next_cursor = pages.page("audit", entries, limit, lambda e: [e["audit_id"]])
    return {"case_id": case_id, "entries": shown, "next_cursor": next_cursor}
