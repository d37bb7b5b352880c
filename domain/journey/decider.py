"""The case as a state machine: ``evolve(state, event)`` folds events into state;
``decide(state, command)`` turns a command into new events or a ``Refusal``.

The workflow decides with these functions, so a refusal here is exactly what a
coordinator sees when an Update is rejected.

Why one module of about a thousand lines: the state, its fold and ``decide`` are one match
over some twenty commands and the journey's events, and their rules reach into each other
(a consent withdrawal unwinds bookings, escorts and tasks; the minor rule gates the
interview, the decisions and the handover). Split by command, every part would import the
state and the others' helpers. What stands alone is already apart: the road's facts in
``road.py``, the field's rules in ``policies.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from domain.journey import events as ev
from domain.journey import messages as msg
from domain.journey import transfers
from domain.journey.config import JourneyConfig
from domain.journey.policies import (
    child_decision_refusal,
    child_interview_refusal,
    consent_refusal,
    earliest_witness_departure,
    handoff_code_hash,
    identification_refusal,
    police_escort_required,
    reflection_minimum_days,
    reflection_period_refusal,
    witness_departure_refusal,
)
from domain.journey.road import decide_fact
from domain.journey.vocabulary import (
    MINOR_SAFE_HANDOVERS,
    POLICE_ESCORT_HANDOVERS,
    ConsentChange,
    DecidedBy,
    Determination,
    EscalationReason,
    EscalationResolution,
    EscortKind,
    EscortReleaseReason,
    EscortScope,
    FactSource,
    HandoverTo,
    IdentificationMethod,
    LegFailure,
    Outcome,
    RepeatInterviewReason,
    ReturnOption,
    RiskLevel,
    RoadFact,
    RouteKind,
    TaskCancelReason,
    TaskKind,
    TracingFinding,
    TraffickingStatus,
    TransferReason,
    TransferredRole,
    TravelAdapter,
)
from domain.kernel import AgeAssessor, AgeCategory, Refusal, Role, treated_as_minor

# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenJourneyTask:
    task_id: UUID
    kind: TaskKind
    assignee_org: str
    assignee_role: Role
    due_at: datetime
    escalated: bool = False


@dataclass(frozen=True)
class ActiveBooking:
    booking_ref: str
    provider: TravelAdapter
    attempt: int
    entry_point: str
    departure_at: datetime


@dataclass(frozen=True)
class JourneyState:
    case_id: str
    config: JourneyConfig = field(default_factory=JourneyConfig)
    referral: ev.ReferralRegistered | None = None
    guardian_takes_part: bool = False  # the referral's: a child's guardian comes first
    open_tasks: dict[UUID, OpenJourneyTask] = field(default_factory=dict)
    done_tasks: frozenset[UUID] = frozenset()
    cancelled_tasks: frozenset[UUID] = frozenset()
    interviews: int = 0
    reads_languages: tuple[str, ...] = ()
    trafficking_status: TraffickingStatus | None = None
    decision: ReturnOption | None = None
    granted_reflection_days: int | None = None
    consent_given: bool = False
    consent_withdrawn: ConsentChange | None = None
    guardian_appointed: bool = False
    best_interest: Determination | None = None
    documents_request: UUID | None = None  # pending request
    documents_requests: int = 0
    documents_issued: bool = False
    document_refusals: int = 0  # since the last escalation review
    medically_fit: bool | None = None
    earliest_departure: datetime | None = None
    legally_cleared: bool = False
    risk_level: RiskLevel | None = None
    security_assessed: bool = False
    escorts: dict[UUID, tuple[EscortKind, EscortScope]] = field(default_factory=dict)
    booking: ActiveBooking | None = None
    booking_attempts: int = 0  # all bookings made
    failed_attempts: int = 0  # consecutive failures since the last escalation review
    refused_entry_points: tuple[str, ...] = ()
    departed: bool = False  # the booked leg is under way: she is on it
    on_road: bool = False  # she has left: from the first departure until she is safe
    at_border: str | None = None
    hold_on: bool = False
    hold_since: datetime | None = None
    holds: int = 0
    border_cleared: bool = False
    last_fact: tuple[RoadFact, LegFailure | None] | None = None  # to spot a repeated report
    missing: RoadFact | None = None  # she did not arrive; tracing is open
    last_missing: RoadFact | None = None
    concluded_missing: bool = False
    safe_place: bool = False  # after departure, the return stopped and she is safe
    age_category: AgeCategory | None = None  # the referral's, then the latest assessment
    escalations: tuple[EscalationReason, ...] = ()
    handoff_code_hash: str | None = None
    handoff_confirmed: bool = False
    safe_arrival: bool = False
    handed_over_to_guardian: bool = False
    outcome: Outcome | None = None
    # Roles handed to another organisation (decision 0068), and the transfers awaiting an
    # answer by their decision task's id.
    holders: dict[Role, str] = field(default_factory=dict)
    transfers: dict[UUID, ev.TransferRequested] = field(default_factory=dict)

    @property
    def minor(self) -> bool:
        return self.age_category is not None and treated_as_minor(self.age_category)

    @property
    def safeguards_done(self) -> bool:
        """A minor's guardian is appointed and the best-interest determination made."""
        return self.guardian_appointed and self.best_interest is not None

    @property
    def witness(self) -> bool:
        return self.referral is not None and self.referral.witness

    @property
    def closed(self) -> bool:
        return self.outcome is not None

    def organisation_for(self, role: Role) -> str:
        assert self.referral is not None, "no referral registered"
        if role in self.holders:
            return self.holders[role]
        return {
            Role.SENDING_MISSION: self.referral.sending_mission,
            Role.RECEIVING_MISSION: self.referral.receiving_mission,
            Role.PARTNER: self.referral.border_partner,
        }[role]


