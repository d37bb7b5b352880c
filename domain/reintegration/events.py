"""Reintegration and follow-up, as events.

Members of the workflow union in ``domain.catalogue`` (``WorkflowEvent``), with the same
contract as the journey's: a schema version, an owning role, codes and opaque ids only.
The receiving mission owns what it records (assessment, plan, payments, check-ins, risks,
closure); the system owns what the workflow decides (tasks, schedules, escalations,
contact lost).

Their base class, like the journey's, is ``domain.kernel.DomainEvent``.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.kernel import (
    AgeAssessor,
    AgeCategory,
    Code,
    DomainEvent,
    OrganisationId,
    RecordId,
    Role,
)
from domain.reintegration.vocabulary import (
    ClosureReason,
    ContactChannel,
    CurrencyCode,
    InstalmentCancelReason,
    InstalmentTrigger,
    Level,
    NotReachedReason,
    NotRestoredReason,
    OwedOnReopening,
    PaymentFailure,
    PaymentMethod,
    PaymentReviewResolution,
    ReintegrationEscalationReason,
    ReintegrationTaskCancelReason,
    ReintegrationTaskKind,
    ReopenReason,
    RiskIndicator,
    ServiceKind,
    ServiceStatus,
)


class ReintegrationEvent(DomainEvent):
    """The base of the follow-up's events."""


class ScheduledCheckIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int = Field(ge=1)
    due_at: datetime


