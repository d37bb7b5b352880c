"""What crosses the Temporal boundary for reintegration: the child workflow's input (with
the state a run carries over when it continues as new), Update payloads, the query view.

Codes and opaque ids only; a unit test walks every model here for identity fields.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal, Union
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.kernel import ActorId, CaseId, Code, CountryCode, OrganisationId, RecordId
from domain.reintegration.config import ReintegrationConfig
from domain.reintegration.events import ServiceLine, SustainabilityIndicators
from domain.reintegration.vocabulary import (
    CheckinStatus,
    ClosureReason,
    ContactChannel,
    CurrencyCode,
    InstalmentStatus,
    InstalmentTrigger,
    NotReachedReason,
    NotRestoredReason,
    OwedOnReopening,
    PaymentFailure,
    PaymentMethod,
    PaymentReviewResolution,
    ReintegrationStage,
    ReintegrationTaskKind,
    ReopenReason,
    RiskIndicator,
    ServiceKind,
    ServiceStatus,
)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- state (carried across continue-as-new) ---------------------------------------------


class OpenReintegrationTask(_Message):
    task_id: UUID
    kind: ReintegrationTaskKind
    assignee_org: OrganisationId
    due_at: datetime
    escalated: bool = False
    check_in: int | None = None
    instalment: int | None = None
    attempt: int | None = None
    line_id: UUID | None = None


class CheckIn(_Message):
    number: int = Field(ge=1)
    due_at: datetime
    status: CheckinStatus = CheckinStatus.SCHEDULED


class Instalment(_Message):
    number: int = Field(ge=1)
    trigger: InstalmentTrigger
    check_in: int | None = None
    amount_minor: int = Field(gt=0)
    currency: CurrencyCode
    method: PaymentMethod
    status: InstalmentStatus = InstalmentStatus.WAITING
    attempts: int = Field(default=0, ge=0)  # payment tasks opened so far
    failures: int = Field(default=0, ge=0)  # consecutive failures since the last review
    retry_at: datetime | None = None
    # Cancelled by a closure or her opting out: owed again if the case reopens (unless the
    # mission decides otherwise then); was it already due, or waiting for a check-in?
    owed_if_reopened: bool = False
    due_when_cancelled: bool = False


class SustainabilityScores(_Message):
    economic: float = Field(ge=0, le=1)
    social: float = Field(ge=0, le=1)
    psychosocial: float = Field(ge=0, le=1)


class ReintegrationState(_Message):
    """Everything the workflow decides with: folded from the run's events, carried as is
    into the next run when the history is continued as new."""

    case_id: CaseId
    receiving_mission: OrganisationId
    started: bool = False
    arrived_at: datetime | None = None
    check_ins: tuple[CheckIn, ...] = ()
    instalments: tuple[Instalment, ...] = ()
    needs_assessed: bool = False
    needs: tuple[ServiceKind, ...] = ()
    plan_agreed: bool = False
    plan_declined: bool = False
    plan: tuple[ServiceLine, ...] = ()
    open_tasks: tuple[OpenReintegrationTask, ...] = ()
    done_tasks: tuple[UUID, ...] = ()
    cancelled_tasks: tuple[UUID, ...] = ()
    consecutive_misses: int = 0
    contact_lost: bool = False
    tracing_failures: int = 0
    tracing_retry_at: datetime | None = None
    risks: tuple[RiskIndicator, ...] = ()
    sustainability: SustainabilityScores | None = None
    opted_out: bool = False
    closed_reason: ClosureReason | None = None
    closed_at: datetime | None = None
    reopenings: int = 0
    # Followed up as a child: the journey's answer at arrival, then any age assessment
    # (None only in states carried from runs before this was recorded).
    minor: bool | None = None

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    def task(self, task_id: UUID) -> OpenReintegrationTask | None:
        return next((t for t in self.open_tasks if t.task_id == task_id), None)

    def instalment(self, number: int) -> Instalment:
        return next(i for i in self.instalments if i.number == number)

    def check_in(self, number: int) -> CheckIn | None:
        return next((c for c in self.check_ins if c.number == number), None)


class ReintegrationInput(_Message):
    """Non-identifying: the case id, the missions, the arrival time, the programme.

    ``carried`` and ``run`` are set only by continue-as-new."""

    case_id: CaseId
    receiving_mission: OrganisationId
    destination_country: CountryCode
    minor: bool
    arrived_at: datetime
    pre_departure_instalment_paid: bool = Field(
        default=False,
        description="True once the journey records the pre-departure instalment itself; "
        "until then it is the first payment task of reintegration (decision 0031).")
    config: ReintegrationConfig = Field(default_factory=ReintegrationConfig)
    carried: ReintegrationState | None = None
    events_recorded: int = Field(default=0, ge=0)
    run: int = Field(default=1, ge=1)


class ReintegrationResult(_Message):
    case_id: CaseId
    closed_reason: ClosureReason | None
    events_recorded: int
    runs: int


# --- Update: complete a task ------------------------------------------------------------


class NeedsAssessmentResult(_Message):
    kind: Literal["needs_assessment"] = "needs_assessment"
    assessment_record_id: RecordId
    needs: tuple[ServiceKind, ...] = Field(default=(), max_length=len(ServiceKind))


class PlanResult(_Message):
    kind: Literal["reintegration_plan"] = "reintegration_plan"
    lines: tuple[ServiceLine, ...] = Field(default=(), max_length=50)
    declined_whole_plan: bool = False
    plan_record_id: RecordId | None = None


class GrantPaymentResult(_Message):
    kind: Literal["grant_payment"] = "grant_payment"
    paid: bool
    method: PaymentMethod | None = None  # the method used, when not the planned one
    failure: PaymentFailure | None = None
    receipt_record_id: RecordId | None = None


class PaymentReviewResult(_Message):
    kind: Literal["payment_review"] = "payment_review"
    resolution: PaymentReviewResolution


class CheckInResult(_Message):
    kind: Literal["check_in"] = "check_in"
    reached: bool
    channel: ContactChannel | None = None
    wellbeing_record_id: RecordId | None = None  # PersonVault.add_note(WELLBEING_NOTE)
    not_reached_reason: NotReachedReason | None = None


class TracingResult(_Message):
    kind: Literal["tracing"] = "tracing"
    located: bool
    channel: ContactChannel | None = None
    wellbeing_record_id: RecordId | None = None


class SustainabilityResult(_Message):
    kind: Literal["sustainability_assessment"] = "sustainability_assessment"
    indicators: SustainabilityIndicators


class ServiceDeliveryResult(_Message):
    """The provider's report on its plan line: delivered, in progress (it reports again
    later), declined by her, or dropped part-way."""

    kind: Literal["service_delivery"] = "service_delivery"
    status: ServiceStatus

    @model_validator(mode="after")
    def _not_planned(self) -> ServiceDeliveryResult:
        if self.status is ServiceStatus.PLANNED:
            raise ValueError("report delivered, in_progress, declined or dropped")
        return self


ReintegrationTaskResult = Annotated[
    Union[  # noqa: UP007
        NeedsAssessmentResult,
        PlanResult,
        GrantPaymentResult,
        PaymentReviewResult,
        CheckInResult,
        TracingResult,
        SustainabilityResult,
        ServiceDeliveryResult,
    ],
    Field(discriminator="kind"),
]


class ReintegrationTaskCompletion(_Message):
    """Payload of the ``complete_task`` Update of ``ReintegrationWorkflow``."""

    task_id: UUID
    organisation_id: OrganisationId
    actor_id: ActorId
    result: ReintegrationTaskResult


# --- Updates: plan and schedule, risks, opting out, closing, reopening ------------------


class PlanChange(_Message):
    """Update ``change_plan``: lines added or changed (by ``line_id``), and/or the remaining
    check-ins rescheduled (offsets after arrival, strictly increasing, in the future)."""

    organisation_id: OrganisationId
    actor_id: ActorId
    lines: tuple[ServiceLine, ...] = Field(default=(), max_length=50)
    remaining_check_ins_after_arrival: tuple[timedelta, ...] | None = Field(
        default=None, min_length=1, max_length=24)

    @model_validator(mode="after")
    def _something_changes(self) -> PlanChange:
        if not self.lines and self.remaining_check_ins_after_arrival is None:
            raise ValueError("a plan change changes lines, the check-in schedule, or both")
        return self


class RiskReport(_Message):
    """Update ``record_risk``: an indicator of re-trafficking or a threat."""

    organisation_id: OrganisationId
    actor_id: ActorId
    indicator: RiskIndicator
    report_record_id: RecordId | None = None


class OptOut(_Message):
    """Update ``record_opt_out``: she wants no further follow-up, or (``line_ids``) no
    more of these services of her plan: they are declined, the rest goes on."""

    organisation_id: OrganisationId
    actor_id: ActorId
    form_record_id: RecordId | None = None
    line_ids: tuple[UUID, ...] = Field(default=(), max_length=50)


class Closure(_Message):
    """Update ``close``: a reason from the fixed list; ``other`` needs a code."""

    organisation_id: OrganisationId
    actor_id: ActorId
    reason: ClosureReason
    other_code: Code | None = None


class Reopening(_Message):
    """Update ``reopen``: the check-ins after reopening come from the configuration.

    What the closure cancelled and she is still owed (grant instalments) is owed again
    (``owed="restored"``, the default) unless the mission decides otherwise here
    (``owed="kept_cancelled"`` with ``not_restored_reason``; ``other`` also needs
    ``decision_record_id``, the written decision in the vault). Recorded in the event."""

    organisation_id: OrganisationId
    actor_id: ActorId
    reason: ReopenReason
    owed: OwedOnReopening = OwedOnReopening.RESTORED
    not_restored_reason: NotRestoredReason | None = None
    decision_record_id: RecordId | None = None


class Recorded(_Message):
    """What a reintegration Update returns: the event types it appended."""

    event_types: tuple[Code, ...]


# --- query ------------------------------------------------------------------------------


class ReintegrationView(_Message):
    """Query ``status``."""

    stage: ReintegrationStage
    next_check_in_due: datetime | None
    payment_failing: bool
    events_recorded: int
    run: int
    state: ReintegrationState