# --- evolve -----------------------------------------------------------------------------

_TASK_LIFECYCLE = (ev.TaskOpened, ev.TaskOverdueEscalated, ev.TaskCancelled,
                   ev.RepeatInterviewRequested)


def evolve(state: JourneyState, event: ev.JourneyEvent) -> JourneyState:  # noqa: C901 - one match, flat
    if not isinstance(event, ev.JourneyEvent):
        return state  # written outside the workflows (an operator's reassignment names a
        # task without completing it): the journey's state is the workflow's events alone
    s = state
    task_id = getattr(event, "task_id", None)
    if task_id is not None and not isinstance(event, _TASK_LIFECYCLE) and task_id in s.open_tasks:
        tasks = dict(s.open_tasks)
        del tasks[task_id]
        s = replace(s, open_tasks=tasks, done_tasks=s.done_tasks | {task_id})

    match event:
        case ev.ReferralRegistered():
            return replace(s, referral=event, risk_level=event.risk_level,
                           age_category=event.age_category,
                           guardian_takes_part=event.guardian_takes_part)
        case ev.AgeAssessed():
            return replace(s, age_category=event.result)
        case ev.TaskOpened():
            task = OpenJourneyTask(
                event.task_id, event.kind, event.assignee_org, event.assignee_role, event.due_at
            )
            return replace(s, open_tasks={**s.open_tasks, event.task_id: task})
        case ev.TaskOverdueEscalated():
            task = s.open_tasks.get(event.task_id)
            if task is None:
                return s
            return replace(
                s, open_tasks={**s.open_tasks, event.task_id: replace(task, escalated=True)}
            )
        case ev.TaskCancelled():
            tasks = {k: v for k, v in s.open_tasks.items() if k != event.task_id}
            return replace(s, open_tasks=tasks, cancelled_tasks=s.cancelled_tasks | {event.task_id})
        case ev.ScreeningInterviewRecorded():
            return replace(
                s,
                interviews=s.interviews + 1,
                reads_languages=event.reads_languages,
                trafficking_status=event.trafficking_status,
            )
        case ev.OptionsDecisionRecorded():
            return replace(s, decision=event.choice, granted_reflection_days=event.reflection_days)
        case ev.ConsentRecorded():
            return replace(s, consent_given=True)
        case ev.ConsentWithdrawn():
            return replace(s, consent_withdrawn=event.change)
        case ev.GuardianAppointed():
            return replace(s, guardian_appointed=True)
        case ev.BestInterestDetermined():
            return replace(s, best_interest=event.determination)
        case ev.DocumentsRequested():
            return replace(
                s, documents_request=event.request_id, documents_requests=s.documents_requests + 1
            )
        case ev.DocumentsIssued():
            return replace(s, documents_request=None, documents_issued=True)
        case ev.DocumentsRefused():
            return replace(s, documents_request=None, document_refusals=s.document_refusals + 1)
        case ev.DocumentRequestWithdrawn():
            return replace(s, documents_request=None)
        case ev.MedicalClearanceRecorded():
            return replace(s, medically_fit=event.fit_to_travel)
        case ev.ProsecutorNotified():
            return replace(s, legally_cleared=True, earliest_departure=event.earliest_departure_at)
        case ev.SecurityAssessed():
            return replace(s, security_assessed=True, risk_level=event.risk_level)
        case ev.EscortAssigned():
            return replace(s, escorts={**s.escorts, event.escort_id: (event.kind, event.scope)})
        case ev.EscortReleased():
            return replace(s, escorts={k: v for k, v in s.escorts.items() if k != event.escort_id})
        case ev.JourneyBooked():
            booking = ActiveBooking(
                event.booking_ref, event.provider, event.attempt, event.entry_point,
                event.departure_at,
            )
            # A leg rebooked while she waits at a border keeps her there.
            return replace(s, booking=booking, booking_attempts=event.attempt, departed=False,
                           last_fact=None)
        case ev.JourneyLegFailed():
            return replace(s, booking=None, departed=False, failed_attempts=s.failed_attempts + 1,
                           last_fact=(RoadFact.LEG_FAILED, event.failure))
        case ev.BookingCancelled():
            return replace(s, booking=None)
        case ev.JourneyDeparted():
            return replace(s, departed=True, on_road=True,
                           last_fact=(RoadFact.DEPARTED, None))
        case ev.ArrivedAtBorder():
            return replace(s, at_border=event.entry_point,
                           last_fact=(RoadFact.ARRIVED_AT_BORDER, None))
        case ev.BorderHoldStarted():
            return replace(s, hold_on=True, hold_since=event.started_at, holds=s.holds + 1,
                           last_fact=(RoadFact.BORDER_HOLD_STARTED, None))
        case ev.BorderHoldLifted():
            # Lifted is not crossed: she waits at the border again (border_cleared follows).
            return replace(s, hold_on=False, hold_since=None,
                           last_fact=(RoadFact.BORDER_HOLD_LIFTED, None))
        case ev.BorderCleared():
            return replace(s, border_cleared=True, last_fact=(RoadFact.BORDER_CLEARED, None))
        case ev.BorderEntryRefused():
            return replace(
                s,
                booking=None,
                departed=False,
                at_border=None,
                hold_on=False,
                hold_since=None,
                refused_entry_points=(*s.refused_entry_points, event.entry_point),
                last_fact=(RoadFact.ENTRY_REFUSED, None),
            )
        case ev.DidNotArrive():
            # Not boarding loses the seat; missing later leaves the booking to the tracing.
            booking = None if event.fact is RoadFact.DID_NOT_BOARD else s.booking
            return replace(s, missing=event.fact, last_missing=event.fact, booking=booking,
                           last_fact=(event.fact, None))
        case ev.TracingConcluded():
            return replace(s, missing=None, last_fact=None,
                           concluded_missing=event.finding is TracingFinding.MISSING)
        case ev.SafePlaceConfirmed():
            return replace(s, safe_place=True)
        case ev.CaseEscalated():
            return replace(s, escalations=(*s.escalations, event.reason))
        case ev.EscalationResolved():
            if event.resolution is EscalationResolution.RETRY:
                if event.reason is EscalationReason.REBOOKING_LIMIT_REACHED:
                    return replace(s, failed_attempts=0)
                if event.reason is EscalationReason.DOCUMENT_REFUSALS_LIMIT_REACHED:
                    return replace(s, document_refusals=0)
            return s
        case ev.HandoffCodeIssued():
            return replace(s, handoff_code_hash=event.code_hash)
        case ev.HandoffConfirmed():
            return replace(s, handoff_confirmed=True)
        case ev.SafeArrivalConfirmed():
            return replace(s, safe_arrival=True)
        case ev.HandedOverToGuardian():
            return replace(s, handed_over_to_guardian=True)
        case ev.TransferRequested():
            return replace(s, transfers={**s.transfers, event.transfer_id: event})
        case ev.TransferAccepted():
            moved = {k: replace(t, assignee_org=event.to_org) if k in event.reassigned_tasks
                     else t for k, t in s.open_tasks.items()}
            return replace(s, open_tasks=moved,
                           holders={**s.holders, event.role.role: event.to_org},
                           transfers={k: v for k, v in s.transfers.items()
                                      if k != event.task_id})
        case ev.TransferDeclined():
            return replace(s, transfers={k: v for k, v in s.transfers.items()
                                         if k != event.task_id})
        case _ if event.type in ev.OUTCOME_TYPES:  # type: ignore[attr-defined]
            return replace(s, outcome=Outcome(event.type.removeprefix("outcome.")))  # type: ignore[attr-defined]
        case _:
            return s


