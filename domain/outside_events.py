"""Events written outside the workflows: by the API (identity sharing, operator actions)
and by the person vault (identity recorded, read, erased).

Members of the one catalogue (``domain.catalogue``) with the contract of every event: a
``type`` literal (``TYPE``), a schema version, an owning role, codes and opaque ids only.
They are not members of the workflow union (``domain.journey.events.Event``): a workflow never
appends them, and the workflow's author rule (``catalogue.may_author``) does not apply.
Who may write them is decided by ``api.access`` before the API or the vault appends.

Operators are no party to a case (the workflow's ``Role`` names only the parties): the
operator actions are owned by ``Operations.OPERATOR``.

The vault's own vocabularies (field names, field groups, purposes, erasure reasons, note
kinds) live with the vault in ``store/``; here they are codes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.kernel import ActorId, CaseId, Code, OrganisationId, RecordId, Role


class Operations(StrEnum):
    """Owners that are no party to a case."""

    OPERATOR = "operator"


class Writer(StrEnum):
    """Which part of the system appends an event type."""

    WORKFLOW = "workflow"  # through ``append_events``, checked by the author rule
    API = "api"  # after ``api.access`` allowed the request
    VAULT = "vault"  # the person vault, with every write, read and erasure
    MAINTENANCE = "maintenance"  # the scheduled maintenance runs (domain.maintenance)


StepNames = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]+(,[A-Za-z0-9_.:-]+)*$",
                                             max_length=1024)]
"""Activity names, comma-separated (the steps an operator asked to retry)."""


class _OutsideEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    schema_version: ClassVar[int] = 1
    owner: ClassVar[Role | Operations]
    also_owned_by: ClassVar[frozenset[Role]] = frozenset()
    writer: ClassVar[Writer]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.TYPE = cls.model_fields["type"].default


# --- the API: identity sharing on her named consent (decision 0022) ---------------------


class SharingGranted(_OutsideEvent):
    type: Literal["sharing.granted"] = "sharing.granted"
    owner: ClassVar[Role | Operations] = Role.SENDING_MISSION
    writer: ClassVar[Writer] = Writer.API
    org_id: OrganisationId
    consent_record_id: RecordId


class SharingRevoked(_OutsideEvent):
    """``org_id`` None: every grant of the case (her withdrawal, relayed by either mission)."""

    type: Literal["sharing.revoked"] = "sharing.revoked"
    owner: ClassVar[Role | Operations] = Role.SENDING_MISSION
    also_owned_by: ClassVar[frozenset[Role]] = frozenset({Role.RECEIVING_MISSION})
    writer: ClassVar[Writer] = Writer.API
    org_id: OrganisationId | None = None
    reason: Code


# --- the API: operator actions (decision 0026) ------------------------------------------


class OperatorRetryRequested(_OutsideEvent):
    type: Literal["operator.retry_requested"] = "operator.retry_requested"
    owner: ClassVar[Role | Operations] = Operations.OPERATOR
    writer: ClassVar[Writer] = Writer.API
    step: StepNames


class OperatorTaskReassigned(_OutsideEvent):
    """``to_user`` None: back to the whole organisation."""

    type: Literal["operator.task_reassigned"] = "operator.task_reassigned"
    owner: ClassVar[Role | Operations] = Operations.OPERATOR
    writer: ClassVar[Writer] = Writer.API
    task_id: UUID
    kind: Code
    org: OrganisationId
    from_user: ActorId | None = None
    to_user: ActorId | None = None
    reason: Code


class OperatorEscalated(_OutsideEvent):
    type: Literal["operator.escalated"] = "operator.escalated"
    owner: ClassVar[Role | Operations] = Operations.OPERATOR
    writer: ClassVar[Writer] = Writer.API
    reason: Code


# --- the person vault: field names, purposes and reasons, never a value (decision 0011) -


class NoteRef(BaseModel):
    """A note added to her file: its id and kind, never its text. Stored as ``note_id``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: UUID = Field(alias="note_id")
    kind: Code


