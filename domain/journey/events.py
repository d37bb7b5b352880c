"""Every step of a return, as an event.

Each event type is a pydantic model with a ``type`` literal (the workflow union on it,
``WorkflowEvent``, is in ``domain.catalogue``), a class-level schema version and the
organisation role that owns it: only that role may append it (the sending mission writes
its part of the file, the receiving mission its part, neither the other's). Payloads hold
codes and opaque ids only; anything about the person (interview answers, forms,
assessments) lives in the person vault and is referenced by a ``rec_…`` record id.

The registry of every event type (these, the follow-up's, and those the API and the
vault write), ownership, parsing and upcasting live in ``domain.catalogue``.

Why about 600 lines: one declaration per event type (some fifty-five) and no logic; split
by party, the one list of the journey's types (``JOURNEY_EVENTS``) would be in pieces.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal, Union
from uuid import UUID

from pydantic import Field

from domain.journey.vocabulary import (
    BookingRef,
    ChildPresence,
    ConsentChange,
    DecidedBy,
    Determination,
    DocumentRefusalReason,
    EntryPoint,
    EscalationReason,
    EscalationResolution,
    EscortKind,
    EscortReleaseReason,
    EscortScope,
    FactSource,
    FormVersion,
    GuardianAuthority,
    HandoverTo,
    IdentificationMethod,
    LanguageCode,
    LegFailure,
    Placement,
    PostArrivalAssistance,
    ReferralSource,
    RepeatInterviewReason,
    ReturnOption,
    RiskLevel,
    RoadFact,
    RouteKind,
    SafeHandover,
    SafePlace,
    Sex,
    Sha256Hex,
    TaskCancelReason,
    TaskKind,
    TestimonyArrangement,
    TracingFinding,
    TracingNext,
    TraffickingStatus,
    TransferDeclineReason,
    TransferReason,
    TransferredRole,
    TravelAdapter,
)
from domain.kernel import (
    AgeAssessor,
    AgeCategory,
    CountryCode,
    DomainEvent,
    OrganisationId,
    RecordId,
    Role,
)


class JourneyEvent(DomainEvent):
    """The base of the journey's events."""


# --- system: tasks, escalations, the handoff code, outcomes -----------------------------


class TaskOpened(JourneyEvent):
    type: Literal["task.opened"] = "task.opened"
    owner: ClassVar[Role] = Role.SYSTEM
    task_id: UUID
    kind: TaskKind
    assignee_org: OrganisationId
    assignee_role: Role
    due_at: datetime


class TaskOverdueEscalated(JourneyEvent):
    type: Literal["task.overdue_escalated"] = "task.overdue_escalated"
    owner: ClassVar[Role] = Role.SYSTEM
    task_id: UUID
    kind: TaskKind
    due_at: datetime


class TaskCancelled(JourneyEvent):
    type: Literal["task.cancelled"] = "task.cancelled"
    owner: ClassVar[Role] = Role.SYSTEM
    task_id: UUID
    kind: TaskKind
    reason: TaskCancelReason


class CaseEscalated(JourneyEvent):
    type: Literal["case.escalated"] = "case.escalated"
    owner: ClassVar[Role] = Role.SYSTEM
    reason: EscalationReason
    since: datetime


class EscalationResolved(JourneyEvent):
    """The coordinator's answer to an escalation: try again, or stop the return."""

    type: Literal["case.escalation_resolved"] = "case.escalation_resolved"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    reason: EscalationReason
    resolution: EscalationResolution


class HandoffCodeIssued(JourneyEvent):
    """Only the hash: the code itself is shown to the escort and the receiving officer."""

    type: Literal["reception.handoff_code_issued"] = "reception.handoff_code_issued"
    owner: ClassVar[Role] = Role.SYSTEM
    code_hash: Sha256Hex


# --- sending mission --------------------------------------------------------------------