def fold(state: JourneyState, events: list[ev.JourneyEvent]) -> JourneyState:
    for event in events:
        state = evolve(state, event)
    return state


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterReferral:
    input: msg.ReturnCaseInput
    guardian_takes_part: bool = True  # False only for runs started before that rule


@dataclass(frozen=True)
class OpenTask:
    task_id: UUID
    kind: TaskKind
    due_at: datetime
    role: Role | None = None  # who does it, when not the kind's usual assignee


@dataclass(frozen=True)
class RequestRepeatInterview:
    task_id: UUID
    due_at: datetime
    reason: RepeatInterviewReason


@dataclass(frozen=True)
class CompleteTask:
    completion: msg.TaskCompletion


@dataclass(frozen=True)
class EscalateOverdueTask:
    task_id: UUID


@dataclass(frozen=True)
class CancelTask:
    task_id: UUID
    reason: TaskCancelReason


@dataclass(frozen=True)
class RequestDocuments:
    request_id: UUID


@dataclass(frozen=True)
class WithdrawDocumentRequest:
    pass


@dataclass(frozen=True)
class AssignEscort:
    escort_id: UUID
    kind: EscortKind
    scope: EscortScope


@dataclass(frozen=True)
class ReleaseEscort:
    escort_id: UUID
    reason: EscortReleaseReason


@dataclass(frozen=True)
class RecordBooking:
    booking: msg.Booking
    task_id: UUID | None = None


@dataclass(frozen=True)
class RecordFact:
    """A fact from the road, as it happened (``domain.journey.road``)."""

    fact: RoadFact
    reporter: Role = Role.SENDING_MISSION
    failure: LegFailure | None = None
    source: FactSource = FactSource.FIELD_REPORT


@dataclass(frozen=True)
class ScheduleRebooking:
    not_before: datetime


@dataclass(frozen=True)
class CancelBooking:
    pass


@dataclass(frozen=True)
class IssueHandoffCode:
    code_hash: str


@dataclass(frozen=True)
class WithdrawConsent:
    change: ConsentChange
    form_record_id: str | None = None
    relayed_by: Role = Role.SENDING_MISSION


@dataclass(frozen=True)
class AssessAge:
    assessed_by: AgeAssessor
    result: AgeCategory
    evidence_record_id: str


@dataclass(frozen=True)
class EscalateCase:
    reason: EscalationReason
    since: datetime


@dataclass(frozen=True)
class CloseCase:
    outcome: Outcome
    reason: EscalationReason | None = None


@dataclass(frozen=True)
class RequestTransfer:
    """Offer a role to another organisation (``domain.journey.transfers``); ``task_id`` is
    its decision task's, and the transfer's id."""

    task_id: UUID
    role: TransferredRole
    to_org: str
    reason: TransferReason
    due_at: datetime
    details_record_id: str | None = None


Command = (
    RegisterReferral | OpenTask | RequestRepeatInterview | CompleteTask
    | EscalateOverdueTask | CancelTask
    | RequestDocuments | WithdrawDocumentRequest | AssignEscort | ReleaseEscort | RecordBooking
    | RecordFact | ScheduleRebooking | CancelBooking | IssueHandoffCode
    | WithdrawConsent | AssessAge | EscalateCase | CloseCase | RequestTransfer
)