class IdentityRecorded(_OutsideEvent):
    """Which fields were written, or which note was added; never a value."""

    type: Literal["identity.recorded"] = "identity.recorded"
    owner: ClassVar[Role | Operations] = Role.SENDING_MISSION
    # The receiving mission adds notes (wellbeing, assessments) to her file.
    also_owned_by: ClassVar[frozenset[Role]] = frozenset({Role.RECEIVING_MISSION})
    writer: ClassVar[Writer] = Writer.VAULT
    fields: tuple[Code, ...] = ()
    # Stored as ``notes`` (the key is fixed by stored history); ids and kinds only.
    added: tuple[NoteRef, ...] = Field(default=(), alias="notes")


class IdentityRead(_OutsideEvent):
    """A disclosure: its purpose and field groups (who and when: the event's author, time)."""

    type: Literal["identity.read"] = "identity.read"
    owner: ClassVar[Role | Operations] = Role.SENDING_MISSION
    # The receiving mission, and an organisation her consent names or her guardian's.
    also_owned_by: ClassVar[frozenset[Role]] = frozenset({Role.RECEIVING_MISSION,
                                                          Role.PARTNER})
    writer: ClassVar[Writer] = Writer.VAULT
    purpose: Code
    field_groups: tuple[Code, ...]


class IdentityErased(_OutsideEvent):
    """Her data key destroyed (crypto-shredding): on her request, or at retention's end."""

    type: Literal["identity.erased"] = "identity.erased"
    owner: ClassVar[Role | Operations] = Role.SENDING_MISSION
    also_owned_by: ClassVar[frozenset[Role]] = frozenset({Role.SYSTEM})
    writer: ClassVar[Writer] = Writer.VAULT
    reason: Code


# --- case packages between deployments (decision 0067): ids, codes, counts, hashes -----

ChainHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
KeyFingerprint = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]


class CaseExported(_OutsideEvent):
    """A package of the case sent to another deployment: to whom, which package, how much
    of the chain, and which identity field groups it carried (never a value)."""

    type: Literal["case.exported"] = "case.exported"
    owner: ClassVar[Role | Operations] = Role.SYSTEM
    writer: ClassVar[Writer] = Writer.API
    recipient_org: OrganisationId
    package_id: UUID
    event_count: int = Field(ge=1)
    chain_head: ChainHash
    field_groups: tuple[Code, ...] = ()


class CaseImported(_OutsideEvent):
    """The case came in a package from another deployment, whose events precede this one
    with their own hashes: from whom, signed with which key, for which organisation here."""

    type: Literal["case.imported"] = "case.imported"
    owner: ClassVar[Role | Operations] = Role.SYSTEM
    writer: ClassVar[Writer] = Writer.API
    source_org: OrganisationId
    recipient_org: OrganisationId
    package_id: UUID
    event_count: int = Field(ge=1)
    chain_head: ChainHash
    sender_key_fingerprint: KeyFingerprint
    field_groups: tuple[Code, ...] = ()


# --- repeat returnees (decision 0070): a person's deliberate decision, ids and codes ----


class LinkBasis(StrEnum):
    """Why the linking organisation could link the other case."""

    BOTH_VISIBLE = "both_visible"  # her organisation may see both cases
    IDENTITY_MATCH = "identity_match"  # the vault's blind index matched the two cases


class CaseLinked(_OutsideEvent):
    """The case and ``linked_case_id`` are the same person's: she was assisted before.
    Appended to the stream of the case the linking organisation acts on; never what
    matched, never identity."""

    type: Literal["case.linked"] = "case.linked"
    owner: ClassVar[Role | Operations] = Role.SENDING_MISSION
    writer: ClassVar[Writer] = Writer.API
    linked_case_id: CaseId
    basis: LinkBasis


API_EVENTS: tuple[type[_OutsideEvent], ...] = (
    SharingGranted,
    SharingRevoked,
    OperatorRetryRequested,
    OperatorTaskReassigned,
    OperatorEscalated,
    CaseExported,
    CaseImported,
    CaseLinked,
)
VAULT_EVENTS: tuple[type[_OutsideEvent], ...] = (IdentityRecorded, IdentityRead, IdentityErased)