class ReferralRegistered(JourneyEvent):
    """v2: ``placement`` renamed ``first_placement``; ``age_category`` added (v1 had none)."""

    type: Literal["case.referral_registered"] = "case.referral_registered"
    schema_version: ClassVar[int] = 2
    owner: ClassVar[Role] = Role.SENDING_MISSION
    source: ReferralSource
    first_placement: Placement
    risk_level: RiskLevel
    age_category: AgeCategory
    witness: bool
    host_country: CountryCode
    destination_country: CountryCode
    sending_mission: OrganisationId
    receiving_mission: OrganisationId
    border_partner: OrganisationId
    # A child's guardian is appointed before her options decision and consent, and takes
    # part in both. False for cases registered before that rule (they keep their order).
    guardian_takes_part: bool = False
    # Additive, so still v2 (decision 0066): a referral recorded before sex was asked
    # reads as not recorded.
    sex: Sex = Sex.NOT_RECORDED


class ScreeningInterviewRecorded(JourneyEvent):
    type: Literal["screening.interview_recorded"] = "screening.interview_recorded"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    interview_record_id: RecordId
    interview_language: LanguageCode
    interpreter_used: bool
    reads_languages: tuple[LanguageCode, ...] = Field(min_length=1)
    trafficking_status: TraffickingStatus
    repeat_reason: RepeatInterviewReason | None = None
    child_accompanied_by: ChildPresence | None = None


class RepeatInterviewRequested(JourneyEvent):
    """A second full interview, with its reason (the first one is reused by default)."""

    type: Literal["screening.repeat_interview_requested"] = (
        "screening.repeat_interview_requested"
    )
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    reason: RepeatInterviewReason


class OptionsDecisionRecorded(JourneyEvent):
    type: Literal["options.decision_recorded"] = "options.decision_recorded"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    choice: ReturnOption
    counselled_in_language: LanguageCode
    reflection_days: int | None = Field(default=None, ge=1)
    decided_by: DecidedBy | None = None  # None: recorded before it was asked


class ConsentRecorded(JourneyEvent):
    type: Literal["consent.recorded"] = "consent.recorded"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    consent_form_record_id: RecordId
    form_language: LanguageCode
    form_version: FormVersion
    interpreter_used: bool
    interpreter_record_id: RecordId | None = None
    signed_at: datetime
    consented_by: DecidedBy | None = None  # None: recorded before it was asked


class ConsentWithdrawn(JourneyEvent):
    type: Literal["consent.withdrawn"] = "consent.withdrawn"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    # Her decision, whichever mission she tells: the receiving mission relays it too.
    also_owned_by: ClassVar[frozenset[Role]] = frozenset({Role.RECEIVING_MISSION})
    change: ConsentChange
    relayed_by: Role = Role.SENDING_MISSION
    form_record_id: RecordId | None = None
    # True: she had already left; she is brought to a safe place before the case closes.
    after_departure: bool = False


class AgeAssessed(JourneyEvent):
    """An assessment of her age (police, social welfare, medical, court). ``minor`` is what
    follows: unknown, disputed or under 18 is treated as a minor."""

    type: Literal["case.age_assessed"] = "case.age_assessed"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    assessed_by: AgeAssessor
    previous: AgeCategory
    result: AgeCategory
    minor: bool
    evidence_record_id: RecordId


class GuardianAppointed(JourneyEvent):
    type: Literal["minor.guardian_appointed"] = "minor.guardian_appointed"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    guardian_record_id: RecordId
    authority: GuardianAuthority
    guardian_org: OrganisationId | None = None  # may read the child's identity


class DocumentsRequested(JourneyEvent):
    type: Literal["documents.requested"] = "documents.requested"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    request_id: UUID
    attempt: int = Field(ge=1)
    consulate_of: CountryCode


class DocumentsIssued(JourneyEvent):
    type: Literal["documents.issued"] = "documents.issued"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    request_id: UUID
    document_record_id: RecordId


class DocumentsRefused(JourneyEvent):
    type: Literal["documents.refused"] = "documents.refused"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    request_id: UUID
    reason: DocumentRefusalReason


