"""Everything that crosses the Temporal boundary: workflow input and result, Update and
signal payloads, query views, activity arguments.

Temporal histories are readable by operators, so these models carry codes and opaque
ids only. A test walks every field of every model here and fails on a field whose name
or type could hold identity data (names, dates of birth, addresses, free text).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.journey.config import JourneyConfig
from domain.journey.vocabulary import (
    BookingRef,
    ChildPresence,
    ConsentChange,
    DecidedBy,
    Determination,
    DocumentRefusalReason,
    EntryPoint,
    EscalationResolution,
    FormVersion,
    GuardianAuthority,
    HandoffCode,
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
    Stage,
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
    ActorId,
    AgeAssessor,
    AgeCategory,
    CaseId,
    Code,
    CountryCode,
    OrganisationId,
    RecordId,
)
from domain.reintegration.config import ReintegrationConfig


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- workflow input / result ------------------------------------------------------------


class ReturnCaseInput(_Message):
    """Non-identifying facts of a referral. The person herself is in the vault."""

    case_id: CaseId
    sending_mission: OrganisationId
    receiving_mission: OrganisationId
    border_partner: OrganisationId
    host_country: CountryCode
    destination_country: CountryCode
    referral_source: ReferralSource
    first_placement: Placement
    risk_level: RiskLevel
    age_category: AgeCategory
    witness: bool = False
    sex: Sex = Sex.NOT_RECORDED
    travel_adapter: TravelAdapter = TravelAdapter.SIMULATED
    simulated_disruptions: tuple[LegFailure | None, ...] = Field(
        default=(),
        max_length=20,
        description="Simulated adapter only: the disruption of booking attempt n (None: the "
        "flight operates). Deterministic failure injection for tests and demos.",
    )
    config: JourneyConfig = Field(default_factory=JourneyConfig)
    reintegration: ReintegrationConfig | None = Field(
        default=None,
        description="The follow-up programme: after safe arrival the journey starts the "
        "reintegration-<case id> child workflow with it. None: the journey alone "
        "(decision 0030).")

    @model_validator(mode="after")
    def _disruptions_are_simulated(self) -> ReturnCaseInput:
        if self.simulated_disruptions and self.travel_adapter is not TravelAdapter.SIMULATED:
            raise ValueError("simulated_disruptions need the simulated travel adapter")
        return self


class ReturnCaseResult(_Message):
    case_id: CaseId
    outcome: Code
    events_appended: int


# --- Update: complete_task --------------------------------------------------------------


class ScreeningResult(_Message):
    kind: Literal["screening_interview"] = "screening_interview"
    interview_record_id: RecordId
    interview_language: LanguageCode
    interpreter_used: bool
    reads_languages: tuple[LanguageCode, ...] = Field(min_length=1, max_length=10)
    trafficking_status: TraffickingStatus
    repeat_reason: RepeatInterviewReason | None = None
    child_accompanied_by: ChildPresence | None = Field(
        default=None, description="A child is interviewed only with her guardian or, before "
        "one is appointed, a child protection officer present: who was there.")


class OptionsDecisionResult(_Message):
    kind: Literal["options_decision"] = "options_decision"
    choice: ReturnOption
    counselled_in_language: LanguageCode
    reflection_days: int | None = Field(default=None, ge=1, le=3650)
    decided_by: DecidedBy = Field(
        default=DecidedBy.PERSON, description="A child decides together with her legal "
        "guardian: child_with_guardian.")


class ConsentResult(_Message):
    kind: Literal["informed_consent"] = "informed_consent"
    consent_form_record_id: RecordId
    form_language: LanguageCode
    form_version: FormVersion
    interpreter_used: bool
    interpreter_record_id: RecordId | None = None
    signed_at: datetime
    consented_by: DecidedBy = Field(
        default=DecidedBy.PERSON, description="A child consents together with her legal "
        "guardian: child_with_guardian.")


class GuardianAppointmentResult(_Message):
    kind: Literal["guardian_appointment"] = "guardian_appointment"
    guardian_record_id: RecordId
    authority: GuardianAuthority
    guardian_org: OrganisationId | None = Field(
        default=None, description="The organisation the guardian acts through (a social "
        "welfare centre registered in homeward): it may read the child's identity.")


class BestInterestResult(_Message):
    kind: Literal["best_interest_determination"] = "best_interest_determination"
    determination: Determination
    family_assessment_record_id: RecordId


class TravelDocumentsResult(_Message):
    kind: Literal["travel_documents"] = "travel_documents"
    issued: bool
    document_record_id: RecordId | None = None
    refusal_reason: DocumentRefusalReason | None = None


class MedicalClearanceResult(_Message):
    kind: Literal["medical_clearance"] = "medical_clearance"
    fit_to_travel: bool
    medical_record_id: RecordId


class ProsecutorNoticeResult(_Message):
    kind: Literal["prosecutor_notice"] = "prosecutor_notice"
    notified_at: datetime
    testimony: TestimonyArrangement


class SecurityAssessmentResult(_Message):
    kind: Literal["security_assessment"] = "security_assessment"
    risk_level: RiskLevel


class EnterBookingResult(_Message):
    kind: Literal["enter_booking"] = "enter_booking"
    booking_ref: BookingRef
    entry_point: EntryPoint
    departure_at: datetime


class EscalationReviewResult(_Message):
    kind: Literal["escalation_review"] = "escalation_review"
    resolution: EscalationResolution


class BorderCompanionResult(_Message):
    kind: Literal["border_companion"] = "border_companion"
    companion_record_id: RecordId


class ReceptionHandoffResult(_Message):
    kind: Literal["reception_handoff"] = "reception_handoff"
    identification: IdentificationMethod
    handoff_code: HandoffCode | None = None
    safe_arrival_confirmed: bool
    assistance_provided: tuple[PostArrivalAssistance, ...] = Field(default=(), max_length=10)


class GuardianHandoverResult(_Message):
    kind: Literal["guardian_handover"] = "guardian_handover"
    handed_to: HandoverTo
    guardian_record_id: RecordId


class SafePlaceResult(_Message):
    """The return stopped after departure: where she is now, and in whose care."""

    kind: Literal["safe_place"] = "safe_place"
    place: SafePlace
    handed_to: SafeHandover
    safe_place_record_id: RecordId = Field(description="The vault record of the place "
                                           "(an address stays in the vault).")


class TracingResult(_Message):
    kind: Literal["tracing"] = "tracing"
    finding: TracingFinding
    then: TracingNext | None = Field(default=None, description="With found_safe: continue "
                                     "from where she is, or cancel what is booked and re-plan.")
    tracing_record_id: RecordId

    @model_validator(mode="after")
    def _then_with_found_safe(self) -> TracingResult:
        if (self.finding is TracingFinding.FOUND_SAFE) != (self.then is not None):
            raise ValueError("'then' is given with found_safe, and only then")
        return self


class TransferDecisionResult(_Message):
    """The answer of the organisation a transfer offers a role to (decision 0068)."""

    kind: Literal["transfer_decision"] = "transfer_decision"
    accepted: bool
    decline_reason: TransferDeclineReason | None = Field(
        default=None, description="With accepted false, and only then.")

    @model_validator(mode="after")
    def _reason_with_a_decline(self) -> TransferDecisionResult:
        if self.accepted == (self.decline_reason is not None):
            raise ValueError("a decline_reason is given when declining, and only then")
        return self


TaskResult = Annotated[
    Union[  # noqa: UP007
        ScreeningResult,
        OptionsDecisionResult,
        ConsentResult,
        GuardianAppointmentResult,
        BestInterestResult,
        TravelDocumentsResult,
        MedicalClearanceResult,
        ProsecutorNoticeResult,
        SecurityAssessmentResult,
        EnterBookingResult,
        EscalationReviewResult,
        BorderCompanionResult,
        ReceptionHandoffResult,
        GuardianHandoverResult,
        SafePlaceResult,
        TracingResult,
        TransferDecisionResult,
    ],
    Field(discriminator="kind"),
]

RESULT_KINDS: dict[TaskKind, type[_Message]] = {
    TaskKind(cls.model_fields["kind"].default): cls
    for cls in TaskResult.__origin__.__args__  # type: ignore[attr-defined]
}


class TaskCompletion(_Message):
    """Payload of the ``complete_task`` Update."""

    task_id: UUID
    organisation_id: OrganisationId
    actor_id: ActorId
    result: TaskResult


class TaskCompleted(_Message):
    """What ``complete_task`` returns: the event types it appended."""

    task_id: UUID
    event_types: tuple[Code, ...]


class TransferRequest(_Message):
    """Payload of the ``request_transfer`` Update: the sending mission offers a role to
    another organisation (decision 0068)."""

    organisation_id: OrganisationId
    actor_id: ActorId
    role: TransferredRole
    to_org: OrganisationId
    reason: TransferReason
    details_record_id: RecordId | None = None


class TransferRequested(_Message):
    """What ``request_transfer`` answers: the transfer (its decision task's id) and whether
    it was requested already (nothing written then)."""

    transfer_id: UUID
    role: TransferredRole
    from_org: OrganisationId
    to_org: OrganisationId
    duplicate: bool


class RepeatInterviewRequest(_Message):
    """Payload of the ``request_repeat_interview`` Update: a second full screening interview
    is an exception, allowed before consent and only with a recorded reason."""

    organisation_id: OrganisationId
    actor_id: ActorId
    reason: RepeatInterviewReason


# --- facts from outside: Updates, answered at once --------------------------------------


class JourneyFact(_Message):
    """Update ``report_fact``: something that happened on the road, reported by the escort's
    mission (or, for a person not met or missing, the receiving mission). Recorded at once
    or refused; never queued. (Also the payload of the ``journey_fact`` signal that cases
    started before facts were Updates still receive.)"""

    organisation_id: OrganisationId
    actor_id: ActorId
    fact: RoadFact
    failure: LegFailure | None = None  # with fact == "leg_failed"

    @model_validator(mode="after")
    def _failure_with_leg_failed(self) -> JourneyFact:
        if (self.fact is RoadFact.LEG_FAILED) != (self.failure is not None):
            raise ValueError("a failure is given with a leg_failed fact, and only then")
        return self


class FactRecorded(_Message):
    """What ``report_fact`` answers: the events written (none for a repeated report of the
    fact just recorded) and where the case is now."""

    fact: RoadFact
    event_types: tuple[Code, ...]
    duplicate: bool
    stage: Stage


class ConsentWithdrawal(_Message):
    """Update ``record_withdrawal``: withdrawn or deferred (the deferral form is in the
    vault). Also the payload of the older ``withdraw_consent`` signal."""

    organisation_id: OrganisationId
    actor_id: ActorId
    change: ConsentChange = ConsentChange.WITHDRAWN
    form_record_id: RecordId | None = None


class WithdrawalRecorded(_Message):
    """``unwind``: before departure, what was booked is undone and the case closes.
    ``to_safety``: she had left; nothing she is on is cancelled, her escorts stay and a
    mission arranges a safe place before the case closes."""

    change: ConsentChange
    path: Literal["unwind", "to_safety"]
    duplicate: bool


class AgeAssessment(_Message):
    """Update ``record_age_assessment``: the result of an age assessment, its evidence in
    the vault."""

    organisation_id: OrganisationId
    actor_id: ActorId
    assessed_by: AgeAssessor
    result: AgeCategory
    evidence_record_id: RecordId


class AgeAssessed(_Message):
    minor: bool
    event_types: tuple[Code, ...]


# --- queries ----------------------------------------------------------------------------


class OpenTaskView(_Message):
    task_id: UUID
    kind: TaskKind
    assignee_org: OrganisationId
    due_at: datetime
    escalated: bool


class CaseView(_Message):
    """Query ``status``: what an operator or the API needs to steer the case."""

    case_id: CaseId
    stage: Stage
    blocked_on: Code | None
    open_tasks: tuple[OpenTaskView, ...]
    outcome: Code | None
    events_appended: int
    booking_attempts: int
    ignored_signals: int
    expected_facts: tuple[RoadFact, ...] = Field(default=(), description="The road facts "
                                                 "that can be reported now.")
    minor: bool = False


# --- activity arguments -----------------------------------------------------------------


class BookingRequest(_Message):
    case_id: CaseId
    request_id: UUID  # idempotency key: a retried booking returns the same booking
    attempt: int = Field(ge=1)
    host_country: CountryCode
    destination_country: CountryCode
    avoid_entry_points: tuple[EntryPoint, ...] = ()
    not_before: datetime
    simulated_disruption: LegFailure | None = None


class Booking(_Message):
    booking_ref: BookingRef
    provider: TravelAdapter
    route: RouteKind
    entry_point: EntryPoint
    departure_at: datetime
    disruption: LegFailure | None = None  # simulated adapter: what will happen to this leg


class CancelBookingRequest(_Message):
    case_id: CaseId
    booking_ref: BookingRef
    provider: TravelAdapter


class CancelBookingResult(_Message):
    booking_ref: BookingRef
    cancelled: bool
    manual_follow_up: bool  # manual adapter: the coordinator must cancel with the carrier