Decision = list[ev.JourneyEvent] | Refusal


@dataclass(frozen=True)
class Context:
    """What deciding needs besides the state and the command: the time (the workflow
    passes ``workflow.now()``, the same on replay). Fresh ids travel in the commands."""

    now: datetime

# Commands allowed while a withdrawn consent is being unwound, and, once she has left,
# what keeps her safe until she is in a safe place: the road's facts are still recorded.
_COMPENSATIONS = (CancelTask, WithdrawDocumentRequest, ReleaseEscort, CancelBooking, CloseCase,
                  WithdrawConsent)
_ON_THE_ROAD = (EscalateOverdueTask, EscalateCase)
SAFETY_TASKS = frozenset({TaskKind.SAFE_PLACE, TaskKind.BORDER_COMPANION, TaskKind.TRACING})
"""Tasks that protect her on the road; they stay open when a return stops after departure."""


def _allowed_after_withdrawal(state: JourneyState, command: Command) -> bool:
    if isinstance(command, (*_COMPENSATIONS, RecordFact, AssessAge)):
        return True  # what happened is recorded, whatever follows from it
    if not state.on_road:
        return False
    if isinstance(command, _ON_THE_ROAD):
        return True
    if isinstance(command, OpenTask):
        return command.kind in SAFETY_TASKS
    if isinstance(command, CompleteTask):
        task = state.open_tasks.get(command.completion.task_id)
        return task is not None and task.kind in SAFETY_TASKS
    return False


def decide(state: JourneyState, command: Command, ctx: Context) -> Decision:  # noqa: C901
    if isinstance(command, RegisterReferral):
        return _register(state, command)
    if state.referral is None:
        return Refusal("no referral is registered for this case")
    if state.closed:
        return Refusal(f"the case is closed (outcome: {state.outcome.replace('_', ' ')})")
    if state.consent_withdrawn is not None and not _allowed_after_withdrawal(state, command):
        return Refusal(
            f"consent was {state.consent_withdrawn.value}: the return is being unwound and "
            "nothing moves forward", code="consent_withdrawn"
        )

    match command:
        case OpenTask():
            role = command.role or _assignee_role(command.kind)
            return [
                ev.TaskOpened(
                    task_id=command.task_id,
                    kind=command.kind,
                    assignee_org=state.organisation_for(role),
                    assignee_role=role,
                    due_at=command.due_at,
                )
            ]
        case RequestRepeatInterview():
            if not state.interviews:
                return Refusal("the first screening interview is not recorded yet")
            if state.consent_given:
                return Refusal("consent is recorded: screening is over, the interview on file "
                               "is used")
            if any(t.kind is TaskKind.SCREENING_INTERVIEW for t in state.open_tasks.values()):
                return Refusal("a screening interview is already open")
            return [
                ev.TaskOpened(task_id=command.task_id, kind=TaskKind.SCREENING_INTERVIEW,
                              assignee_org=state.organisation_for(Role.SENDING_MISSION),
                              assignee_role=Role.SENDING_MISSION, due_at=command.due_at),
                ev.RepeatInterviewRequested(task_id=command.task_id, reason=command.reason),
            ]
        case CompleteTask():
            return _complete(state, command, ctx)
        case RequestTransfer():
            return transfers.request(state, command)
        case EscalateOverdueTask():
            task = state.open_tasks.get(command.task_id)
            if task is None:
                return Refusal("the task is no longer open")
            if task.escalated:
                return Refusal("the task was already escalated")
            return [ev.TaskOverdueEscalated(task_id=task.task_id, kind=task.kind,
                                            due_at=task.due_at)]
        case CancelTask():
            task = state.open_tasks.get(command.task_id)
            if task is None:
                return Refusal("the task is no longer open")
            return [ev.TaskCancelled(task_id=task.task_id, kind=task.kind, reason=command.reason)]
        case RequestDocuments():
            if not state.consent_given:
                return Refusal("travel documents cannot be requested before informed consent")
            if refusal := _minor_refusal(state, "travel documents cannot be requested"):
                return refusal
            if state.documents_issued:
                return Refusal("travel documents are already issued")
            if state.documents_request is not None:
                return Refusal("a travel document request is already pending")
            return [ev.DocumentsRequested(request_id=command.request_id,
                                          attempt=state.documents_requests + 1,
                                          consulate_of=state.referral.destination_country)]
        case WithdrawDocumentRequest():
            if state.documents_request is None:
                return Refusal("no travel document request is pending")
            return [ev.DocumentRequestWithdrawn(request_id=state.documents_request)]
        case AssignEscort():
            if state.booking is None and not state.on_road:
                return Refusal("escorts are assigned to a booked journey; nothing is booked")
            if command.kind is EscortKind.STAFF and state.minor and (
                command.scope is not EscortScope.END_TO_END
            ):
                return Refusal("a minor's escort stays end to end, to the guardian or family")
            return [ev.EscortAssigned(escort_id=command.escort_id, kind=command.kind,
                                      scope=command.scope)]
        case ReleaseEscort():
            escort = state.escorts.get(command.escort_id)
            if escort is None:
                return Refusal("the escort is not assigned to this case")
            if refusal := _escort_release_refusal(state, escort[1], command.reason):
                return refusal
            return [ev.EscortReleased(escort_id=command.escort_id, reason=command.reason)]
        case RecordBooking():
            return _book(state, command)
        case RecordFact():
            return decide_fact(state, command, ctx)
        case ScheduleRebooking():
            if state.booking is not None:
                return Refusal("a journey is booked; cancel it before rebooking")
            if state.failed_attempts >= state.config.max_rebook_attempts:
                return Refusal(
                    f"{state.failed_attempts} bookings failed: the case is escalated to the "
                    "coordinator before any further attempt"
                )
            return [ev.RebookingScheduled(next_attempt=state.booking_attempts + 1,
                                          not_before=command.not_before)]
        case CancelBooking():
            if state.booking is None:
                return Refusal("no journey is booked")
            if state.departed:
                return Refusal("she is on this leg: a leg under way is never cancelled")
            return [ev.BookingCancelled(booking_ref=state.booking.booking_ref,
                                        provider=state.booking.provider)]
        case IssueHandoffCode():
            if state.handoff_code_hash is not None:
                return Refusal("a handoff code was already issued")
            return [ev.HandoffCodeIssued(code_hash=command.code_hash)]
        case WithdrawConsent():
            if state.handoff_confirmed:
                return Refusal(
                    "the handoff is complete: consent to the return can no longer be "
                    "withdrawn; the receiving mission supports her from here",
                    code="handoff_complete")
            if state.consent_withdrawn is not None:
                return []  # reported again: recorded once
            if state.missing is not None:
                return Refusal("she did not arrive and is being traced: when she is found, "
                               "complete the tracing task, then record her withdrawal",
                               code="tracing_open")
            if command.relayed_by not in (Role.SENDING_MISSION, Role.RECEIVING_MISSION):
                return Refusal("her withdrawal is relayed by one of the two missions of the "
                               "case", code="not_your_fact")
            return [ev.ConsentWithdrawn(change=command.change,
                                        form_record_id=command.form_record_id,
                                        after_departure=state.on_road,
                                        relayed_by=command.relayed_by)]
        case AssessAge():
            return _assess_age(state, command)
        case EscalateCase():
            return [ev.CaseEscalated(reason=command.reason, since=command.since)]
        case CloseCase():
            return _close(state, command)
    raise TypeError(f"unknown command {command!r}")  # pragma: no cover