class DocumentRequestWithdrawn(JourneyEvent):
    type: Literal["documents.request_withdrawn"] = "documents.request_withdrawn"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    request_id: UUID


class MedicalClearanceRecorded(JourneyEvent):
    type: Literal["clearance.medical_recorded"] = "clearance.medical_recorded"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    fit_to_travel: bool
    medical_record_id: RecordId


class ProsecutorNotified(JourneyEvent):
    type: Literal["clearance.prosecutor_notified"] = "clearance.prosecutor_notified"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    notified_at: datetime
    testimony: TestimonyArrangement
    earliest_departure_at: datetime


class SecurityAssessed(JourneyEvent):
    type: Literal["clearance.security_assessed"] = "clearance.security_assessed"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    task_id: UUID
    risk_level: RiskLevel
    police_escort_required: bool


class EscortAssigned(JourneyEvent):
    type: Literal["escort.assigned"] = "escort.assigned"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    escort_id: UUID
    kind: EscortKind
    scope: EscortScope


class EscortReleased(JourneyEvent):
    type: Literal["escort.released"] = "escort.released"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    escort_id: UUID
    reason: EscortReleaseReason


class JourneyBooked(JourneyEvent):
    type: Literal["journey.booked"] = "journey.booked"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    booking_ref: BookingRef
    attempt: int = Field(ge=1)
    provider: TravelAdapter
    route: RouteKind
    entry_point: EntryPoint
    departure_at: datetime
    task_id: UUID | None = None  # set when a coordinator entered it (manual adapter)


class JourneyLegFailed(JourneyEvent):
    type: Literal["journey.leg_failed"] = "journey.leg_failed"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    booking_ref: BookingRef
    attempt: int = Field(ge=1)
    failure: LegFailure
    source: FactSource


class RebookingScheduled(JourneyEvent):
    type: Literal["journey.rebooking_scheduled"] = "journey.rebooking_scheduled"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    next_attempt: int = Field(ge=2)
    not_before: datetime


class BookingCancelled(JourneyEvent):
    type: Literal["journey.booking_cancelled"] = "journey.booking_cancelled"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    booking_ref: BookingRef
    provider: TravelAdapter


class JourneyDeparted(JourneyEvent):
    type: Literal["journey.departed"] = "journey.departed"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    booking_ref: BookingRef


class ArrivedAtBorder(JourneyEvent):
    type: Literal["journey.arrived_at_border"] = "journey.arrived_at_border"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    entry_point: EntryPoint


class BorderHoldStarted(JourneyEvent):
    type: Literal["border.hold_started"] = "border.hold_started"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    entry_point: EntryPoint
    started_at: datetime | None = None  # None in events written before repeated holds


class BorderHoldLifted(JourneyEvent):
    type: Literal["border.hold_lifted"] = "border.hold_lifted"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    entry_point: EntryPoint
    held_seconds: int = Field(ge=0)


class BorderEntryRefused(JourneyEvent):
    type: Literal["border.entry_refused"] = "border.entry_refused"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    entry_point: EntryPoint


class BorderCleared(JourneyEvent):
    type: Literal["border.cleared"] = "border.cleared"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    entry_point: EntryPoint


class DidNotArrive(JourneyEvent):
    """She did not board, went missing in transit, or was not met at arrival (§5.5.4),
    reported by the escort's mission or the receiving mission."""

    type: Literal["journey.did_not_arrive"] = "journey.did_not_arrive"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    also_owned_by: ClassVar[frozenset[Role]] = frozenset({Role.RECEIVING_MISSION})
    fact: RoadFact
    reported_by: Role


class TracingConcluded(JourneyEvent):
    type: Literal["tracing.concluded"] = "tracing.concluded"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    finding: TracingFinding
    then: TracingNext | None = None  # with found_safe
    tracing_record_id: RecordId


class SafePlaceConfirmed(JourneyEvent):
    """The return stopped after departure and she is in a safe place: handed into someone's
    care, never left on the road. The address, if any, is in the vault record."""

    type: Literal["safety.safe_place_confirmed"] = "safety.safe_place_confirmed"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    also_owned_by: ClassVar[frozenset[Role]] = frozenset({Role.RECEIVING_MISSION})
    task_id: UUID
    place: SafePlace
    handed_to: SafeHandover
    safe_place_record_id: RecordId


