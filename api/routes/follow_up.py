"""The receiving mission's follow-up (decision 0064): see it, and record a risk, an
opt-out (whole or per service line), a plan or schedule change, closure and reopening.

Each change is the reintegration workflow's Update, with its validator: 403 for another
organisation or role (``api.access``), 409 with the workflow's ``code`` when the state
refuses, 422 for a malformed body or a record id not of this case's vault (decision
0046); nothing is written on a refusal. Send an ``Idempotency-Key`` to retry safely:
the change is applied once and the retry gets the first answer. Not confirmed in time:
202, with where to look.

Only codes and ids reach the workflow: a risk's description goes to the vault as a
follow-up note and the event holds its record id."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.access import Action
from api.deps import Caller, CaseIdPath, IdempotencyKey, case_service, load_case
from api.errors import RETRY_AFTER_SECONDS, ApiError
from api.references import check_references
from api.service.follow_up import (
    PLACEHOLDER_RECORD_ID,
    FollowUpPending,
    FollowUpService,
    Forward,
    follow_up_state,
)
from domain import boundary as wf
from domain.kernel import Code, OrganisationId, RecordId
from domain.reintegration import decider as r
from domain.reintegration import events as rev
from domain.reintegration import messages as rm
from domain.reintegration.vocabulary import (
    ClosureReason,
    NotRestoredReason,
    OwedOnReopening,
    ReopenReason,
    RiskIndicator,
    ServiceKind,
    ServiceStatus,
)

router = APIRouter(tags=["follow-up"])

class FollowUpPendingOut(BaseModel):
    status: str = "pending"
    case_id: str
    check: str = Field(description="where to see it recorded: the case's follow-up")
    message: str
    request_id: str | None = None


_PENDING: dict[int | str, dict[str, Any]] = {202: {
    "model": FollowUpPendingOut,
    "description": "sent, not confirmed in time: applied once if it arrives; GET the "
                   "follow-up to see it, or send it again with the same Idempotency-Key"}}
_REFUSALS: dict[int | str, dict[str, Any]] = {409: {
    "description": "the follow-up's state refuses the change (with a code: no_follow_up, "
                   "no_such_line, line_ended, refused, ...)"}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class RiskIn(_Body):
    indicator: RiskIndicator
    description: str | None = Field(
        default=None, min_length=1, max_length=10_000,
        description="What was seen or said: kept in the person vault only, as a follow-up "
        "note; the event holds its record id.")
    report_record_id: RecordId | None = Field(
        default=None, description="Or a report already in the vault.")

    @model_validator(mode="after")
    def _one_report(self) -> RiskIn:
        if self.description is not None and self.report_record_id is not None:
            raise ValueError("give a description or a report_record_id, not both")
        return self


class OptOutIn(_Body):
    line_ids: list[UUID] = Field(
        default_factory=list, max_length=50,
        description="Only these services of her plan (declined; the rest goes on). Empty: "
        "she wants no further follow-up at all, and it closes.")
    form_record_id: RecordId | None = None


class LineIn(_Body):
    line_id: UUID
    service: ServiceKind
    provider_org: OrganisationId = Field(description="Who delivers it: a provider other "
                                         "than the receiving mission gets a task to report "
                                         "delivery.")
    due_at: AwareDatetime
    status: ServiceStatus = ServiceStatus.PLANNED


class PlanChangeIn(_Body):
    lines: list[LineIn] = Field(default_factory=list, max_length=50)
    remaining_check_ins_after_arrival: list[timedelta] | None = Field(
        default=None, min_length=1, max_length=24,
        description="The check-ins still to come, as ISO 8601 durations after her arrival.")

    @model_validator(mode="after")
    def _something_changes(self) -> PlanChangeIn:
        if not self.lines and self.remaining_check_ins_after_arrival is None:
            raise ValueError("a plan change changes lines, the check-in schedule, or both")
        return self


class ClosureIn(_Body):
    reason: ClosureReason
    other_code: Code | None = None


class ReopeningIn(_Body):
    reason: ReopenReason
    owed: OwedOnReopening = OwedOnReopening.RESTORED
    not_restored_reason: NotRestoredReason | None = None
    decision_record_id: RecordId | None = None


class FollowUpRecorded(BaseModel):
    case_id: str
    event_types: list[str]


class LineOut(BaseModel):
    line_id: UUID
    service: str
    provider_org: str
    due_at: datetime
    status: str


class CheckInOut(BaseModel):
    number: int
    due_at: datetime
    status: str


class FollowUpTaskOut(BaseModel):
    task_id: UUID
    kind: str
    assignee_org: str
    due_at: datetime
    escalated: bool
    line_id: UUID | None = None


class FollowUpOut(BaseModel):
    case_id: str
    stage: str
    arrived_at: datetime | None
    next_check_in_due: datetime | None
    check_ins: list[CheckInOut]
    plan: list[LineOut]
    plan_declined: bool
    risks: list[str]
    contact_lost: bool
    opted_out: bool
    closed_reason: str | None
    reopenings: int
    open_tasks: list[FollowUpTaskOut]


def _service(request: Request) -> FollowUpService:
    return FollowUpService(case_service(request))


async def _record(request: Request, caller: Caller, case_id: str, body: BaseModel,
                  forward: Forward, key: str | None) -> Any:
    _, case = await load_case(request, caller, Action.FOLLOW_UP, case_id)
    await check_references(request, case_id, body)
    try:
        recorded = await _service(request).record(caller, case, forward, key)
    except FollowUpPending:
        check = f"/cases/{case_id}/follow-up"
        return JSONResponse(
            FollowUpPendingOut(
                case_id=case_id, check=check,
                message="the change was sent but no worker confirmed it in time; it is "
                        "applied once if it arrives: GET the follow-up to see it, or send "
                        "the same request again with the same Idempotency-Key",
                request_id=getattr(request.state, "request_id", None)).model_dump(),
            status_code=202, headers={"Location": check,
                                      "Retry-After": str(RETRY_AFTER_SECONDS)})
    return FollowUpRecorded(case_id=case_id, event_types=list(recorded.event_types))


@router.get("/cases/{case_id}/follow-up", response_model=FollowUpOut,
            summary="Her follow-up as recorded: stage, check-ins, plan lines and their "
                    "delivery, risks, open tasks (receiving mission)")
async def get_follow_up(case_id: CaseIdPath, request: Request, caller: Caller) -> FollowUpOut:
    _, case = await load_case(request, caller, Action.FOLLOW_UP, case_id)
    s = follow_up_state(case)
    if s is None:
        raise ApiError(404, "no_follow_up", "her follow-up has not started")
    return FollowUpOut(
        case_id=case_id, stage=r.stage_of(s).value, arrived_at=s.arrived_at,
        next_check_in_due=r.next_check_in_due(s),
        check_ins=[CheckInOut(number=c.number, due_at=c.due_at, status=c.status.value)
                   for c in s.check_ins],
        plan=[LineOut(line_id=line.line_id, service=line.service.value,
                      provider_org=line.provider_org, due_at=line.due_at,
                      status=line.status.value) for line in s.plan],
        plan_declined=s.plan_declined, risks=[i.value for i in s.risks],
        contact_lost=s.contact_lost, opted_out=s.opted_out,
        closed_reason=s.closed_reason.value if s.closed_reason else None,
        reopenings=s.reopenings,
        open_tasks=[FollowUpTaskOut(task_id=t.task_id, kind=t.kind.value,
                                    assignee_org=t.assignee_org, due_at=t.due_at,
                                    escalated=t.escalated, line_id=t.line_id)
                    for t in s.open_tasks])


@router.post("/cases/{case_id}/follow-up/risks", response_model=FollowUpRecorded,
             responses={**_PENDING, **_REFUSALS},
             summary="Record a risk or re-trafficking indicator: recorded any time, even "
                     "after closure, and escalated")
async def record_risk(case_id: CaseIdPath, body: RiskIn, request: Request, caller: Caller,
                      idempotency_key: IdempotencyKey = None) -> Any:
    report = rm.RiskReport(
        organisation_id=caller.org_id, actor_id=caller.user_id, indicator=body.indicator,
        report_record_id=body.report_record_id or (
            PLACEHOLDER_RECORD_ID if body.description is not None else None))
    forward = Forward(wf.RECORD_RISK, report, body.description,
                      "report_record_id" if body.description is not None else None)
    return await _record(request, caller, case_id, body, forward, idempotency_key)


@router.post("/cases/{case_id}/follow-up/opt-outs", response_model=FollowUpRecorded,
             responses={**_PENDING, **_REFUSALS},
             summary="She opts out: of the whole follow-up (it closes), or of some services "
                     "of her plan (declined, never penalised)")
async def record_opt_out(case_id: CaseIdPath, body: OptOutIn, request: Request,
                         caller: Caller, idempotency_key: IdempotencyKey = None) -> Any:
    opt_out = rm.OptOut(organisation_id=caller.org_id, actor_id=caller.user_id,
                        form_record_id=body.form_record_id, line_ids=tuple(body.line_ids))
    return await _record(request, caller, case_id, body, Forward(wf.RECORD_OPT_OUT, opt_out),
                         idempotency_key)


@router.post("/cases/{case_id}/follow-up/plan", response_model=FollowUpRecorded,
             responses={**_PENDING, **_REFUSALS},
             summary="Change her plan (lines added or changed by line id) and/or reschedule "
                     "the remaining check-ins")
async def change_plan(case_id: CaseIdPath, body: PlanChangeIn, request: Request,
                      caller: Caller, idempotency_key: IdempotencyKey = None) -> Any:
    change = rm.PlanChange(
        organisation_id=caller.org_id, actor_id=caller.user_id,
        lines=tuple(rev.ServiceLine(**line.model_dump()) for line in body.lines),
        remaining_check_ins_after_arrival=(tuple(body.remaining_check_ins_after_arrival)
                                           if body.remaining_check_ins_after_arrival
                                           else None))
    return await _record(request, caller, case_id, body, Forward(wf.CHANGE_PLAN, change),
                         idempotency_key)


@router.post("/cases/{case_id}/follow-up/closure", response_model=FollowUpRecorded,
             responses={**_PENDING, **_REFUSALS},
             summary="Close her follow-up with a reason from the fixed list (`other` with a "
                     "code); her opting out is an opt-out, not a closure")
async def close(case_id: CaseIdPath, body: ClosureIn, request: Request, caller: Caller,
                idempotency_key: IdempotencyKey = None) -> Any:
    closure = rm.Closure(organisation_id=caller.org_id, actor_id=caller.user_id,
                         **body.model_dump())
    return await _record(request, caller, case_id, body, Forward(wf.CLOSE, closure),
                         idempotency_key)


@router.post("/cases/{case_id}/follow-up/reopening", response_model=FollowUpRecorded,
             responses={**_PENDING, **_REFUSALS},
             summary="Reopen a closed follow-up within its window: new check-ins; what the "
                     "closure cancelled and she is owed is owed again unless decided otherwise")
async def reopen(case_id: CaseIdPath, body: ReopeningIn, request: Request, caller: Caller,
                 idempotency_key: IdempotencyKey = None) -> Any:
    reopening = rm.Reopening(organisation_id=caller.org_id, actor_id=caller.user_id,
                             **body.model_dump())
    return await _record(request, caller, case_id, body, Forward(wf.REOPEN, reopening),
                         idempotency_key)
