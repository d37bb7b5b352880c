"""The catalogue: every event type a case stream holds, with its owner, in one place.

Three writers append to a case's stream, and their events are all here, as pydantic
models with a ``type`` literal (``Model.TYPE``), a schema version and an owning role:

- the workflows: the journey (``domain.journey.events``) and the follow-up
  (``domain.reintegration.events``); ``WorkflowEvent`` is their union, the one the
  envelope of the ``append_events`` activity (``EventEnvelope``, below) carries;
- the API (identity sharing, operator actions) and the person vault (identity recorded,
  read, erased): ``domain.outside_events``.

``CaseEvent`` is the union of all of them. Every reader of stored events (projections,
access facts, the timeline, the lifecycle) names types by ``Model.TYPE`` or by the sets
below, never by a string of its own, and skips a type that is not catalogued explicitly:
a renamed event fails at import, not silently in a read model or in access control.

The scheduled maintenance runs' events (``domain.maintenance``) are catalogued too, so that
readers skip them as known types; they live in streams of their own, never a case's, and
are no member of ``CaseEvent``.

Old schema versions are upcast on read (``parse_event``), never rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Union
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain import maintenance
from domain import outside_events as outside
from domain.journey import events as journey
from domain.kernel import ActorId, AgeCategory, CaseId, OrganisationId, Role
from domain.outside_events import Operations, Writer
from domain.reintegration import events as follow_up
from domain.trafficking import TRAFFICKING_EVENTS

JOURNEY_EVENTS: tuple[type[BaseModel], ...] = journey.JOURNEY_EVENTS
FOLLOW_UP_EVENTS: tuple[type[BaseModel], ...] = follow_up.REINTEGRATION_EVENTS
WORKFLOW_EVENTS: tuple[type[BaseModel], ...] = (*JOURNEY_EVENTS, *FOLLOW_UP_EVENTS)
"""The events a workflow appends (the journey's and the follow-up's), in union order."""
# The account of how trafficking occurred is the API's too, after its decider (0066).
API_EVENTS: tuple[type[BaseModel], ...] = (*outside.API_EVENTS, *TRAFFICKING_EVENTS)
VAULT_EVENTS: tuple[type[BaseModel], ...] = outside.VAULT_EVENTS
MAINTENANCE_EVENTS: tuple[type[BaseModel], ...] = maintenance.MAINTENANCE_EVENTS

WorkflowEvent = Annotated[
    Union[WORKFLOW_EVENTS],  # type: ignore[valid-type]  # noqa: UP007
    Field(discriminator="type"),
]
"""An event either workflow appends: the one union the envelope (and so Temporal) carries."""

CaseEvent = Annotated[
    Union[(*WORKFLOW_EVENTS, *API_EVENTS, *VAULT_EVENTS)],  # type: ignore[valid-type]  # noqa: UP007
    Field(discriminator="type"),
]
"""Any event of a case stream, whoever wrote it."""

CATALOGUE: dict[str, type[BaseModel]] = {
    cls.TYPE: cls  # type: ignore[attr-defined]
    for cls in (*WORKFLOW_EVENTS, *API_EVENTS, *VAULT_EVENTS, *MAINTENANCE_EVENTS)
}

_WRITERS: dict[str, Writer] = {
    **{cls.TYPE: Writer.WORKFLOW for cls in WORKFLOW_EVENTS},  # type: ignore[attr-defined]
    **{cls.TYPE: cls.writer  # type: ignore[attr-defined]
       for cls in (*API_EVENTS, *VAULT_EVENTS, *MAINTENANCE_EVENTS)},
}

# --- families of types that readers ask about ------------------------------------------

OUTCOME_TYPES: frozenset[str] = journey.OUTCOME_TYPES
FOLLOW_UP_TYPES = frozenset(cls.TYPE for cls in FOLLOW_UP_EVENTS)  # type: ignore[attr-defined]
SHARING_TYPES = frozenset({outside.SharingGranted.TYPE, outside.SharingRevoked.TYPE})
OPERATOR_TYPES = frozenset({outside.OperatorRetryRequested.TYPE,
                            outside.OperatorTaskReassigned.TYPE,
                            outside.OperatorEscalated.TYPE})
API_TYPES = SHARING_TYPES | OPERATOR_TYPES
IDENTITY_TYPES = frozenset(cls.TYPE for cls in VAULT_EVENTS)  # type: ignore[attr-defined]

_OUTCOME_PREFIX = "outcome."


def outcome_code(event_type_: str) -> str:
    """The outcome an outcome event records, as read models and statistics show it
    (``outcome.returned`` → ``returned``)."""
    if event_type_ not in OUTCOME_TYPES:
        raise UnknownEventType(event_type_)
    return event_type_.removeprefix(_OUTCOME_PREFIX)


# --- owners ------------------------------------------------------------------------------


class UnknownEventType(ValueError):
    def __init__(self, event_type_: str):
        super().__init__(f"unknown event type {event_type_!r}")


class UnsupportedSchemaVersion(ValueError):
    pass


def is_catalogued(event_type_: str) -> bool:
    return event_type_ in CATALOGUE


def owner_of(event_type_: str) -> Role | Operations:
    try:
        return CATALOGUE[event_type_].owner  # type: ignore[attr-defined]
    except KeyError:
        raise UnknownEventType(event_type_) from None


def writer_of(event_type_: str) -> Writer:
    try:
        return _WRITERS[event_type_]
    except KeyError:
        raise UnknownEventType(event_type_) from None


def authors_of(cls: type[BaseModel]) -> frozenset[Role | Operations]:
    """The roles that may append an event type: its owner, and a few co-owners."""
    return frozenset({cls.owner}) | getattr(cls, "also_owned_by", frozenset())  # type: ignore[attr-defined]


def may_author(role: Role, event_type_: str) -> bool:
    """The workflows' author rule: only the owning role appends an event type through a
    workflow; nobody appends an unknown type, nor one the API or the vault writes (those
    are allowed by ``api.access`` before they are appended)."""
    if _WRITERS.get(event_type_) is not Writer.WORKFLOW:
        return False
    return role in authors_of(CATALOGUE[event_type_])


def payload_of(event: BaseModel) -> dict[str, Any]:
    """The JSON payload stored for an event (its type lives in its own column), under the
    stored names (a few fields of the vault's events are named apart from their key)."""
    return event.model_dump(mode="json", exclude={"type"}, by_alias=True)


# --- upcasting --------------------------------------------------------------------------

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""(event type, from version) → function returning the payload at from version + 1."""


def upcaster(event_type_: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def register(fn: Upcaster) -> Upcaster:
        key = (event_type_, from_version)
        if key in UPCASTERS:
            raise ValueError(f"two upcasters for {key}")
        UPCASTERS[key] = fn
        return fn

    return register


@upcaster(journey.ReferralRegistered.TYPE, 1)
def _referral_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 (before age bands were recorded) called the first placement ``placement`` and had
    no age. An age that was never recorded is unknown, and unknown age means a minor: the
    8% of the programme's cases with no age were exactly the ones this rule protects."""
    upcast = {k: v for k, v in payload.items() if k != "placement"}
    upcast["first_placement"] = payload["placement"]
    upcast.setdefault("age_category", AgeCategory.UNKNOWN.value)
    return upcast


def parse_event(event_type_: str, schema_version: int, payload: dict[str, Any]) -> Any:
    """A stored payload as the current event model, upcasting old schema versions."""
    cls = CATALOGUE.get(event_type_)
    if cls is None:
        raise UnknownEventType(event_type_)
    current: int = cls.schema_version  # type: ignore[attr-defined]
    if schema_version < 1 or schema_version > current:
        raise UnsupportedSchemaVersion(
            f"{event_type_} schema version {schema_version} (current: {current})"
        )
    data = dict(payload)
    data.pop("type", None)
    for version in range(schema_version, current):
        step = UPCASTERS.get((event_type_, version))
        if step is None:
            raise UnsupportedSchemaVersion(f"no upcaster for {event_type_} v{version}")
        data = step(data)
    return cls.model_validate({**data, "type": event_type_})


# --- the envelope both workflows append through (the ``append_events`` activity) -------


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EventEnvelope(_Envelope):
    """One event as the workflow decided it: id and time made in workflow code (the same on
    replay), the domain event, and on whose behalf it is written."""

    event_id: UUID
    occurred_at: datetime
    author_org: OrganisationId
    actor: ActorId
    event: WorkflowEvent


class AppendEventsRequest(_Envelope):
    case_id: CaseId
    events: tuple[EventEnvelope, ...] = Field(min_length=1, max_length=50)


class AppendEventsResult(_Envelope):
    versions: tuple[int, ...]