# --- partner NGO ------------------------------------------------------------------------


class BorderCompanionAssigned(JourneyEvent):
    type: Literal["border.companion_assigned"] = "border.companion_assigned"
    owner: ClassVar[Role] = Role.PARTNER
    task_id: UUID
    companion_record_id: RecordId


# --- receiving mission ------------------------------------------------------------------


class BestInterestDetermined(JourneyEvent):
    type: Literal["minor.best_interest_determined"] = "minor.best_interest_determined"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    determination: Determination
    family_assessment_record_id: RecordId


class HandoffConfirmed(JourneyEvent):
    type: Literal["reception.handoff_confirmed"] = "reception.handoff_confirmed"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    identification: IdentificationMethod


class SafeArrivalConfirmed(JourneyEvent):
    type: Literal["reception.safe_arrival_confirmed"] = "reception.safe_arrival_confirmed"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID


class PostArrivalAssistanceRecorded(JourneyEvent):
    type: Literal["reception.assistance_recorded"] = "reception.assistance_recorded"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    provided: tuple[PostArrivalAssistance, ...]


class HandedOverToGuardian(JourneyEvent):
    type: Literal["minor.handed_over_to_guardian"] = "minor.handed_over_to_guardian"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    handed_to: HandoverTo
    guardian_record_id: RecordId


# --- transfers between organisations (decision 0068) ------------------------------------


class TransferRequested(JourneyEvent):
    """The sending mission offers a role to another organisation; a transfer decision task
    (id ``transfer_id``) opens for it. Details of the reason are in a vault note."""

    type: Literal["case.transfer_requested"] = "case.transfer_requested"
    owner: ClassVar[Role] = Role.SENDING_MISSION
    transfer_id: UUID
    role: TransferredRole
    from_org: OrganisationId
    to_org: OrganisationId
    reason: TransferReason
    details_record_id: RecordId | None = None


class TransferAccepted(JourneyEvent):
    """The organisation offered the role takes it: from now on it holds the role, and the
    open tasks of the role (``reassigned_tasks``) are its own. Written by that
    organisation (the append rule lets the organisation a transfer names answer it)."""

    type: Literal["case.transfer_accepted"] = "case.transfer_accepted"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    also_owned_by: ClassVar[frozenset[Role]] = frozenset({Role.PARTNER})
    task_id: UUID  # the transfer decision task, whose id is the transfer's
    role: TransferredRole
    from_org: OrganisationId
    to_org: OrganisationId
    reassigned_tasks: tuple[UUID, ...] = ()


class TransferDeclined(JourneyEvent):
    """The organisation offered the role declines it: nothing moves."""

    type: Literal["case.transfer_declined"] = "case.transfer_declined"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    also_owned_by: ClassVar[frozenset[Role]] = frozenset({Role.PARTNER})
    task_id: UUID
    role: TransferredRole
    from_org: OrganisationId
    to_org: OrganisationId
    reason: TransferDeclineReason


# --- outcomes (system): every case ends with exactly one, and every one is counted ------


class _Outcome(JourneyEvent):
    owner: ClassVar[Role] = Role.SYSTEM


class ReturnedOutcome(_Outcome):
    """Safe arrival confirmed; reintegration (a later child workflow) takes over."""

    type: Literal["outcome.returned"] = "outcome.returned"


class ReflectionPeriodOutcome(_Outcome):
    type: Literal["outcome.reflection_period"] = "outcome.reflection_period"
    granted_days: int = Field(ge=1)
    minimum_days: int = Field(ge=1)


class TemporaryResidenceOutcome(_Outcome):
    type: Literal["outcome.temporary_residence"] = "outcome.temporary_residence"


class ResettlementReferralOutcome(_Outcome):
    type: Literal["outcome.resettlement_referral"] = "outcome.resettlement_referral"


