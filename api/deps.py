"""Request plumbing shared by the routes: the services, the authenticated principal, the
audit mark, and the case read once and authorised (``load_case``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header, Path, Request
from temporalio.client import WorkflowHandle

from api.access import Action, CaseFacts, Decision, authorise
from api.auth import authenticate
from api.errors import ApiError
from api.service.calls import now, refusal_details, require, temporal_call
from api.service.cases import CaseService, LoadedCase
from store.accounts import AuthenticationFailed, Principal
from store.events import StoredEvent

__all__ = ["now", "refusal_details", "require", "temporal_call"]  # shared with the routes

log = structlog.get_logger("homeward.api")

CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{5,63}$"
CaseIdPath = Annotated[str, Path(pattern=CASE_ID_PATTERN, description="the case id")]
TaskIdPath = Annotated[uuid.UUID, Path(description="the task id")]
IdempotencyKey = Annotated[str | None, Header(
    pattern=r"^[A-Za-z0-9_-]{8,64}$",
    description="Send the same key when you retry: the request is applied once and the "
    "retry gets the first answer, even after the case has moved on (a key used for "
    "another request: 422 idempotency_key_reused). Never put identity data in the key.")]


def services(request: Request) -> Any:
    return request.app.state.services


def case_service(request: Request) -> CaseService:
    return services(request).cases


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
        who = await authenticate(services(request).accounts, request, credentials.strip())
    except AuthenticationFailed as refused:
        raise ApiError(401, f"token_{refused.reason}", str(refused)) from None
    request.state.principal = who
    structlog.contextvars.bind_contextvars(user_id=who.user_id, org_id=who.org_id)
    return who


Caller = Annotated[Principal, Depends(principal)]


async def read_case_events(request: Request, case_id: str) -> list[StoredEvent]:
    return (await case_service(request).load(case_id)).events


async def facts_for(request: Request, case_id: str) -> CaseFacts | None:
    return (await case_service(request).load(case_id)).facts


async def load_case(request: Request, caller: Principal, action: Action,
                    case_id: str) -> tuple[Decision, LoadedCase]:
    """Mark the audit, read the case once, decide; raise the refusal. The loaded case
    serves every later check of the request."""
    mark(request, action, case_id)
    case = await case_service(request).load(case_id)
    decision = require(authorise(caller, action, case.facts))
    assert case.facts is not None
    return decision, case


async def authorise_case(request: Request, caller: Principal, action: Action,
                         case_id: str) -> tuple[Decision, CaseFacts]:
    """Mark the audit, load the case's facts, decide; raise the refusal."""
    decision, case = await load_case(request, caller, action, case_id)
    assert case.facts is not None
    return decision, case.facts


def handle_for(request: Request, case_id: str) -> WorkflowHandle:
    return case_service(request).handle(case_id)
