"""Transfers between organisations (decision 0068): the sending mission's coordinator
offers the receiving mission's role, or the border partner's, to another organisation
with a coded reason; the organisation offered it answers through its task inbox (a
``transfer_decision`` task: ``POST /tasks/{task_id}/complete`` with ``accepted``)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.access import Action
from api.deps import Caller, CaseIdPath, case_service, load_case, services
from api.service.transfers import Offer, TransferService
from domain.journey.vocabulary import TransferReason, TransferredRole
from domain.kernel import OrganisationId

router = APIRouter(tags=["transfers"])


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    role: TransferredRole = Field(description="The part of the case handed on.")
    to_org: OrganisationId = Field(description="The organisation offered the role: a "
                                   "receiving mission, or a partner NGO for the border "
                                   "partner's role.")
    reason: TransferReason
    details: Annotated[str | None, Field(
        default=None, min_length=1, max_length=5_000,
        description="Optional: kept in her file in the person vault as a note, never in "
        "an event, the workflow or a log; the event names its record id.")]


class TransferOut(BaseModel):
    case_id: str
    transfer_id: UUID = Field(description="Also the id of the transfer decision task "
                              "opened for the organisation offered the role.")
    role: TransferredRole
    from_org: str
    to_org: str
    status: str = Field(description="requested: awaiting the answer.")
    duplicate: bool = Field(description="Requested already: nothing was written.")


@router.post("/cases/{case_id}/transfers", response_model=TransferOut, status_code=201,
             summary="Offer the receiving mission's or the border partner's role to another "
                     "organisation (the sending mission, before she leaves)",
             responses={200: {"model": TransferOut,
                              "description": "The same transfer was requested already "
                              "(nothing written)."},
                        409: {"description": "transfer_too_late, transfer_pending, "
                              "already_holder, already_a_party, case_closed"},
                        422: {"description": "unknown_organisation, "
                              "unsuitable_organisation"}})
async def request_transfer(case_id: CaseIdPath, body: TransferIn, request: Request,
                           response: Response, caller: Caller) -> TransferOut:
    _, case = await load_case(request, caller, Action.CASE_TRANSFER, case_id)
    answer = await TransferService(case_service(request), services(request).accounts).request(
        caller, case, Offer(body.role, body.to_org, body.reason, body.details))
    if answer.duplicate:
        response.status_code = 200
    return TransferOut(case_id=case_id, transfer_id=answer.transfer_id, role=answer.role,
                       from_org=answer.from_org, to_org=answer.to_org, status="requested",
                       duplicate=answer.duplicate)