def _escort_release_refusal(state: JourneyState, scope: EscortScope,
                            reason: EscortReleaseReason) -> Refusal | None:
    """An escort leaves her only where someone takes over: at the handoff (not a minor's),
    at the guardian handover, at a confirmed safe place; before departure, in her shelter."""
    R = EscortReleaseReason
    if reason is R.HANDOFF_COMPLETE:
        if scope is EscortScope.END_TO_END:
            return Refusal("a minor's escort cannot be released at the border handoff: the "
                           "escort stays until the handover to the guardian or family")
        if not state.handoff_confirmed:
            return Refusal("the handoff is not confirmed")
        return None
    if reason is R.GUARDIAN_HANDOVER_COMPLETE:
        return None if state.handed_over_to_guardian else Refusal(
            "the child is not handed over to her guardian or family")
    if reason is R.SAFE_PLACE_REACHED:
        return None if state.safe_place else Refusal("no safe place is confirmed")
    if reason is R.PERSON_MISSING:
        return None if state.concluded_missing else Refusal(
            "tracing has not concluded that she is missing")
    if state.on_road:
        return Refusal("she has left: her escorts stay with her until she is handed over in "
                       "a safe place", code="escort_stays")
    return None


def _assess_age(state: JourneyState, command: AssessAge) -> Decision:
    if state.handoff_confirmed:
        return Refusal("the handoff is complete: record the assessment in the follow-up",
                       code="handoff_complete")
    current = state.age_category
    assert current is not None
    if treated_as_minor(current) and not treated_as_minor(command.result) and current not in (
        AgeCategory.UNKNOWN, AgeCategory.DISPUTED
    ):
        return Refusal(
            f"she is recorded as a child ({current.value}): one assessment does not make her "
            "an adult; if her age is in doubt, record the result 'disputed' (she keeps the "
            "safeguards) and resolve it with a further assessment", code="age_not_lowered")
    return [ev.AgeAssessed(assessed_by=command.assessed_by, previous=current,
                           result=command.result, minor=treated_as_minor(command.result),
                           evidence_record_id=command.evidence_record_id)]


def _register(state: JourneyState, command: RegisterReferral) -> Decision:
    if state.referral is not None:
        return Refusal("a referral is already registered for this case")
    i = command.input
    if i.sending_mission == i.receiving_mission:
        return Refusal("the sending and receiving missions must be different organisations")
    return [
        ev.ReferralRegistered(
            source=i.referral_source,
            first_placement=i.first_placement,
            risk_level=i.risk_level,
            age_category=i.age_category,
            witness=i.witness,
            host_country=i.host_country,
            destination_country=i.destination_country,
            sending_mission=i.sending_mission,
            receiving_mission=i.receiving_mission,
            border_partner=i.border_partner,
            guardian_takes_part=command.guardian_takes_part,
            sex=i.sex,
        )
    ]


def _assignee_role(kind: TaskKind) -> Role:
    from domain.journey.vocabulary import TASK_ASSIGNEE_ROLE

    return TASK_ASSIGNEE_ROLE[kind]


