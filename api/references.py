"""The one check of the ids a request names (decision 0046).

A record id (``RecordId``: ``rec_`` and 8-64 letters or digits) is an opaque reference to
a record of the person vault; its shape alone would let any text through (a name, a birth
date: ``rec_AnaPopescu19870319``) into the workflow's history and the events. So every
record id in a request body must name a record of THIS case's vault (a record of another
case is refused too), and every organisation it names (``provider_org``, ``guardian_org``,
...) must be a registered mission or partner organisation. The check runs after the
caller is authorised and before anything is forwarded to Temporal or written; a refusal
is a 422 ``unknown_record`` or ``unknown_organisation`` naming the fields, never their
values.

The fields are found by their type, not their name: every field of the body's models
(nested models, lists and unions included) typed ``RecordId`` or ``OrganisationId``. A
new result kind with a record id is checked without a change here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, get_args, get_origin

from fastapi import Request
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from api.access import SHAREABLE_ORG_KINDS
from api.errors import ApiError
from domain.kernel import OrganisationId, RecordId


class RefKind(StrEnum):
    RECORD = "record"
    ORGANISATION = "organisation"


_CONSTRAINTS = {RefKind.RECORD: RecordId.__metadata__,
                RefKind.ORGANISATION: OrganisationId.__metadata__}


@dataclass(frozen=True)
class Reference:
    field: str  # where in the body, e.g. ``result.lines.0.provider_org``
    kind: RefKind
    value: str


def _kind_of(metadata: tuple[Any, ...] | list[Any]) -> RefKind | None:
    for kind, constraints in _CONSTRAINTS.items():
        if all(c in metadata for c in constraints):
            return kind
    return None


def _annotation_kind(annotation: Any) -> RefKind | None:
    """``RecordId``, ``RecordId | None``, ``tuple[RecordId, ...]`` ... (not inside a model)."""
    if get_origin(annotation) is Annotated:
        kind = _kind_of(annotation.__metadata__)
        if kind is not None:
            return kind
    for arg in get_args(annotation):
        if not (isinstance(arg, type) and issubclass(arg, BaseModel)):
            kind = _annotation_kind(arg)
            if kind is not None:
                return kind
    return None


def _field_kind(info: FieldInfo) -> RefKind | None:
    return _kind_of(info.metadata) or _annotation_kind(info.annotation)


def references(model: BaseModel, prefix: str = "") -> list[Reference]:
    """Every record and organisation id set in ``model``, with where it is."""
    return list(_walk_model(model, prefix))


def _walk_model(model: BaseModel, prefix: str) -> Iterator[Reference]:
    for name, info in type(model).model_fields.items():
        yield from _walk(getattr(model, name), _field_kind(info), f"{prefix}{name}")


def _walk(value: Any, kind: RefKind | None, where: str) -> Iterator[Reference]:
    if value is None:
        return
    if isinstance(value, BaseModel):
        yield from _walk_model(value, f"{where}.")
    elif isinstance(value, str):
        if kind is not None:
            yield Reference(where, kind, value)
    elif isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            yield from _walk(item, kind, f"{where}.{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, kind, f"{where}.{key}")


def reference_fields(model: type[BaseModel], prefix: str = "") -> dict[str, RefKind]:
    """The fields of a model class (and the models it holds) that are record or
    organisation ids: what ``references`` looks at, for tests and documentation."""
    found: dict[str, RefKind] = {}
    for name, info in model.model_fields.items():
        kind = _field_kind(info)
        if kind is not None:
            found[f"{prefix}{name}"] = kind
        for inner in _models_in(info.annotation):
            found.update(reference_fields(inner, f"{prefix}{name}."))
    return found


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in get_args(annotation):
        yield from _models_in(arg)


# --- the check --------------------------------------------------------------------------


async def check_references(request: Request, case_id: str, body: BaseModel,
                           prefix: str = "") -> None:
    """Refuse the request unless every record id in ``body`` names a record of the case's
    vault and every organisation id a registered mission or partner organisation.

    Two queries at most (one for the records, one for the organisations), none when the
    body names no id. Call it after authorising the caller and before any write."""
    refs = references(body, prefix)
    records = [r for r in refs if r.kind is RefKind.RECORD]
    if records:
        services = request.app.state.services
        known = await services.vault.existing_records(case_id, {r.value for r in records})
        unknown = _fields(r for r in records if r.value not in known)
        if unknown:
            raise ApiError(
                422, "unknown_record",
                f"{_names(unknown)} {'is' if len(unknown) == 1 else 'are'} not a record of "
                "this case's vault: record it first (POST /cases/{case_id}/person/notes) "
                "and send the record_id that answers", fields=unknown)
    orgs = [r for r in refs if r.kind is RefKind.ORGANISATION]
    if orgs:
        accounts = request.app.state.services.accounts
        kinds = await accounts.org_kinds({r.value for r in orgs})
        unknown = _fields(r for r in orgs if kinds.get(r.value) not in SHAREABLE_ORG_KINDS)
        if unknown:
            raise ApiError(
                422, "unknown_organisation",
                f"{_names(unknown)} must name a registered mission or partner organisation",
                fields=unknown)


def _fields(refs: Iterator[Reference]) -> list[str]:
    return sorted({r.field for r in refs})


def _names(fields: list[str]) -> str:
    return ", ".join(fields)
