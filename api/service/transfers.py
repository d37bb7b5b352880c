"""Handing a role of a case to another organisation (decision 0068): checked on the case's
recorded events, the reason's details kept in the person vault, then forwarded to the
case's workflow as the ``request_transfer`` Update, which decides again and opens the
transfer decision task for the organisation offered the role. The answer is that task's
completion, through the task inbox like any other."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from api.errors import ApiError
from api.service.calls import now
from api.service.cases import CaseService, LoadedCase
from domain import boundary as wf
from domain.journey import messages as msg
from domain.journey import transfers
from domain.journey.decider import Context, RequestTransfer, decide
from domain.journey.vocabulary import TransferReason, TransferredRole
from domain.kernel import Refusal
from store.accounts import Accounts, OrgKind, Principal
from store.vault import NoteKind, record_id_of

# The kind of organisation that may hold each role.
HOLDER_KIND = {TransferredRole.RECEIVING_MISSION: OrgKind.RECEIVING_MISSION,
               TransferredRole.BORDER_PARTNER: OrgKind.PARTNER_NGO}


@dataclass(frozen=True)
class Offer:
    role: TransferredRole
    to_org: str
    reason: TransferReason
    details: str | None = None  # kept in the vault as a note, never in an event


class TransferService:
    def __init__(self, cases: CaseService, accounts: Accounts) -> None:
        self.cases = cases
        self.accounts = accounts

    async def request(self, caller: Principal, case: LoadedCase,
                      offer: Offer) -> msg.TransferRequested:
        kind = await self.accounts.org_kind(offer.to_org)
        if kind is None:
            raise ApiError(422, "unknown_organisation",
                           f"{offer.to_org} is not a registered organisation")
        if kind is not HOLDER_KIND[offer.role]:
            raise ApiError(422, "unsuitable_organisation",
                           f"the {offer.role.value.replace('_', ' ')} role goes to a "
                           f"{HOLDER_KIND[offer.role].value.replace('_', ' ')}, and "
                           f"{offer.to_org} is a {kind.value.replace('_', ' ')}")
        pending = transfers.pending_for(case.state, offer.role)
        if pending is not None and pending.to_org == offer.to_org:
            return _answer(pending, duplicate=True)  # requested already: nothing written
        decision = decide(case.state, RequestTransfer(UUID(int=0), offer.role, offer.to_org,
                                                      offer.reason, now()),
                          Context(now=now()))
        if isinstance(decision, Refusal):
            raise ApiError(409, decision.code, decision.reason)
        details = None
        if offer.details:
            note = await self.cases.add_note(caller, case.case_id, NoteKind.ASSESSMENT_NOTE,
                                             offer.details)
            details = record_id_of(note)
        request = msg.TransferRequest(organisation_id=caller.org_id, actor_id=caller.user_id,
                                      role=offer.role, to_org=offer.to_org,
                                      reason=offer.reason, details_record_id=details)
        return await self.cases.call(self.cases.handle(case.case_id).execute_update(
            wf.REQUEST_TRANSFER, request, result_type=msg.TransferRequested),
            what="requesting the transfer")


def _answer(pending, *, duplicate: bool) -> msg.TransferRequested:
    return msg.TransferRequested(transfer_id=pending.transfer_id, role=pending.role,
                                 from_org=pending.from_org, to_org=pending.to_org,
                                 duplicate=duplicate)
