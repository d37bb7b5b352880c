"""What the API answers: one model per success body, so that OpenAPI says exactly what a
route sends (decision 0058). Lists are cursor pages (``next_cursor``, ``api.service.pages``).

Case and task summaries show as much as the caller's view needs (``api.access``): their
models list every field some view shows, and a route answers with the fields of the
caller's view only (``response_model_exclude_unset``), so a field missing from an answer
is one the view leaves out, never a null put in its place. None of these models carries
identity data except the answer of a disclosure (``DisclosureOut``), which is its purpose.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from domain.journey.vocabulary import ConsentChange, RoadFact
from store.vault import FieldGroup, NoteKind, PersonRecord, ReadPurpose


def _iso(at: datetime) -> str:
    return at.isoformat()


Time = Annotated[datetime, PlainSerializer(_iso, return_type=str, when_used="json"),
                 WithJsonSchema({"type": "string", "format": "date-time"})]
"""A time as the API has always written it: ISO 8601 with its offset (``+00:00``)."""

NextCursor = Annotated[str | None, Field(
    description="Send it as `cursor` for the next page; null: this is the last page.",
    examples=["WzEsImNhc2VzIiwiYy0wMDEyIl0"])]

ViewName = Literal["full", "receiving", "partner", "operations", "authored"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- cases --------------------------------------------------------------------------------


class CaseSummary(_Out):
    """A case as the caller's view shows it: codes, ids and times, never identity. Which
    fields appear depends on the view (full: the sending mission; receiving; partner:
    case_id, stage and minor only; operations)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "case_id": "c-3f1a9c0d2b7e4a5f8c1d", "sending_mission": "mission-rs",
        "receiving_mission": "mission-md", "border_partner": "ngo-md-border",
        "destination_country": "MD", "minor": False, "stage": "consent",
        "blocked_on": "task:informed_consent", "blocked_since": "2026-11-28T09:00:00+00:00",
        "escalated": False, "outcome": None, "registered_at": "2026-11-27T14:02:11+00:00",
        "last_event_at": "2026-11-28T09:00:00+00:00"}]})

    case_id: str
    sending_mission: str | None = None
    receiving_mission: str | None = None
    border_partner: str | None = None
    host_country: str | None = Field(default=None, description="ISO 3166-1 alpha-2")
    destination_country: str | None = Field(default=None, description="ISO 3166-1 alpha-2")
    age_category: str | None = Field(default=None, description="An age band; unknown or "
                                     "disputed is treated as a minor.")
    minor: bool | None = None
    witness: bool | None = None
    risk_level: str | None = None
    referral_source: str | None = None
    sex: str | None = Field(default=None, description="female, male, other or not_recorded "
                            "(the sending mission's view)")
    stage: str | None = Field(default=None, description="Where the case is: screening, "
                              "options, consent, documents, booking, in_transit, border, "
                              "reception, closed ...")
    blocked_on: str | None = Field(default=None, description="What the case waits for "
                                   "(task:<kind>, escalation:<reason>, border_hold, "
                                   "rebooking, tracing:<fact>); null: nothing.")
    blocked_since: Time | None = None
    escalated: bool | None = None
    outcome: str | None = Field(default=None, description="How the case closed; null: open.")
    registered_at: Time | None = None
    receiving_visible_at: Time | None = None
    closed_at: Time | None = None
    last_event_at: Time | None = None


class CasePage(_Out):
    cases: list[CaseSummary]
    next_cursor: NextCursor = None


class CaseTask(_Out):
    task_id: uuid.UUID
    kind: str
    assignee_org: str
    status: Literal["open", "completed", "cancelled"]
    due_at: Time
    escalated: bool


class CaseDetail(CaseSummary):
    """One case as the caller's view shows it, with its tasks (a partner or the receiving
    mission sees its own tasks only) and the name of the view."""

    tasks: list[CaseTask] = Field(default_factory=list)
    view: ViewName = "full"


class TimelineEntry(_Out):
    version: int = Field(description="The event's position in the case's stream.")
    occurred_at: Time
    type: str = Field(description="The event type, e.g. case.referral_registered.")
    author_org: str
    actor: str | None = Field(default=None, description="Not in the operations view.")
    text: str | None = Field(default=None, description="One sentence for people, from "
                             "codes and ids only; not in the operations view.")


class TimelinePage(_Out):
    case_id: str
    view: ViewName
    events: list[TimelineEntry]
    next_cursor: NextCursor = None