class InstalmentPlanned(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int = Field(ge=1)
    trigger: InstalmentTrigger
    check_in: int | None = Field(default=None, ge=1)
    amount_minor: int = Field(gt=0)
    currency: CurrencyCode
    method: PaymentMethod


class ServiceLine(BaseModel):
    """One service of the plan: what, by whom, by when, and where it stands."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line_id: UUID
    service: ServiceKind
    provider_org: OrganisationId
    due_at: datetime
    status: ServiceStatus = ServiceStatus.PLANNED


class SustainabilityIndicators(BaseModel):
    """The small set of indicators the receiving mission records at the last check-in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # economic
    income: Level
    housing: Level
    basic_needs_met: bool
    # social
    family_support: Level
    access_to_services: bool
    stigma_experienced: bool
    # psychosocial
    feels_safe: bool
    wellbeing_rating: int = Field(ge=1, le=5)
    has_trusted_person: bool


# --- system: the programme started, tasks, schedules, escalations -----------------------


class ReintegrationStarted(ReintegrationEvent):
    type: Literal["reintegration.started"] = "reintegration.started"
    owner: ClassVar[Role] = Role.SYSTEM
    arrived_at: datetime
    check_ins: tuple[ScheduledCheckIn, ...] = Field(min_length=1)
    instalments: tuple[InstalmentPlanned, ...]


class ReintegrationTaskOpened(ReintegrationEvent):
    type: Literal["reintegration.task_opened"] = "reintegration.task_opened"
    owner: ClassVar[Role] = Role.SYSTEM
    task_id: UUID
    kind: ReintegrationTaskKind
    assignee_org: OrganisationId
    due_at: datetime
    check_in: int | None = Field(default=None, ge=1)
    instalment: int | None = Field(default=None, ge=1)
    attempt: int | None = Field(default=None, ge=1)
    amount_minor: int | None = Field(default=None, gt=0)
    currency: CurrencyCode | None = None
    method: PaymentMethod | None = None
    line_id: UUID | None = None  # a service delivery task: the plan line it reports on

    @model_validator(mode="after")
    def _payment_fields_on_payment_tasks(self) -> ReintegrationTaskOpened:
        payment = self.kind is ReintegrationTaskKind.GRANT_PAYMENT
        fields = (self.instalment, self.attempt, self.amount_minor, self.currency, self.method)
        if payment and any(f is None for f in fields):
            raise ValueError("a payment task states instalment, attempt, amount, currency and "
                             "method")
        if not payment and self.attempt is not None:
            raise ValueError("only a payment task has an attempt")
        if (self.kind is ReintegrationTaskKind.CHECK_IN) != (self.check_in is not None):
            raise ValueError("a check-in number belongs to (and only to) a check-in task")
        if (self.kind is ReintegrationTaskKind.SERVICE_DELIVERY) != (self.line_id is not None):
            raise ValueError("a line id belongs to (and only to) a service delivery task")
        return self


class ReintegrationTaskOverdue(ReintegrationEvent):
    type: Literal["reintegration.task_overdue"] = "reintegration.task_overdue"
    owner: ClassVar[Role] = Role.SYSTEM
    task_id: UUID
    kind: ReintegrationTaskKind
    due_at: datetime


class ReintegrationTaskCancelled(ReintegrationEvent):
    type: Literal["reintegration.task_cancelled"] = "reintegration.task_cancelled"
    owner: ClassVar[Role] = Role.SYSTEM
    task_id: UUID
    kind: ReintegrationTaskKind
    reason: ReintegrationTaskCancelReason


class PaymentRetryScheduled(ReintegrationEvent):
    type: Literal["reintegration.payment_retry_scheduled"] = (
        "reintegration.payment_retry_scheduled")
    owner: ClassVar[Role] = Role.SYSTEM
    instalment: int = Field(ge=1)
    next_attempt: int = Field(ge=2)
    not_before: datetime


class GrantInstalmentCancelled(ReintegrationEvent):
    type: Literal["reintegration.grant_cancelled"] = "reintegration.grant_cancelled"
    owner: ClassVar[Role] = Role.SYSTEM
    instalment: int = Field(ge=1)
    reason: InstalmentCancelReason


class ReintegrationEscalated(ReintegrationEvent):
    type: Literal["reintegration.escalated"] = "reintegration.escalated"
    owner: ClassVar[Role] = Role.SYSTEM
    reason: ReintegrationEscalationReason
    since: datetime
    instalment: int | None = Field(default=None, ge=1)


class ContactLost(ReintegrationEvent):
    type: Literal["reintegration.contact_lost"] = "reintegration.contact_lost"
    owner: ClassVar[Role] = Role.SYSTEM
    consecutive_misses: int = Field(ge=1)


class ContactRestored(ReintegrationEvent):
    """A successful contact after contact was lost: the schedule resumes. Check-ins whose
    dates passed meanwhile are skipped, except the latest, which opens now."""

    type: Literal["reintegration.contact_restored"] = "reintegration.contact_restored"
    owner: ClassVar[Role] = Role.SYSTEM
    skipped_check_ins: tuple[int, ...] = ()


# --- receiving mission ------------------------------------------------------------------


class NeedsAssessed(ReintegrationEvent):
    type: Literal["reintegration.needs_assessed"] = "reintegration.needs_assessed"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    assessment_record_id: RecordId
    needs: tuple[ServiceKind, ...] = Field(max_length=len(ServiceKind))


class PlanAgreed(ReintegrationEvent):
    type: Literal["reintegration.plan_agreed"] = "reintegration.plan_agreed"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    lines: tuple[ServiceLine, ...] = Field(max_length=50)
    plan_record_id: RecordId | None = None


class PlanDeclined(ReintegrationEvent):
    """She declined the whole plan: recorded, not penalised (follow-up and grant go on)."""

    type: Literal["reintegration.plan_declined"] = "reintegration.plan_declined"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID


class PlanChanged(ReintegrationEvent):
    """Lines added or changed mid-flight (each with its new values)."""

    type: Literal["reintegration.plan_changed"] = "reintegration.plan_changed"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    lines: tuple[ServiceLine, ...] = Field(min_length=1, max_length=50)
    # She opted out of these lines (declined): her signed form, if any, in the vault.
    opt_out_form_record_id: RecordId | None = None


class CheckInScheduleChanged(ReintegrationEvent):
    """The remaining check-ins, rescheduled (numbers continue after those already held)."""

    type: Literal["reintegration.check_in_schedule_changed"] = (
        "reintegration.check_in_schedule_changed")
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    check_ins: tuple[ScheduledCheckIn, ...] = Field(min_length=1, max_length=24)


class GrantInstalmentPaid(ReintegrationEvent):
    type: Literal["reintegration.grant_paid"] = "reintegration.grant_paid"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    instalment: int = Field(ge=1)
    attempt: int = Field(ge=1)
    amount_minor: int = Field(gt=0)
    currency: CurrencyCode
    method: PaymentMethod
    receipt_record_id: RecordId | None = None


class GrantPaymentFailed(ReintegrationEvent):
    type: Literal["reintegration.grant_payment_failed"] = "reintegration.grant_payment_failed"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    instalment: int = Field(ge=1)
    attempt: int = Field(ge=1)
    failure: PaymentFailure


class PaymentReviewed(ReintegrationEvent):
    type: Literal["reintegration.payment_reviewed"] = "reintegration.payment_reviewed"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    instalment: int = Field(ge=1)
    resolution: PaymentReviewResolution


class CheckInReached(ReintegrationEvent):
    type: Literal["reintegration.check_in_reached"] = "reintegration.check_in_reached"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    check_in: int = Field(ge=1)
    channel: ContactChannel
    wellbeing_record_id: RecordId | None = None  # the notes, in the vault


class CheckInNotReached(ReintegrationEvent):
    type: Literal["reintegration.check_in_not_reached"] = "reintegration.check_in_not_reached"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    check_in: int = Field(ge=1)
    reason: NotReachedReason


class TracingCompleted(ReintegrationEvent):
    type: Literal["reintegration.tracing_completed"] = "reintegration.tracing_completed"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    located: bool
    channel: ContactChannel | None = None
    wellbeing_record_id: RecordId | None = None
    next_tracing_at: datetime | None = None  # not located: when tracing tries again


class RiskRecorded(ReintegrationEvent):
    type: Literal["reintegration.risk_recorded"] = "reintegration.risk_recorded"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    indicator: RiskIndicator
    report_record_id: RecordId | None = None


class SustainabilityAssessed(ReintegrationEvent):
    """Scores 0–1 computed in domain/ from the indicators (``sustainability_scores``)."""

    type: Literal["reintegration.sustainability_assessed"] = (
        "reintegration.sustainability_assessed")
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    task_id: UUID
    indicators: SustainabilityIndicators
    economic: float = Field(ge=0, le=1)
    social: float = Field(ge=0, le=1)
    psychosocial: float = Field(ge=0, le=1)


class OptedOut(ReintegrationEvent):
    """She wants no more follow-up: no further task or payment."""

    type: Literal["reintegration.opted_out"] = "reintegration.opted_out"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    form_record_id: RecordId | None = None


class ReintegrationClosed(ReintegrationEvent):
    type: Literal["reintegration.closed"] = "reintegration.closed"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    reason: ClosureReason
    other_code: Code | None = None

    @model_validator(mode="after")
    def _other_has_a_code(self) -> ReintegrationClosed:
        if (self.reason is ClosureReason.OTHER) != (self.other_code is not None):
            raise ValueError("a code goes with (and only with) the reason 'other'")
        return self


class ServiceDeliveryReported(ReintegrationEvent):
    """The provider named on a plan line reports where its service stands (decision 0064).
    Written by the provider organisation, which has no other part in the case: the
    workflow checked that the task is its own."""

    type: Literal["reintegration.service_delivery_reported"] = (
        "reintegration.service_delivery_reported")
    owner: ClassVar[Role] = Role.PARTNER
    also_owned_by: ClassVar[frozenset[Role]] = frozenset({Role.RECEIVING_MISSION})
    task_id: UUID
    line_id: UUID
    service: ServiceKind
    provider_org: OrganisationId
    status: ServiceStatus

    @model_validator(mode="after")
    def _reported_not_planned(self) -> ServiceDeliveryReported:
        if self.status is ServiceStatus.PLANNED:
            raise ValueError("a delivery report says where the service stands, not 'planned'")
        return self


class RestoredInstalment(BaseModel):
    """A grant instalment the closure cancelled, owed again after reopening."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instalment: int = Field(ge=1)
    # None: it was already due at the closure, so it is due at once; otherwise the check-in
    # after reopening it now waits for (the one it waited for was cancelled with the case).
    check_in: int | None = Field(default=None, ge=1)


class ReintegrationReopened(ReintegrationEvent):
    """A closed case reopened within its window (decision 0041). ``owed`` records the
    receiving mission's decision about what the closure cancelled: restored (the default)
    or kept cancelled, with its reason. ``owed`` is None only in events recorded before
    that decision existed, when nothing was restored (additive fields: still schema 1)."""

    type: Literal["reintegration.reopened"] = "reintegration.reopened"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    reason: ReopenReason
    check_ins: tuple[ScheduledCheckIn, ...] = Field(min_length=1, max_length=24)
    owed: OwedOnReopening | None = None
    restored_instalments: tuple[RestoredInstalment, ...] = Field(default=(), max_length=12)
    kept_cancelled_instalments: tuple[int, ...] = Field(default=(), max_length=12)
    not_restored_reason: NotRestoredReason | None = None
    decision_record_id: RecordId | None = None

    @model_validator(mode="after")
    def _decision_is_consistent(self) -> ReintegrationReopened:
        kept = self.owed is OwedOnReopening.KEPT_CANCELLED
        if kept != (self.not_restored_reason is not None):
            raise ValueError("a reason goes with (and only with) instalments kept cancelled")
        if self.owed is not OwedOnReopening.RESTORED and self.restored_instalments:
            raise ValueError("instalments are restored only when the decision restores them")
        if not kept and self.kept_cancelled_instalments:
            raise ValueError("instalments are kept cancelled only when the decision says so")
        if self.not_restored_reason is NotRestoredReason.OTHER and not self.decision_record_id:
            raise ValueError("another reason needs the record id of the written decision")
        return self


class AgeAssessedInFollowUp(ReintegrationEvent):
    """An age assessment after the handoff: she is followed up as a child from now on."""

    type: Literal["reintegration.age_assessed"] = "reintegration.age_assessed"
    owner: ClassVar[Role] = Role.RECEIVING_MISSION
    assessed_by: AgeAssessor
    result: AgeCategory
    minor: bool
    evidence_record_id: RecordId


REINTEGRATION_EVENTS: tuple[type[ReintegrationEvent], ...] = (
    AgeAssessedInFollowUp,
    ReintegrationStarted,
    ReintegrationTaskOpened,
    ReintegrationTaskOverdue,
    ReintegrationTaskCancelled,
    PaymentRetryScheduled,
    GrantInstalmentCancelled,
    ReintegrationEscalated,
    ContactLost,
    ContactRestored,
    NeedsAssessed,
    PlanAgreed,
    PlanDeclined,
    PlanChanged,
    CheckInScheduleChanged,
    GrantInstalmentPaid,
    GrantPaymentFailed,
    PaymentReviewed,
    CheckInReached,
    CheckInNotReached,
    TracingCompleted,
    RiskRecorded,
    SustainabilityAssessed,
    OptedOut,
    ReintegrationClosed,
    ReintegrationReopened,
    ServiceDeliveryReported,
)
