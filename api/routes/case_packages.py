"""Case packages between deployments, for administrators (decision 0067): export a case
to a trusted deployment's key, import a package signed by one. The same use cases as
``homeward case export`` and ``homeward case import``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from api.access import Action, authorise, authorise_role
from api.deps import CASE_ID_PATTERN, Caller, facts_for, mark, require, services
from api.errors import ApiError
from api.service.case_packages import CasePackages, PackageRefused
from store.packages import parse
from store.trust import TrustError, load_own_keys

router = APIRouter(tags=["case packages"])

PACKAGE_MEDIA_TYPE = "application/vnd.homeward.case-package"
# What each refusal answers: a package at odds with what is held is a conflict; one that is
# not for this deployment, not trusted or altered cannot be processed.
_STATUS = {"no_such_case": 404, "case_exists": 409, "package_conflict": 409}


class ImportOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str
    package_id: str
    source_org: str
    event_count: int
    chain_head: str
    field_groups: list[str]
    already_imported: bool


def _packages(request: Request) -> CasePackages:
    svc = services(request)
    try:
        own = load_own_keys()
    except TrustError as error:
        raise ApiError(409, "package_keys_missing", str(error)) from None
    return CasePackages(svc.engine, svc.store, svc.vault, own)


def _refused(refusal: PackageRefused) -> ApiError:
    return ApiError(_STATUS.get(refusal.code, 422), refusal.code,
                    f"{refusal.message}; nothing was written")


@router.post("/admin/case-packages/export", response_class=Response,
             summary="Export a case to another deployment: the package, encrypted to its "
                     "trusted key and signed by this deployment",
             responses={200: {"content": {PACKAGE_MEDIA_TYPE: {}},
                              "description": "the package file"},
                        404: {"description": "not_found: no such case, or not one this "
                                             "administrator's organisation may export"}})
async def export_case_package(
    request: Request, caller: Caller,
    case_id: Annotated[str, Query(pattern=CASE_ID_PATTERN, description="the case id")],
    to: Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$",
                             description="the recipient organisation: one whose key "
                                         "`homeward keys trust` added")],
) -> Response:
    mark(request, Action.CASE_PACKAGE_EXPORT, case_id)
    require(authorise_role(caller, Action.CASE_PACKAGE_EXPORT))
    require(authorise(caller, Action.CASE_PACKAGE_EXPORT, await facts_for(request, case_id)))
    try:
        exported = await _packages(request).export(case_id, to, actor=caller.user_id)
    except PackageRefused as refusal:
        raise _refused(refusal) from None
    package_id = str(exported.manifest.package_id)
    return Response(exported.package, media_type=PACKAGE_MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{package_id}.hwpkg"',
        "X-Package-Id": package_id, "Cache-Control": "no-store"})


@router.post("/admin/case-packages/import", response_model=ImportOut,
             summary="Import a case package signed by a trusted deployment: all of it, or "
                     "nothing; the same package again answers as the first import did",
             openapi_extra={"requestBody": {"required": True, "content": {
                 PACKAGE_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}})
async def import_case_package(request: Request, caller: Caller) -> ImportOut:
    mark(request, Action.CASE_PACKAGE_IMPORT)
    require(authorise_role(caller, Action.CASE_PACKAGE_IMPORT))
    data = await request.body()
    try:
        parse(data)  # a file that is no package is refused before keys are looked at
        result = await _packages(request).import_(data, actor=caller.user_id)
    except PackageRefused as refusal:
        raise _refused(refusal) from None
    request.state.audit.case_id = result.case_id
    return ImportOut(case_id=result.case_id, package_id=str(result.package_id),
                     source_org=result.source_org, event_count=result.event_count,
                     chain_head=result.chain_head, field_groups=list(result.field_groups),
                     already_imported=result.already_imported)
