"""The person vault through the API: identity is recorded and read here only, always for
a stated purpose, by the missions of the case or an organisation a recorded consent
names. Every read is recorded (``identity.read``) before anything is returned."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.access import IDENTITY_GROUPS, Action, shareable
from api.deps import Caller, CaseIdPath, authorise_case, case_service, facts_for, services
from api.errors import ApiError
from api.references import check_references
from api.schemas import (
    DisclosureOut,
    NoteOut,
    RecordedOut,
    RevokeOut,
    ShareOut,
    SharingPage,
)
from api.service import pages
from domain.kernel import OrganisationId, RecordId
from domain.outside_events import SharingGranted, SharingRevoked
from store.vault import (
    ErasedPerson,
    FieldGroup,
    NoteKind,
    PersonErased,
    PersonNotFound,
    PersonRecord,
    ReadPurpose,
    VaultError,
    record_id_of,
)

router = APIRouter(tags=["person vault"])

OrgIdPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$",
                                description="an organisation id")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class NoteIn(_Body):
    kind: NoteKind
    text: str = Field(min_length=1, max_length=50_000)


class DisclosureIn(_Body):
    purpose: ReadPurpose
    field_groups: Annotated[list[FieldGroup], Field(min_length=1, max_length=8)]


class ShareIn(_Body):
    org_id: OrganisationId
    consent_record_id: RecordId = Field(
        description="The vault record (a note) of her signed consent naming this organisation.")


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


@router.put("/cases/{case_id}/person", response_model=RecordedOut,
            summary="Record (part of) the person's identity")
async def record_person(case_id: CaseIdPath, body: PersonRecord, request: Request,
                        caller: Caller) -> RecordedOut:
    await authorise_case(request, caller, Action.IDENTITY_RECORD, case_id)
    if not body.model_fields_set:
        raise ApiError(422, "empty_record", "the record sets no field")
    try:
        await services(request).vault.record(case_id, body, by_org=caller.org_id,
                                             by_actor=caller.user_id)
    except PersonErased as error:
        raise ApiError(410, "erased", str(error)) from None
    except VaultError as error:
        raise ApiError(409, "vault_refused", str(error)) from None
    return RecordedOut(case_id=case_id, recorded_fields=sorted(body.model_fields_set))


@router.post("/cases/{case_id}/person/notes", status_code=201, response_model=NoteOut,
             summary="Add a note to the person's file (interview answer, assessment ...)")
async def add_note(case_id: CaseIdPath, body: NoteIn, request: Request,
                   caller: Caller) -> NoteOut:
    await authorise_case(request, caller, Action.IDENTITY_NOTE, case_id)
    try:
        note_id = await services(request).vault.add_note(case_id, body.kind, body.text,
                                                         by_org=caller.org_id,
                                                         by_actor=caller.user_id)
    except PersonErased as error:
        raise ApiError(410, "erased", str(error)) from None
    except VaultError as error:
        raise ApiError(409, "vault_refused", str(error)) from None
    return NoteOut(case_id=case_id, record_id=record_id_of(note_id), kind=body.kind)


@router.post("/cases/{case_id}/person/disclosures", response_model=DisclosureOut,
             response_model_exclude_unset=True,
             summary="Read identity data for a stated purpose (the read is recorded)")
async def disclose(case_id: CaseIdPath, body: DisclosureIn, request: Request,
                   caller: Caller, response: Response) -> dict[str, Any]:
    decision, _ = await authorise_case(request, caller, Action.IDENTITY_READ, case_id)
    allowed = IDENTITY_GROUPS.get(decision.view, frozenset())
    refused = sorted(g.value for g in set(body.field_groups) - allowed)
    if refused:
        raise ApiError(403, "field_groups_not_needed",
                       f"your organisation's part of this case does not need: "
                       f"{', '.join(refused)}")
    try:
        view = await services(request).vault.read(
            case_id, purpose=body.purpose, reader_org=caller.org_id,
            reader_actor=caller.user_id, groups=body.field_groups)
    except PersonNotFound:
        raise ApiError(404, "no_identity", "the vault holds no identity for this case") from None
    except VaultError as error:
        raise ApiError(409, "vault_refused", str(error)) from None
    _no_store(response)
    if isinstance(view, ErasedPerson):
        raise ApiError(410, "erased",
                       f"the identity of this case was erased on {view.erased_at:%Y-%m-%d}")
    record = view.record.model_dump(include={  # python: DisclosureOut.person serialises it
        f for g in view.groups for f in _fields(g)})
    notes = [{"record_id": record_id_of(n.note_id), "kind": n.kind.value, "text": n.text,
              "recorded_at": n.recorded_at, "recorded_by_org": n.recorded_by_org}
             for n in view.notes]
    return {"case_id": case_id, "purpose": body.purpose.value,
            "field_groups": sorted(g.value for g in view.groups), "person": record,
            "notes": notes}


def _fields(group: FieldGroup) -> tuple[str, ...]:
    from store.vault import FIELD_GROUPS

    return FIELD_GROUPS[group]


# --- sharing on recorded consent --------------------------------------------------------


@router.post("/cases/{case_id}/sharing", status_code=201, response_model=ShareOut,
             summary="Share identity with an organisation her recorded consent names")
async def share(case_id: CaseIdPath, body: ShareIn, request: Request,
                caller: Caller) -> ShareOut:
    _, facts = await authorise_case(request, caller, Action.SHARING_MANAGE, case_id)
    if facts.consent_withdrawn:
        raise ApiError(409, "consent_withdrawn",
                       "she withdrew her consent: identity is not shared any more")
    if body.org_id in (facts.sending_mission, facts.receiving_mission) and (
            body.org_id not in facts.transferred_to):  # a transfer's holder needs it (0068)
        raise ApiError(422, "already_a_mission",
                       f"{body.org_id} is a mission of this case and needs no sharing consent")
    kind = await services(request).accounts.org_kind(body.org_id)
    if kind is None or not shareable(kind):
        raise ApiError(422, "not_shareable",
                       "identity can be shared only with a registered mission or partner "
                       "organisation, never with operators or analysts")
    # Her signed consent is a record of this case's vault (decision 0046).
    await check_references(request, case_id, body)
    await case_service(request).append_event(
        caller, case_id, SharingGranted.TYPE,
        {"org_id": body.org_id, "consent_record_id": body.consent_record_id})
    after = await facts_for(request, case_id)
    if after is not None and after.consent_withdrawn:  # withdrawn meanwhile: the grant is void
        raise ApiError(409, "consent_withdrawn",
                       "she withdrew her consent while this was being shared: nothing is shared")
    return ShareOut(case_id=case_id, shared_with=body.org_id,
                    consent_record_id=body.consent_record_id)


@router.delete("/cases/{case_id}/sharing/{org_id}", response_model=RevokeOut,
               summary="End identity sharing with an organisation, at once")
async def revoke_sharing(case_id: CaseIdPath, org_id: OrgIdPath,
                         request: Request, caller: Caller) -> RevokeOut:
    _, facts = await authorise_case(request, caller, Action.SHARING_MANAGE, case_id)
    if org_id not in facts.shared_with:
        raise ApiError(404, "not_shared", f"identity is not shared with {org_id}")
    await case_service(request).append_event(
        caller, case_id, SharingRevoked.TYPE,
        {"org_id": org_id, "reason": "revoked_by_sending_mission"})
    return RevokeOut(case_id=case_id, revoked=org_id)


@router.get("/cases/{case_id}/sharing", response_model=SharingPage,
            summary="With whom identity is shared, on what consent (grants by organisation "
                    "id, a page at a time)")
async def list_sharing(case_id: CaseIdPath, request: Request, response: Response,
                       caller: Caller, cursor: pages.CursorQuery = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    _, facts = await authorise_case(request, caller, Action.SHARING_VIEW, case_id)
    position = pages.decode("sharing", cursor, [pages.text])
    svc = services(request)
    await svc.read_models_lag(request, response)
    rows = await svc.read_models.sharing(case_id, after=position[0] if position else None,
                                         limit=limit + 1)
    shown, next_cursor = pages.page("sharing", rows, limit, lambda r: [r["org_id"]])
    return {"case_id": case_id, "active": sorted(facts.shared_with), "grants": shown,
            "next_cursor": next_cursor}