def _minor_refusal(state: JourneyState, what: str) -> Refusal | None:
    if not state.minor:
        return None
    if not state.guardian_appointed:
        return Refusal(f"{what}: no legal guardian is appointed for the minor")
    if state.best_interest is None:
        return Refusal(f"{what}: best-interest determination for a minor is not complete")
    if state.best_interest is Determination.RETURN_NOT_IN_BEST_INTEREST:
        return Refusal(f"{what}: the best-interest determination found return is not in the "
                       "child's interest")
    return None


def _book(state: JourneyState, command: RecordBooking) -> Decision:
    what = "travel cannot be booked"
    if not state.consent_given:
        return Refusal(f"{what}: informed consent is not recorded")
    if refusal := _minor_refusal(state, what):
        return refusal
    if not state.documents_issued:
        return Refusal(f"{what}: travel documents are not issued")
    if state.medically_fit is not True:
        return Refusal(f"{what}: medical fitness to travel is not confirmed")
    if state.witness and not state.legally_cleared:
        return Refusal(f"{what}: the prosecutor has not been notified of the witness's return")
    if not state.security_assessed:
        return Refusal(f"{what}: the security assessment is not done")
    if state.booking is not None:
        return Refusal(f"{what}: a journey is already booked ({state.booking.booking_ref})")
    if state.failed_attempts >= state.config.max_rebook_attempts:
        return Refusal(f"{what}: {state.failed_attempts} attempts failed; the coordinator must "
                       "review the escalation first")
    b = command.booking
    if b.entry_point in state.refused_entry_points:
        return Refusal(f"{what}: entry was refused at {b.entry_point}; choose another route")
    if refusal := witness_departure_refusal(
        b.departure_at, state.earliest_departure if state.witness else None,
        state.config.witness_notice,
    ):
        return refusal
    return [
        ev.JourneyBooked(
            booking_ref=b.booking_ref,
            attempt=state.booking_attempts + 1,
            provider=b.provider,
            route=b.route,
            entry_point=b.entry_point,
            departure_at=b.departure_at,
            task_id=command.task_id,
        )
    ]


def _close(state: JourneyState, command: CloseCase) -> Decision:
    o = command.outcome
    if state.consent_withdrawn is not None and o not in (Outcome.ALTERNATIVE_PATHWAY,
                                                         Outcome.MISSING):
        return Refusal("consent was withdrawn: the case ends in an alternative pathway")
    match o:
        case Outcome.RETURNED:
            if not (state.handoff_confirmed and state.safe_arrival):
                return Refusal("the return is not complete: safe arrival is not confirmed")
            if state.minor and not state.handed_over_to_guardian:
                return Refusal("the return of a minor is complete only at the handover to the "
                               "guardian or family")
            return [ev.ReturnedOutcome()]
        case Outcome.ALTERNATIVE_PATHWAY:
            if state.consent_withdrawn is None:
                return Refusal("consent was not withdrawn")
            if refusal := _left_in_safety_refusal(state):
                return refusal
            return [ev.AlternativePathwayOutcome(change=state.consent_withdrawn)]
        case Outcome.MISSING:
            if not state.concluded_missing:
                return Refusal("tracing has not concluded that she is missing")
            if state.escorts or (state.booking is not None and not state.departed):
                return Refusal("bookings and escorts must be undone first")
            return [ev.MissingOutcome(fact=_last_missing_fact(state))]
        case Outcome.REFLECTION_PERIOD:
            return [ev.ReflectionPeriodOutcome(
                granted_days=_granted_reflection(state),
                minimum_days=reflection_minimum_days(state.referral.host_country, state.config),
            )]
        case Outcome.RETURN_NOT_IN_BEST_INTEREST:
            if state.best_interest is not Determination.RETURN_NOT_IN_BEST_INTEREST:
                return Refusal("no negative best-interest determination is recorded")
            return [ev.ReturnNotInBestInterestOutcome()]
        case Outcome.RETURN_STOPPED:
            if command.reason is None:
                return Refusal("a stopped return needs the escalation that stopped it")
            if refusal := _left_in_safety_refusal(state):
                return refusal
            return [ev.ReturnStoppedOutcome(reason=command.reason)]
        case Outcome.NOT_IDENTIFIED_AS_VICTIM:
            if state.trafficking_status is not TraffickingStatus.NOT_A_VICTIM:
                return Refusal("the screening identified a (possible) victim of trafficking")
            return [ev.NotIdentifiedAsVictimOutcome()]
    simple = {
        Outcome.TEMPORARY_RESIDENCE: ev.TemporaryResidenceOutcome,
        Outcome.RESETTLEMENT_REFERRAL: ev.ResettlementReferralOutcome,
        Outcome.STAYING_IN_SHELTER: ev.StayingInShelterOutcome,
        Outcome.ASSISTANCE_DECLINED: ev.AssistanceDeclinedOutcome,
        Outcome.RETURNED_BY_OTHER_MEANS: ev.ReturnedByOtherMeansOutcome,
    }
    return [simple[o]()]


def _left_in_safety_refusal(state: JourneyState) -> Refusal | None:
    """A return that stops ends only with nothing left booked and, if she had left, with
    her in a confirmed safe place."""
    if state.on_road and not state.safe_place:
        return Refusal("she has left: a mission must confirm she is in a safe place first",
                       code="not_yet_safe")
    if state.escorts or state.documents_request or (
        state.booking is not None and not state.departed
    ):
        return Refusal("bookings, escorts and document requests must be undone first")
    return None


def _last_missing_fact(state: JourneyState) -> RoadFact:
    return state.last_missing or RoadFact.MISSING_IN_TRANSIT


def _granted_reflection(state: JourneyState) -> int:
    return state.granted_reflection_days or reflection_minimum_days(
        state.referral.host_country, state.config
    )