class HandoffCodeOut(_Out):
    case_id: str
    handoff_code: str = Field(description="Presented once at the handoff; never stored "
                              "in clear.")


class RepeatWarningOut(_Out):
    """The vault's blind index recognised her (decision 0070). ``assisted_before`` names
    the earlier case and the organisation that assisted her, to an organisation that may
    see that case; ``possible_earlier_case`` names only the mission to ask. Nothing is
    recorded until a person links the cases (``POST /cases/{case_id}/links``)."""

    kind: Literal["assisted_before", "possible_earlier_case"]
    message: str
    case_id: str | None = Field(default=None, description="assisted_before only.")
    organisation: str | None = Field(
        default=None, description="assisted_before only: the earlier case's sending mission.")
    matched_on: list[str] | None = Field(
        default=None, description="assisted_before only: name_and_birth_date, document.")
    ask_mission: str | None = Field(
        default=None, description="possible_earlier_case only: the mission that holds it.")


class ReferralOut(_Out):
    case_id: str = Field(description="The same for every retry with the same "
                         "Idempotency-Key.")
    workflow_id: str
    identity_recorded: bool = Field(description="Whether her identity is recorded on the "
                                    "case (identity.recorded appended).")
    repeat_warnings: list[RepeatWarningOut] = Field(
        default_factory=list, description="This person may have been assisted before: "
        "one warning per earlier case this organisation may see, one per other mission "
        "that holds one (decision 0070).")


class TaskDone(_Out):
    """A step recorded: the events its completion wrote (the same answer for a repeated
    completion with the same result)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "case_id": "c-3f1a9c0d2b7e4a5f8c1d",
        "task_id": "0b6c1e57-8a39-4f0e-9c6b-2f7d4e1a9b30",
        "event_types": ["consent.recorded", "task.opened"]}]})

    case_id: str
    task_id: uuid.UUID
    event_types: list[str] = Field(description="The types of the events recorded.")


class FactOut(_Out):
    case_id: str
    fact: RoadFact
    event_types: list[str] = Field(description="What was recorded; empty for a repeated "
                                   "report of the fact just recorded.")
    duplicate: bool
    stage: str


class WithdrawalOut(_Out):
    case_id: str
    change: ConsentChange
    path: str = Field(description="unwind: before departure, what was booked is undone. "
                      "to_safety: she had left; her escorts stay and a mission confirms a "
                      "safe place before the case closes.")
    duplicate: bool


class AgeAssessmentOut(_Out):
    case_id: str
    minor: bool = Field(description="Whether she is treated as a minor from now on.")
    event_types: list[str]


# --- tasks --------------------------------------------------------------------------------


class TaskOut(_Out):
    """A task as the caller's view shows it; a partner does not see how it closed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "task_id": "0b6c1e57-8a39-4f0e-9c6b-2f7d4e1a9b30",
        "case_id": "c-3f1a9c0d2b7e4a5f8c1d", "kind": "travel_documents",
        "assignee_org": "mission-rs", "status": "open",
        "opened_at": "2026-11-28T09:00:00+00:00", "due_at": "2026-12-05T09:00:00+00:00",
        "overdue": False, "escalated": False, "closed_at": None, "closed_by_org": None,
        "assignee_user": None, "reassigned_by": None}]})

    task_id: uuid.UUID
    case_id: str
    kind: str
    assignee_org: str
    status: Literal["open", "completed", "cancelled"]
    opened_at: Time
    due_at: Time
    overdue: bool = Field(description="Open and past its due time.")
    escalated: bool
    closed_at: Time | None = None
    closed_by_org: str | None = None
    assignee_user: str | None = Field(default=None, description="A colleague it was "
                                      "reassigned to; null: the whole organisation.")
    reassigned_by: str | None = None


class TaskPage(_Out):
    tasks: list[TaskOut]
    next_cursor: NextCursor = None


# --- operations ---------------------------------------------------------------------------


class StuckCase(CaseSummary):
    overdue_tasks: int = Field(description="Open tasks past their due time.")


class StuckCasePage(_Out):
    cases: list[StuckCase]
    next_cursor: NextCursor = None


class RetryOut(_Out):
    case_id: str
    retried: list[str] = Field(description="The failing steps (activities) retried now.")


class EscalationOut(_Out):
    case_id: str
    escalated: str = Field(description="The reason given.")


class ReassignOut(_Out):
    task_id: uuid.UUID
    case_id: str
    assignee_org: str
    assignee_user: str | None = Field(description="null: the whole organisation.")


Cell = int | Literal["suppressed"]


