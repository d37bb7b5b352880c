"""Request plumbing shared by the routes: the services, the authenticated principal, the
audit mark, the case's access facts, and Temporal calls with their errors translated."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import Depends, Path, Request
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.access import Action, CaseFacts, Decision, authorise, case_facts
from api.errors import ApiError
from domain.boundary import REFUSED, workflow_id_for
from store.accounts import AuthenticationFailed, Principal
from store.events import StoredEvent

log = structlog.get_logger("homeward.api")
T = TypeVar("T")

CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{5,63}$"
CaseIdPath = Annotated[str, Path(pattern=CASE_ID_PATTERN, description="the case id")]
TaskIdPath = Annotated[uuid.UUID, Path(description="the task id")]


def services(request: Request) -> Any:
    return request.app.state.services


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AuditMark:
    action: str
    case_id: str | None = None
    task_id: uuid.UUID | None = None


def mark(request: Request, action: Action | str, case_id: str | None = None,
         task_id: uuid.UUID | None = None) -> None:
    """Record this request in the audit log (written when the response is sent)."""
    request.state.audit = AuditMark(str(action), case_id, task_id)


async def principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ApiError(401, "unauthenticated",
                       "this endpoint needs an `Authorization: Bearer <token>` header")
    try:
        who = await services(request).accounts.authenticate(credentials.strip())
    except AuthenticationFailed as refused:
        raise ApiError(401, f"token_{refused.reason}", str(refused)) from None
    request.state.principal = who
    structlog.contextvars.bind_contextvars(user_id=who.user_id, org_id=who.org_id)
    return who


Caller = Annotated[Principal, Depends(principal)]


async def read_case_events(request: Request, case_id: str) -> list[StoredEvent]:
    return await services(request).store.read_case(case_id)


async def facts_for(request: Request, case_id: str) -> CaseFacts | None:
    return case_facts(case_id, await read_case_events(request, case_id))


def require(decision: Decision) -> Decision:
    if not decision.allowed:
        raise ApiError(decision.status, decision.code, decision.reason)
    return decision


async def authorise_case(request: Request, caller: Principal, action: Action,
                         case_id: str) -> tuple[Decision, CaseFacts]:
    """Mark the audit, load the case's facts, decide; raise the refusal."""
    mark(request, action, case_id)
    facts = await facts_for(request, case_id)
    decision = require(authorise(caller, action, facts))
    assert facts is not None
    return decision, facts


def handle_for(request: Request, case_id: str) -> WorkflowHandle:
    return services(request).temporal.get_workflow_handle(workflow_id_for(case_id))


def refusal_details(details: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """The workflow's ``Refused`` details (code, expected, allowed_from, stage) as an error
    code and the fields of the error body that are set."""
    code, expected, allowed_from, stage = (*details, None, None, None, None)[:4]
    body = {"expected": expected, "allowed_from": allowed_from, "stage": stage}
    return str(code or "refused"), {k: v for k, v in body.items() if v}


async def temporal_call(call: Awaitable[T], *, what: str) -> T:
    """Await a Temporal call; its failures become 4xx/503 with a sentence, never a 500."""
    try:
        return await call
    except WorkflowUpdateFailedError as failure:
        cause = failure.cause
        reason = getattr(cause, "message", None) or str(cause or failure)
        if isinstance(cause, ApplicationError) and cause.type == REFUSED and cause.details:
            code, details = refusal_details(cause.details)
            raise ApiError(409, code, reason, **details) from None
        raise ApiError(409, "refused", reason) from None
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise ApiError(409, "case_not_running",
                           f"{what}: the case's workflow is no longer running") from None
        if error.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION):
            raise ApiError(409, "refused", f"{what}: {error.message}") from None
        log.warning("temporal call failed", what=what, status=error.status.name)
        raise ApiError(503, "temporal_unavailable",
                       f"{what}: the workflow service did not answer; try again") from None
