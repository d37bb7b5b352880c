"""Repeat returnees: link a case to the same person's earlier case (decision 0070). A
coordinator links from her own case, when her organisation may see the other case too,
or, through the mission that holds the other case, when the vault's blind index matched
the two; anyone else is told there is no such case."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.access import Action
from api.deps import Caller, CaseIdPath, case_service, load_case
from api.service.links import LinkService
from domain.kernel import CaseId
from domain.outside_events import LinkBasis

router = APIRouter(tags=["cases"])


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    linked_case_id: CaseId = Field(description="The same person's other case: one your "
                                   "organisation may see, or the one a registration "
                                   "warning told you to ask its mission about.")


class LinkOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str
    linked_case_id: str
    basis: LinkBasis = Field(description="both_visible, or identity_match: the vault's "
                             "blind index matched the two cases.")
    linked: bool = Field(description="Whether this request recorded the link (false: the "
                         "two cases were linked already).")


@router.post("/cases/{case_id}/links", response_model=LinkOut,
             summary="Link this case to the same person's earlier case: she was assisted "
                     "before (a repeat returnee, counted once in statistics)",
             responses={404: {"description": "not_found: this case, or the other, is not "
                                             "one you may link"},
                        422: {"description": "same_case"}})
async def link_case(case_id: CaseIdPath, body: LinkIn, request: Request,
                    caller: Caller) -> LinkOut:
    _, here = await load_case(request, caller, Action.CASE_LINK, case_id)
    linked = await LinkService(case_service(request)).link(caller, here, body.linked_case_id)
    return LinkOut(case_id=linked.case_id, linked_case_id=linked.linked_case_id,
                   basis=linked.basis, linked=linked.linked)