OUTCOME_OF_OPTION: dict[ReturnOption, Outcome] = {
    ReturnOption.REFLECTION_PERIOD: Outcome.REFLECTION_PERIOD,
    ReturnOption.TEMPORARY_RESIDENCE: Outcome.TEMPORARY_RESIDENCE,
    ReturnOption.RESETTLEMENT_REFERRAL: Outcome.RESETTLEMENT_REFERRAL,
    ReturnOption.STAY_IN_SHELTER: Outcome.STAYING_IN_SHELTER,
    ReturnOption.DECLINE_ASSISTANCE: Outcome.ASSISTANCE_DECLINED,
    ReturnOption.RETURN_BY_OTHER_MEANS: Outcome.RETURNED_BY_OTHER_MEANS,
}


# --- completing a human task ------------------------------------------------------------


def _complete(state: JourneyState, command: CompleteTask,
              ctx: Context) -> Decision:  # noqa: C901
    c = command.completion
    task = state.open_tasks.get(c.task_id)
    if task is None:
        if c.task_id in state.done_tasks:
            return Refusal("this task is already completed")
        if c.task_id in state.cancelled_tasks:
            return Refusal("this task was cancelled")
        return Refusal("there is no such task in this case")
    if c.organisation_id != task.assignee_org:
        return Refusal(
            f"the {task.kind.value.replace('_', ' ')} task is assigned to {task.assignee_org}; "
            f"{c.organisation_id} cannot complete it"
        )
    r = c.result
    if r.kind != task.kind.value:
        return Refusal(f"this is a {task.kind.value} task; a {r.kind} result cannot complete it")

    match r:
        case msg.ScreeningResult():
            if state.interviews and r.repeat_reason is None:
                return Refusal(
                    "she has already been interviewed once and that record is reused; a "
                    "second full interview needs a recorded reason"
                )
            if not state.interviews and r.repeat_reason is not None:
                return Refusal("this is the first interview: it needs no repeat reason")
            if state.guardian_takes_part and (refusal := child_interview_refusal(
                    minor=state.minor, guardian_appointed=state.guardian_appointed,
                    accompanied_by=r.child_accompanied_by)):
                return refusal
            return [ev.ScreeningInterviewRecorded(
                task_id=task.task_id, interview_record_id=r.interview_record_id,
                interview_language=r.interview_language, interpreter_used=r.interpreter_used,
                reads_languages=r.reads_languages, trafficking_status=r.trafficking_status,
                repeat_reason=r.repeat_reason, child_accompanied_by=r.child_accompanied_by,
            )]
        case msg.OptionsDecisionResult():
            if refusal := _child_decision_refusal(state, "options decision", r.decided_by):
                return refusal
            if r.choice is ReturnOption.REFLECTION_PERIOD:
                if refusal := reflection_period_refusal(
                    r.reflection_days, state.referral.host_country, state.config
                ):
                    return refusal
            elif r.reflection_days is not None:
                return Refusal("reflection days belong to a reflection-period decision only")
            return [ev.OptionsDecisionRecorded(
                task_id=task.task_id, choice=r.choice,
                counselled_in_language=r.counselled_in_language,
                reflection_days=r.reflection_days, decided_by=r.decided_by,
            )]
        case msg.ConsentResult():
            if refusal := _child_decision_refusal(state, "consent", r.consented_by):
                return refusal
            if refusal := consent_refusal(
                form_language=r.form_language, reads_languages=state.reads_languages,
                form_version=r.form_version,
                accepted_versions=state.config.accepted_consent_form_versions,
                interpreter_used=r.interpreter_used,
                interpreter_recorded=r.interpreter_record_id is not None,
                signed_at=r.signed_at, now=ctx.now,
            ):
                return refusal
            return [ev.ConsentRecorded(
                task_id=task.task_id, consent_form_record_id=r.consent_form_record_id,
                form_language=r.form_language, form_version=r.form_version,
                interpreter_used=r.interpreter_used,
                interpreter_record_id=r.interpreter_record_id, signed_at=r.signed_at,
                consented_by=r.consented_by,
            )]
        case msg.GuardianAppointmentResult():
            return [ev.GuardianAppointed(task_id=task.task_id,
                                         guardian_record_id=r.guardian_record_id,
                                         authority=r.authority, guardian_org=r.guardian_org)]
        case msg.BestInterestResult():
            return [ev.BestInterestDetermined(
                task_id=task.task_id, determination=r.determination,
                family_assessment_record_id=r.family_assessment_record_id,
            )]
        case msg.TravelDocumentsResult():
            if state.documents_request is None:
                return Refusal("no travel document request is pending")
            if refusal := _minor_refusal(state, "travel documents are on hold"):
                return refusal
            if r.issued:
                if r.document_record_id is None or r.refusal_reason is not None:
                    return Refusal("issued documents need the document record and no refusal "
                                   "reason")
                return [ev.DocumentsIssued(task_id=task.task_id,
                                           request_id=state.documents_request,
                                           document_record_id=r.document_record_id)]
            if r.refusal_reason is None or r.document_record_id is not None:
                return Refusal("a refusal needs its reason and no document record")
            return [ev.DocumentsRefused(task_id=task.task_id, request_id=state.documents_request,
                                        reason=r.refusal_reason)]
        case msg.MedicalClearanceResult():
            return [ev.MedicalClearanceRecorded(task_id=task.task_id,
                                                fit_to_travel=r.fit_to_travel,
                                                medical_record_id=r.medical_record_id)]
        case msg.ProsecutorNoticeResult():
            if r.notified_at > ctx.now:
                return Refusal("the prosecutor cannot be notified in the future")
            return [ev.ProsecutorNotified(
                task_id=task.task_id, notified_at=r.notified_at, testimony=r.testimony,
                earliest_departure_at=earliest_witness_departure(
                    r.notified_at, state.config.witness_notice),
            )]
        case msg.SecurityAssessmentResult():
            return [ev.SecurityAssessed(task_id=task.task_id, risk_level=r.risk_level,
                                        police_escort_required=police_escort_required(
                                            r.risk_level))]
        case msg.EnterBookingResult():
            if r.departure_at <= ctx.now:
                return Refusal("the departure must be in the future")
            route = RouteKind.ALTERNATIVE if state.refused_entry_points else RouteKind.DIRECT
            return _book(state, RecordBooking(
                msg.Booking(booking_ref=r.booking_ref, provider=TravelAdapter.MANUAL, route=route,
                            entry_point=r.entry_point, departure_at=r.departure_at),
                task_id=task.task_id,
            ))
        case msg.EscalationReviewResult():
            if not state.escalations:
                return Refusal("nothing is escalated")
            return [ev.EscalationResolved(task_id=task.task_id, reason=state.escalations[-1],
                                          resolution=r.resolution)]
        case msg.BorderCompanionResult():
            return [ev.BorderCompanionAssigned(task_id=task.task_id,
                                               companion_record_id=r.companion_record_id)]
        case msg.ReceptionHandoffResult():
            if refusal := identification_refusal(r.identification):
                return refusal
            if r.identification is IdentificationMethod.HANDOFF_CODE:
                if r.handoff_code is None:
                    return Refusal("enter the handoff code the escort presents")
                if state.handoff_code_hash != handoff_code_hash(state.case_id, r.handoff_code):
                    return Refusal("the handoff code does not match: do not hand over; call the "
                                   "sending mission")
            elif r.handoff_code is not None:
                return Refusal("a handoff code was entered but identification is by photo match")
            if not r.safe_arrival_confirmed:
                return Refusal("the handoff completes only with safe arrival confirmed; if she "
                               "did not arrive safely, alert the sending mission")
            events: list[ev.JourneyEvent] = [
                ev.HandoffConfirmed(task_id=task.task_id, identification=r.identification),
                ev.SafeArrivalConfirmed(task_id=task.task_id),
            ]
            if r.assistance_provided:
                events.append(ev.PostArrivalAssistanceRecorded(task_id=task.task_id,
                                                               provided=r.assistance_provided))
            return events
        case msg.GuardianHandoverResult():
            if not state.minor:
                return Refusal("a guardian handover is recorded for minors only")
            if r.handed_to is HandoverTo.FAMILY and (
                state.best_interest is not Determination.RETURN_IN_BEST_INTEREST
            ):
                return Refusal("no best-interest determination found that going to her family "
                               "is in the child's interest: hand her to her legal guardian")
            return [ev.HandedOverToGuardian(task_id=task.task_id, handed_to=r.handed_to,
                                            guardian_record_id=r.guardian_record_id)]
        case msg.SafePlaceResult():
            if state.minor and r.handed_to not in MINOR_SAFE_HANDOVERS:
                return Refusal("a child is handed only to her legal guardian or a child "
                               "protection authority", code="unsafe_handover")
            if _police_escorted(state) and r.handed_to not in POLICE_ESCORT_HANDOVERS:
                return Refusal("her police escort hands her over only to a guardian or a "
                               "named authority", code="unsafe_handover")
            return [ev.SafePlaceConfirmed(task_id=task.task_id, place=r.place,
                                          handed_to=r.handed_to,
                                          safe_place_record_id=r.safe_place_record_id)]
        case msg.TransferDecisionResult():
            return transfers.answer(state, task, r)
        case msg.TracingResult():
            return [ev.TracingConcluded(task_id=task.task_id, finding=r.finding, then=r.then,
                                        tracing_record_id=r.tracing_record_id)]
    raise TypeError(f"unknown task result {r!r}")  # pragma: no cover