class StatisticsOut(_Out):
    """The statistical report's one-way tables over all time (decision 0065): cells under
    5 read "suppressed", suppressed alike in every table of GET /reports/statistical."""

    coverage: str = Field(description="What the figures cover, and what they are not.")
    persons_referred: Cell
    persons_assisted: Cell = Field(description="Persons identified as victims at screening.")
    screened_not_victim: Cell
    by_outcome: dict[str, Cell]
    by_age_band: dict[str, Cell]
    minor_or_age_unknown: dict[str, Cell]
    by_destination_country: dict[str, Cell]
    by_host_country: dict[str, Cell]
    generated_at: Time


class AuditEntry(_Out):
    audit_id: int
    at: Time
    request_id: str
    user_id: str | None
    org_id: str | None
    role: str | None
    method: str
    route: str = Field(description="The route template, never the raw URL.")
    action: str
    case_id: str | None
    task_id: uuid.UUID | None
    status: int
    outcome: Literal["allowed", "refused", "failed"]


class AuditPage(_Out):
    case_id: str
    entries: list[AuditEntry]
    next_cursor: NextCursor = None


# --- the person vault ---------------------------------------------------------------------


class RecordedOut(_Out):
    case_id: str
    recorded_fields: list[str] = Field(description="The names of the fields written "
                                       "(never their values).")


class NoteOut(_Out):
    case_id: str
    record_id: str = Field(description="The note's vault record id, to name it in a step "
                           "(e.g. consent_form_record_id).")
    kind: NoteKind


class DisclosedNote(_Out):
    record_id: str
    kind: NoteKind
    text: str
    recorded_at: Time
    recorded_by_org: str


class DisclosureOut(_Out):
    """Identity data for the purpose stated: the fields of the groups asked for (a field
    not recorded reads null), and the notes. Never cached (``Cache-Control: no-store``)."""

    case_id: str
    purpose: ReadPurpose
    field_groups: list[FieldGroup]
    person: PersonRecord
    notes: list[DisclosedNote]


class ShareOut(_Out):
    case_id: str
    shared_with: str
    consent_record_id: str


class RevokeOut(_Out):
    case_id: str
    revoked: str


class SharingGrant(_Out):
    org_id: str
    consent_record_id: str
    granted_at: Time
    granted_by_org: str
    revoked_at: Time | None
    revocation_reason: str | None


class SharingPage(_Out):
    case_id: str
    active: list[str] = Field(description="The organisations identity is shared with now.")
    grants: list[SharingGrant] = Field(description="Every grant, active or revoked, by "
                                       "organisation id (paged).")
    next_cursor: NextCursor = None



# --- reports (decision 0065) -----------------------------------------------------------

Count = int | Literal["suppressed"]


class ReportTable(BaseModel):
    """One table: a row per combination of its dimensions' values (each value shown,
    also at 0), a count or ``suppressed`` in each."""

    name: str
    title: str
    dimensions: list[str]
    rows: list[dict[str, str | int]] = Field(
        description="Each row: the value of every dimension, and `count`.")
    margins: list[dict[str, str | int]] | None = Field(
        default=None, description="Cross-tables: the counts of one dimension's values.")
    total: Count | None = Field(default=None, description="Tables whose rows partition "
                                "the persons: their number.")
    note: str | None = None


class ReportScopeOut(BaseModel):
    missions: str = Field(description="`all`, or the mission the report is over.")
    side: Literal["sending", "receiving", "either"] | None


class ReportPeriodOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date | None = Field(alias="from", default=None)
    to: date | None = None
    basis: Literal["registered", "closed"]


class SuppressionOut(BaseModel):
    k: int = Field(description="Cells of 1 to k-1 persons are suppressed.")
    hidden_reads: str = Field(description="What a suppressed cell reads.")


class StatisticalReportOut(BaseModel):
    title: str
    period: ReportPeriodOut
    scope: ReportScopeOut
    coverage: str = Field(description="Whom the figures cover and whom not, the period "
                          "and the suppression rule.")
    suppression: SuppressionOut
    persons_referred: Count
    persons_assisted: Count = Field(description="Persons identified as victims.")
    screened_not_victim: Count
    withheld: bool = Field(description="The report is over fewer than k persons: no "
                           "figure is shown.")
    tables: list[ReportTable]
    generated_at: datetime


class SnapshotOut(BaseModel):
    title: str
    open_cases: Count
    scope: ReportScopeOut
    suppressed: bool = Field(description="Small cells suppressed (analysts' view).")
    tables: list[ReportTable]
    generated_at: datetime