class StayingInShelterOutcome(_Outcome):
    type: Literal["outcome.staying_in_shelter"] = "outcome.staying_in_shelter"


class AssistanceDeclinedOutcome(_Outcome):
    type: Literal["outcome.assistance_declined"] = "outcome.assistance_declined"


class ReturnedByOtherMeansOutcome(_Outcome):
    type: Literal["outcome.returned_by_other_means"] = "outcome.returned_by_other_means"


class NotIdentifiedAsVictimOutcome(_Outcome):
    type: Literal["outcome.not_identified_as_victim"] = "outcome.not_identified_as_victim"


class ReturnNotInBestInterestOutcome(_Outcome):
    type: Literal["outcome.return_not_in_best_interest"] = "outcome.return_not_in_best_interest"


class AlternativePathwayOutcome(_Outcome):
    type: Literal["outcome.alternative_pathway"] = "outcome.alternative_pathway"
    change: ConsentChange


class ReturnStoppedOutcome(_Outcome):
    type: Literal["outcome.return_stopped"] = "outcome.return_stopped"
    reason: EscalationReason


class MissingOutcome(_Outcome):
    """She did not arrive and tracing did not find her: counted, never left open."""

    type: Literal["outcome.missing"] = "outcome.missing"
    fact: RoadFact


OutcomeEvent = Union[  # noqa: UP007 - a Union reads better than a long | chain here
    ReturnedOutcome,
    ReflectionPeriodOutcome,
    TemporaryResidenceOutcome,
    ResettlementReferralOutcome,
    StayingInShelterOutcome,
    AssistanceDeclinedOutcome,
    ReturnedByOtherMeansOutcome,
    NotIdentifiedAsVictimOutcome,
    ReturnNotInBestInterestOutcome,
    AlternativePathwayOutcome,
    ReturnStoppedOutcome,
    MissingOutcome,
]

JOURNEY_EVENTS: tuple[type[JourneyEvent], ...] = (
    TaskOpened,
    TaskOverdueEscalated,
    TaskCancelled,
    CaseEscalated,
    EscalationResolved,
    HandoffCodeIssued,
    ReferralRegistered,
    ScreeningInterviewRecorded,
    RepeatInterviewRequested,
    OptionsDecisionRecorded,
    ConsentRecorded,
    ConsentWithdrawn,
    AgeAssessed,
    GuardianAppointed,
    DocumentsRequested,
    DocumentsIssued,
    DocumentsRefused,
    DocumentRequestWithdrawn,
    MedicalClearanceRecorded,
    ProsecutorNotified,
    SecurityAssessed,
    EscortAssigned,
    EscortReleased,
    JourneyBooked,
    JourneyLegFailed,
    RebookingScheduled,
    BookingCancelled,
    JourneyDeparted,
    ArrivedAtBorder,
    BorderHoldStarted,
    BorderHoldLifted,
    BorderEntryRefused,
    BorderCleared,
    DidNotArrive,
    TracingConcluded,
    SafePlaceConfirmed,
    BorderCompanionAssigned,
    BestInterestDetermined,
    HandoffConfirmed,
    SafeArrivalConfirmed,
    PostArrivalAssistanceRecorded,
    HandedOverToGuardian,
    ReturnedOutcome,
    ReflectionPeriodOutcome,
    TemporaryResidenceOutcome,
    ResettlementReferralOutcome,
    StayingInShelterOutcome,
    AssistanceDeclinedOutcome,
    ReturnedByOtherMeansOutcome,
    NotIdentifiedAsVictimOutcome,
    ReturnNotInBestInterestOutcome,
    AlternativePathwayOutcome,
    ReturnStoppedOutcome,
    MissingOutcome,
    TransferRequested,
    TransferAccepted,
    TransferDeclined,
)
"""The journey's event types, in the order of the workflow union
(``domain.catalogue.WorkflowEvent``)."""

OUTCOME_TYPES = frozenset(cls.TYPE for cls in OutcomeEvent.__args__)  # type: ignore[attr-defined]