def _child_decision_refusal(state: JourneyState, what: str, decided_by: DecidedBy
                            ) -> Refusal | None:
    if not state.guardian_takes_part:  # registered before the rule: its own order stands
        return None
    return child_decision_refusal(what=what, minor=state.minor,
                                  guardian_appointed=state.guardian_appointed,
                                  decided_by=decided_by)


def _police_escorted(state: JourneyState) -> bool:
    return any(kind is EscortKind.POLICE for kind, _ in state.escorts.values())


# --- ownership of authors ---------------------------------------------------------------


def role_of(state: JourneyState, organisation_id: str) -> Role | None:
    """The role an organisation plays in this case (None: it plays none)."""
    from domain.kernel import SYSTEM_ORGANISATION

    if organisation_id == SYSTEM_ORGANISATION:
        return Role.SYSTEM
    if state.referral is None:
        return None
    for role in (Role.SENDING_MISSION, Role.RECEIVING_MISSION, Role.PARTNER):
        if organisation_id == state.organisation_for(role):  # a transfer's holder, if any
            return role
    return None


__all__ = [
    "ActiveBooking",
    "JourneyState",
    "Command",
    "Context",
    "Decision",
    "OUTCOME_OF_OPTION",
    "OpenJourneyTask",
    "decide",
    "evolve",
    "fold",
    "role_of",
]
