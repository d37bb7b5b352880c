"""How trafficking occurred (seed rec. 17): the sending mission records a coded account,
every question skippable; both missions read it (decision 0066). Codes only: a narrative
is a note in the person vault (``POST /cases/{case_id}/person/notes``)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from api.access import Action
from api.deps import Caller, CaseIdPath, case_service, load_case
from api.service.trafficking import Account, TraffickingService, current
from domain.trafficking import TraffickingAccount

router = APIRouter(tags=["trafficking"])


class TraffickingAccountIn(TraffickingAccount):
    """Every field optional: a question skipped is left out (or null, or empty). The
    account replaces the case's earlier one whole."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class TraffickingAccountOut(TraffickingAccount):
    case_id: str
    recorded_at: datetime | None = Field(description="When the account now held was "
                                         "recorded; null: none yet.")
    recorded: bool = Field(default=False, description="Whether this request recorded it "
                           "(false: it was the account already held).")


def _out(case_id: str, held: Account) -> TraffickingAccountOut:
    return TraffickingAccountOut(case_id=case_id, recorded_at=held.recorded_at,
                                 recorded=held.recorded, **held.account.model_dump())


@router.put("/cases/{case_id}/trafficking-account", response_model=TraffickingAccountOut,
            summary="Record how trafficking occurred (the sending mission): recruitment, "
                    "exploitation, route, duration, transport; codes aligned with HTCDS",
            responses={409: {"description": "referral_not_recorded, "
                             "not_identified_as_victim"}})
async def record_trafficking_account(case_id: CaseIdPath, body: TraffickingAccountIn,
                                     request: Request, caller: Caller) -> TraffickingAccountOut:
    _, case = await load_case(request, caller, Action.TRAFFICKING_RECORD, case_id)
    held = await TraffickingService(case_service(request).store).record(
        caller, case_id, case.events, body)
    return _out(case_id, held)


@router.get("/cases/{case_id}/trafficking-account", response_model=TraffickingAccountOut,
            summary="How trafficking occurred, as the sending mission recorded it")
async def trafficking_account(case_id: CaseIdPath, request: Request,
                              caller: Caller) -> TraffickingAccountOut:
    _, case = await load_case(request, caller, Action.TRAFFICKING_VIEW, case_id)
    return _out(case_id, current(case.events))
