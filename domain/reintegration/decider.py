"""Reintegration and follow-up as a state machine (§5.5).

``evolve(state, event)`` folds events into ``ReintegrationState``; ``decide(state, command,
ctx)`` turns a command of the receiving mission into events or a ``Refusal``;
``next_step(state, ctx)`` is the agenda: what the programme itself does next at ``ctx.now``
(open a check-in, retry a payment, mark contact lost, close at the end of the support
period); ``next_wake`` is when the agenda next has something to do. The workflow only
sleeps until ``next_wake``, runs ``next_step`` until it is empty, and records the events.

Why one module of about 780 lines: ``evolve``, ``decide`` and the agenda read and write the
same schedule of check-ins and grant instalments; the agenda is only correct with the fold
next to it, and splitting them would spread one schedule's rules over three files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.journey.messages import AgeAssessment
from domain.kernel import Refusal, treated_as_minor
from domain.reintegration import events as rev
from domain.reintegration import messages as rmsg
from domain.reintegration.config import ReintegrationConfig
from domain.reintegration.messages import ReintegrationState
from domain.reintegration.vocabulary import (
    TERMINAL_SERVICE_STATUSES,
    THREAT_INDICATORS,
    CheckinStatus,
    ClosureReason,
    InstalmentCancelReason,
    InstalmentStatus,
    InstalmentTrigger,
    Level,
    NotRestoredReason,
    OwedOnReopening,
    PaymentReviewResolution,
    ReintegrationEscalationReason,
    ReintegrationStage,
    ReintegrationTaskCancelReason,
    ReintegrationTaskKind,
    ServiceStatus,
)

Event = rev.ReintegrationEvent

Kind = ReintegrationTaskKind


@dataclass(frozen=True)
class Context:
    """What deciding needs besides the state: the programme, the time, fresh ids (the
    workflow passes ``workflow.uuid4``, so ids are the same on replay)."""

    config: ReintegrationConfig
    now: datetime
    new_id: Callable[[], UUID]
    # Providers get delivery tasks (decision 0064); False only to replay runs from before.
    delivery_tasks: bool = True


# --- sustainability (scores 0–1 from a few indicators) ----------------------------------

_LEVEL = {Level.NONE: 0.0, Level.PARTIAL: 0.5, Level.FULL: 1.0}


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return round(sum(values) / len(values), 2)


def sustainability_scores(i: rev.SustainabilityIndicators) -> rmsg.SustainabilityScores:
    """Economic (income, housing, basic needs), social (family support, access to services,
    no stigma) and psychosocial (feels safe, wellbeing 1–5, a trusted person): each the
    mean of its indicators on 0–1, rounded to two decimals."""
    return rmsg.SustainabilityScores(
        economic=_mean([_LEVEL[i.income], _LEVEL[i.housing], float(i.basic_needs_met)]),
        social=_mean([_LEVEL[i.family_support], float(i.access_to_services),
                      float(not i.stigma_experienced)]),
        psychosocial=_mean([float(i.feels_safe), (i.wellbeing_rating - 1) / 4,
                            float(i.has_trusted_person)]),
    )


# --- reading the state ------------------------------------------------------------------

_FAILING = frozenset({InstalmentStatus.FAILED, InstalmentStatus.RETRY_SCHEDULED,
                      InstalmentStatus.IN_REVIEW})
_UNSETTLED = frozenset({InstalmentStatus.PAYABLE, InstalmentStatus.OPEN,
                        InstalmentStatus.FAILED, InstalmentStatus.RETRY_SCHEDULED,
                        InstalmentStatus.IN_REVIEW})
_FINAL_CHECK_IN = frozenset({CheckinStatus.REACHED, CheckinStatus.NOT_REACHED,
                             CheckinStatus.SKIPPED, CheckinStatus.CANCELLED})
# Cancellations that end the case, not a decision about the instalment itself (a payment
# review's): what they cancel is still owed if the case reopens.
_CLOSING = frozenset({InstalmentCancelReason.CASE_CLOSED, InstalmentCancelReason.OPTED_OUT})


def stage_of(s: ReintegrationState) -> ReintegrationStage:
    if s.closed:
        return ReintegrationStage.CLOSED
    if s.contact_lost:
        return ReintegrationStage.CONTACT_LOST
    if not s.needs_assessed:
        return ReintegrationStage.NEEDS_ASSESSMENT
    if not (s.plan_agreed or s.plan_declined):
        return ReintegrationStage.PLANNING
    if _open(s, Kind.SUSTAINABILITY_ASSESSMENT):
        return ReintegrationStage.FINAL_ASSESSMENT
    return ReintegrationStage.FOLLOW_UP


def next_check_in_due(s: ReintegrationState) -> datetime | None:
    if s.closed:
        return None
    scheduled = [c.due_at for c in s.check_ins if c.status is CheckinStatus.SCHEDULED]
    return min(scheduled, default=None)


def payment_failing(s: ReintegrationState) -> bool:
    return any(i.failures > 0 and i.status in _UNSETTLED for i in s.instalments)


def _open(s: ReintegrationState, kind: Kind) -> list[rmsg.OpenReintegrationTask]:
    return [t for t in s.open_tasks if t.kind is kind]


def _last_check_in(s: ReintegrationState) -> rmsg.CheckIn | None:
    return max(s.check_ins, key=lambda c: c.number, default=None)


def next_wake(s: ReintegrationState) -> datetime | None:
    """The next moment the agenda has something to do (None: only people can move it)."""
    if not s.started or s.closed:
        return None
    times = [t.due_at for t in s.open_tasks if not t.escalated]
    if not s.contact_lost and not _open(s, Kind.CHECK_IN):
        due = next_check_in_due(s)
        if due is not None:
            times.append(due)
    times += [i.retry_at for i in s.instalments
              if i.status is InstalmentStatus.RETRY_SCHEDULED and i.retry_at is not None]
    if s.contact_lost and not _open(s, Kind.TRACING) and s.tracing_retry_at is not None:
        times.append(s.tracing_retry_at)
    return min(times, default=None)


# --- evolve -----------------------------------------------------------------------------


def _with_instalment(s: ReintegrationState, number: int, **changes: object) -> ReintegrationState:
    return s.model_copy(update={"instalments": tuple(
        i.model_copy(update=changes) if i.number == number else i for i in s.instalments)})


def _with_check_in(s: ReintegrationState, number: int, status: CheckinStatus) -> ReintegrationState:
    return s.model_copy(update={"check_ins": tuple(
        c.model_copy(update={"status": status}) if c.number == number else c
        for c in s.check_ins)})


def _instalments_payable(s: ReintegrationState, check_ins: set[int]) -> ReintegrationState:
    return s.model_copy(update={"instalments": tuple(
        i.model_copy(update={"status": InstalmentStatus.PAYABLE})
        if i.status is InstalmentStatus.WAITING and i.check_in in check_ins else i
        for i in s.instalments)})


def _merge_lines(plan: tuple[rev.ServiceLine, ...],
                 lines: tuple[rev.ServiceLine, ...]) -> tuple[rev.ServiceLine, ...]:
    changed = {line.line_id: line for line in lines}
    merged = [changed.pop(line.line_id, line) for line in plan]
    return (*merged, *changed.values())


def evolve(s: ReintegrationState, event: Event) -> ReintegrationState:  # noqa: C901 - one match, flat
    if not isinstance(event, rev.ReintegrationEvent):
        return s  # written outside the workflows: an operator's reassignment completes none
    task_id = getattr(event, "task_id", None)
    lifecycle = (rev.ReintegrationTaskOpened, rev.ReintegrationTaskOverdue,
                 rev.ReintegrationTaskCancelled)
    if task_id is not None and not isinstance(event, lifecycle) and s.task(task_id):
        s = s.model_copy(update={
            "open_tasks": tuple(t for t in s.open_tasks if t.task_id != task_id),
            "done_tasks": (*s.done_tasks, task_id)})

    match event:
        case rev.ReintegrationStarted():
            at_once = {InstalmentTrigger.BEFORE_DEPARTURE, InstalmentTrigger.AT_RECEPTION}
            return s.model_copy(update={
                "started": True,
                "arrived_at": event.arrived_at,
                "check_ins": tuple(rmsg.CheckIn(number=c.number, due_at=c.due_at)
                                   for c in event.check_ins),
                "instalments": tuple(
                    rmsg.Instalment(
                        number=p.number, trigger=p.trigger, check_in=p.check_in,
                        amount_minor=p.amount_minor, currency=p.currency, method=p.method,
                        status=(InstalmentStatus.PAYABLE if p.trigger in at_once
                                else InstalmentStatus.WAITING))
                    for p in event.instalments),
            })
        case rev.ReintegrationTaskOpened():
            task = rmsg.OpenReintegrationTask(
                task_id=event.task_id, kind=event.kind, assignee_org=event.assignee_org,
                due_at=event.due_at, check_in=event.check_in, instalment=event.instalment,
                attempt=event.attempt, line_id=event.line_id)
            s = s.model_copy(update={"open_tasks": (*s.open_tasks, task)})
            if event.kind is Kind.CHECK_IN and event.check_in is not None:
                return _with_check_in(s, event.check_in, CheckinStatus.OPEN)
            if event.kind is Kind.GRANT_PAYMENT and event.instalment is not None:
                return _with_instalment(s, event.instalment, status=InstalmentStatus.OPEN,
                                        attempts=event.attempt, retry_at=None)
            if event.kind is Kind.PAYMENT_REVIEW and event.instalment is not None:
                return _with_instalment(s, event.instalment, status=InstalmentStatus.IN_REVIEW)
            if event.kind is Kind.TRACING:
                return s.model_copy(update={"tracing_retry_at": None})
            return s
        case rev.ReintegrationTaskOverdue():
            return s.model_copy(update={"open_tasks": tuple(
                t.model_copy(update={"escalated": True}) if t.task_id == event.task_id else t
                for t in s.open_tasks)})
        case rev.ReintegrationTaskCancelled():
            task = s.task(event.task_id)
            s = s.model_copy(update={
                "open_tasks": tuple(t for t in s.open_tasks if t.task_id != event.task_id),
                "cancelled_tasks": (*s.cancelled_tasks, event.task_id)})
            if task is not None and task.check_in is not None:
                return _with_check_in(s, task.check_in, CheckinStatus.CANCELLED)
            return s
        case rev.NeedsAssessed():
            return s.model_copy(update={"needs_assessed": True, "needs": event.needs})
        case rev.PlanAgreed():
            return s.model_copy(update={"plan_agreed": True, "plan": event.lines})
        case rev.PlanDeclined():
            return s.model_copy(update={"plan_declined": True})
        case rev.PlanChanged():
            return s.model_copy(update={"plan": _merge_lines(s.plan, event.lines)})
        case rev.CheckInScheduleChanged():
            kept = tuple(c for c in s.check_ins if c.status is not CheckinStatus.SCHEDULED)
            new = tuple(rmsg.CheckIn(number=c.number, due_at=c.due_at) for c in event.check_ins)
            return s.model_copy(update={"check_ins": (*kept, *new)})
        case rev.GrantInstalmentPaid():
            return _with_instalment(s, event.instalment, status=InstalmentStatus.PAID,
                                    failures=0)
        case rev.GrantPaymentFailed():
            failures = s.instalment(event.instalment).failures + 1
            return _with_instalment(s, event.instalment, status=InstalmentStatus.FAILED,
                                    failures=failures)
        case rev.PaymentRetryScheduled():
            return _with_instalment(s, event.instalment,
                                    status=InstalmentStatus.RETRY_SCHEDULED,
                                    retry_at=event.not_before)
        case rev.PaymentReviewed():
            if event.resolution is PaymentReviewResolution.RETRY:
                return _with_instalment(s, event.instalment, status=InstalmentStatus.PAYABLE,
                                        failures=0)
            return s
        case rev.GrantInstalmentCancelled():
            closing = event.reason in _CLOSING
            return _with_instalment(
                s, event.instalment, status=InstalmentStatus.CANCELLED, retry_at=None,
                owed_if_reopened=closing,
                due_when_cancelled=(closing and s.instalment(event.instalment).status
                                    is not InstalmentStatus.WAITING))
        case rev.CheckInReached():
            s = _with_check_in(s, event.check_in, CheckinStatus.REACHED)
            s = s.model_copy(update={"consecutive_misses": 0})
            return _instalments_payable(s, set(range(1, event.check_in + 1)))
        case rev.CheckInNotReached():
            s = _with_check_in(s, event.check_in, CheckinStatus.NOT_REACHED)
            return s.model_copy(update={"consecutive_misses": s.consecutive_misses + 1})
        case rev.ContactLost():
            return s.model_copy(update={"contact_lost": True})
        case rev.TracingCompleted():
            if event.located:
                return s
            return s.model_copy(update={"tracing_failures": s.tracing_failures + 1,
                                        "tracing_retry_at": event.next_tracing_at})
        case rev.ContactRestored():
            for number in event.skipped_check_ins:
                s = _with_check_in(s, number, CheckinStatus.SKIPPED)
            missed = {c.number for c in s.check_ins
                      if c.status in (CheckinStatus.NOT_REACHED, CheckinStatus.SKIPPED)}
            s = _instalments_payable(s, missed)
            return s.model_copy(update={"contact_lost": False, "consecutive_misses": 0,
                                        "tracing_failures": 0, "tracing_retry_at": None})
        case rev.RiskRecorded():
            return s.model_copy(update={"risks": (*s.risks, event.indicator)})
        case rev.ServiceDeliveryReported():
            return s.model_copy(update={"plan": tuple(
                line.model_copy(update={"status": event.status})
                if line.line_id == event.line_id else line for line in s.plan)})
        case rev.AgeAssessedInFollowUp():
            return s.model_copy(update={"minor": event.minor})
        case rev.SustainabilityAssessed():
            return s.model_copy(update={"sustainability": rmsg.SustainabilityScores(
                economic=event.economic, social=event.social, psychosocial=event.psychosocial)})
        case rev.OptedOut():
            return s.model_copy(update={"opted_out": True})
        case rev.ReintegrationClosed():
            return s.model_copy(update={"closed_reason": event.reason, "check_ins": tuple(
                c.model_copy(update={"status": CheckinStatus.CANCELLED})
                if c.status is CheckinStatus.SCHEDULED else c for c in s.check_ins)})
        case rev.ReintegrationReopened():
            new = tuple(rmsg.CheckIn(number=c.number, due_at=c.due_at) for c in event.check_ins)
            for restored in event.restored_instalments:
                waits = restored.check_in is not None
                s = _with_instalment(
                    s, restored.instalment,
                    status=InstalmentStatus.WAITING if waits else InstalmentStatus.PAYABLE,
                    check_in=(restored.check_in if waits
                              else s.instalment(restored.instalment).check_in),
                    failures=0, retry_at=None, owed_if_reopened=False, due_when_cancelled=False)
            for number in event.kept_cancelled_instalments:
                s = _with_instalment(s, number, owed_if_reopened=False, due_when_cancelled=False)
            return s.model_copy(update={
                "closed_reason": None, "closed_at": None, "opted_out": False,
                "reopenings": s.reopenings + 1, "contact_lost": False,
                "consecutive_misses": 0, "tracing_failures": 0, "tracing_retry_at": None,
                "sustainability": None, "check_ins": (*s.check_ins, *new)})
        case _:
            return s


def fold(s: ReintegrationState, events: Iterable[Event]) -> ReintegrationState:
    for event in events:
        s = evolve(s, event)
    return s


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StartFollowUp:
    arrived_at: datetime
    pre_departure_instalment_paid: bool


@dataclass(frozen=True)
class CompleteTask:
    completion: rmsg.ReintegrationTaskCompletion


@dataclass(frozen=True)
class ChangePlan:
    change: rmsg.PlanChange


@dataclass(frozen=True)
class RecordRisk:
    report: rmsg.RiskReport


@dataclass(frozen=True)
class RecordOptOut:
    opt_out: rmsg.OptOut


@dataclass(frozen=True)
class CloseFollowUp:
    closure: rmsg.Closure


@dataclass(frozen=True)
class ReopenFollowUp:
    reopening: rmsg.Reopening
    # False only to replay runs that reopened before decision 0041 (``workflow.patched``):
    # then nothing the closure cancelled was restored and no decision was recorded.
    restores_owed: bool = True


@dataclass(frozen=True)
class AssessAge:
    assessment: AgeAssessment


Command = (StartFollowUp | CompleteTask | ChangePlan | RecordRisk | RecordOptOut
           | CloseFollowUp | ReopenFollowUp | AssessAge)
Decision = list[Event] | Refusal


def decide(s: ReintegrationState, command: Command, ctx: Context) -> Decision:  # noqa: C901
    if isinstance(command, StartFollowUp):
        return _start(s, command, ctx)
    if not s.started:
        return Refusal("reintegration has not started for this case")
    by = _payload(command).organisation_id
    if by != s.receiving_mission and not _providers_own_task(s, command):
        return Refusal(f"reintegration is run by the receiving mission ({s.receiving_mission}); "
                       f"{by} cannot change it", code="wrong_organisation")
    if isinstance(command, RecordRisk):
        # Recorded any time, even after closure: a risk never waits.
        r = command.report
        reason = (ReintegrationEscalationReason.THREAT if r.indicator in THREAT_INDICATORS
                  else ReintegrationEscalationReason.RE_TRAFFICKING_INDICATOR)
        return [rev.RiskRecorded(indicator=r.indicator, report_record_id=r.report_record_id),
                rev.ReintegrationEscalated(reason=reason, since=ctx.now)]
    if isinstance(command, AssessAge):
        a = command.assessment
        minor = treated_as_minor(a.result)
        if s.minor and not minor:
            return Refusal("she is followed up as a child: one assessment does not make her "
                           "an adult; her safeguards stay", code="age_not_lowered")
        return [rev.AgeAssessedInFollowUp(assessed_by=a.assessed_by, result=a.result,
                                          minor=minor, evidence_record_id=a.evidence_record_id)]
    if isinstance(command, ReopenFollowUp):
        return _reopen(s, command, ctx)
    if s.closed:
        return Refusal(f"the case is closed ({s.closed_reason.value.replace('_', ' ')}); "
                       "reopen it first")
    match command:
        case CompleteTask():
            return _complete(s, command.completion, ctx)
        case ChangePlan():
            return _change_plan(s, command.change, ctx)
        case RecordOptOut() if command.opt_out.line_ids:
            return _opt_out_of_lines(s, command.opt_out)
        case RecordOptOut():
            return [rev.OptedOut(form_record_id=command.opt_out.form_record_id),
                    *_wind_up(s, ReintegrationTaskCancelReason.OPTED_OUT,
                              InstalmentCancelReason.OPTED_OUT),
                    rev.ReintegrationClosed(reason=ClosureReason.OPTED_OUT)]
        case CloseFollowUp():
            c = command.closure
            if c.reason is ClosureReason.OPTED_OUT:
                return Refusal("record her opting out (record_opt_out), not a closure")
            if (c.reason is ClosureReason.OTHER) != (c.other_code is not None):
                return Refusal("a closure for another reason needs its code (and only then)")
            return [*_wind_up(s, ReintegrationTaskCancelReason.CASE_CLOSED,
                              InstalmentCancelReason.CASE_CLOSED),
                    rev.ReintegrationClosed(reason=c.reason, other_code=c.other_code)]
    raise TypeError(f"unknown command {command!r}")  # pragma: no cover


def _providers_own_task(s: ReintegrationState, command: Command) -> bool:
    """A plan line's provider completes its delivery task, and does nothing else here."""
    if not isinstance(command, CompleteTask):
        return False
    task = s.task(command.completion.task_id)
    return (task is not None and task.kind is Kind.SERVICE_DELIVERY
            and task.assignee_org == command.completion.organisation_id)


def _payload(command: Command) -> (rmsg.ReintegrationTaskCompletion | rmsg.PlanChange
                                    | rmsg.RiskReport | rmsg.OptOut | rmsg.Closure
                                    | rmsg.Reopening):
    match command:
        case CompleteTask():
            return command.completion
        case ChangePlan():
            return command.change
        case RecordRisk():
            return command.report
        case RecordOptOut():
            return command.opt_out
        case CloseFollowUp():
            return command.closure
        case ReopenFollowUp():
            return command.reopening
        case AssessAge():
            return command.assessment
    raise TypeError(f"no payload in {command!r}")  # pragma: no cover


def _start(s: ReintegrationState, command: StartFollowUp, ctx: Context) -> Decision:
    if s.started:
        return Refusal("reintegration has already started")
    config = ctx.config
    specs = [spec for spec in config.grant
             if not (command.pre_departure_instalment_paid
                     and spec.trigger is InstalmentTrigger.BEFORE_DEPARTURE)]
    return [
        rev.ReintegrationStarted(
            arrived_at=command.arrived_at,
            check_ins=tuple(rev.ScheduledCheckIn(number=n, due_at=command.arrived_at + after)
                            for n, after in enumerate(config.check_ins_after_arrival, 1)),
            instalments=tuple(
                rev.InstalmentPlanned(number=n, trigger=spec.trigger, check_in=spec.check_in,
                                      amount_minor=spec.amount_minor, currency=spec.currency,
                                      method=spec.method)
                for n, spec in enumerate(specs, 1)),
        ),
        _open_task(s, ctx, Kind.NEEDS_ASSESSMENT,
                   command.arrived_at + config.needs_assessment_within),
    ]


def _open_task(s: ReintegrationState, ctx: Context, kind: Kind, due_at: datetime,
               **refs: object) -> rev.ReintegrationTaskOpened:
    refs.setdefault("assignee_org", s.receiving_mission)
    return rev.ReintegrationTaskOpened(task_id=ctx.new_id(), kind=kind, due_at=due_at,
                                       **refs)  # type: ignore[arg-type]


def _wind_up(s: ReintegrationState, task_reason: ReintegrationTaskCancelReason,
             instalment_reason: InstalmentCancelReason) -> list[Event]:
    """Nothing left open: tasks cancelled, unpaid instalments cancelled."""
    return [
        *(rev.ReintegrationTaskCancelled(task_id=t.task_id, kind=t.kind, reason=task_reason)
          for t in s.open_tasks),
        *(rev.GrantInstalmentCancelled(instalment=i.number, reason=instalment_reason)
          for i in s.instalments
          if i.status not in (InstalmentStatus.PAID, InstalmentStatus.CANCELLED)),
    ]


# --- reopening ------------------------------------------------------------------------


def _reopen(s: ReintegrationState, command: ReopenFollowUp, ctx: Context) -> Decision:
    """Reopened within the window: new check-ins; what the closure cancelled and she is still
    owed is owed again unless the mission decides otherwise (recorded); a needs assessment
    the closure cancelled opens again (decision 0041)."""
    if not s.closed:
        return Refusal("the case is not closed")
    window = ctx.config.reopen_window
    if s.closed_at is not None and ctx.now >= s.closed_at + window:
        return Refusal(f"the case closed on {s.closed_at:%Y-%m-%d}; a closed case can be "
                       f"reopened within {window.days} days of its closure only",
                       code="reopen_window_passed")
    reopening = command.reopening
    kept = reopening.owed is OwedOnReopening.KEPT_CANCELLED
    if kept != (reopening.not_restored_reason is not None):
        return Refusal("keeping cancelled instalments cancelled needs a reason (and only "
                       "then)", code="owed_decision_incomplete")
    if (reopening.not_restored_reason is NotRestoredReason.OTHER
            and reopening.decision_record_id is None):
        return Refusal("another reason needs the record id of the written decision",
                       code="owed_decision_incomplete")
    first = max((c.number for c in s.check_ins), default=0) + 1
    check_ins = tuple(rev.ScheduledCheckIn(number=first + n, due_at=ctx.now + after)
                      for n, after in enumerate(ctx.config.check_ins_after_reopening))
    if not command.restores_owed:
        return [rev.ReintegrationReopened(reason=reopening.reason, check_ins=check_ins)]
    owed = [i for i in s.instalments
            if i.status is InstalmentStatus.CANCELLED and i.owed_if_reopened]
    events: list[Event] = [rev.ReintegrationReopened(
        reason=reopening.reason, check_ins=check_ins, owed=reopening.owed,
        restored_instalments=() if kept else tuple(
            rev.RestoredInstalment(instalment=i.number,
                                   check_in=None if i.due_when_cancelled else first)
            for i in owed),
        kept_cancelled_instalments=tuple(i.number for i in owed) if kept else (),
        not_restored_reason=reopening.not_restored_reason,
        decision_record_id=reopening.decision_record_id)]
    if not s.needs_assessed and not _open(s, Kind.NEEDS_ASSESSMENT):
        events.append(_open_task(s, ctx, Kind.NEEDS_ASSESSMENT,
                                 ctx.now + ctx.config.needs_assessment_within))
    return events


# --- completing a task ------------------------------------------------------------------


def _complete(s: ReintegrationState, c: rmsg.ReintegrationTaskCompletion,  # noqa: C901
              ctx: Context) -> Decision:
    task = s.task(c.task_id)
    if task is None:
        if c.task_id in s.done_tasks:
            return Refusal("this task is already completed")
        if c.task_id in s.cancelled_tasks:
            return Refusal("this task was cancelled")
        return Refusal("there is no such task in this case")
    if c.organisation_id != task.assignee_org:
        return Refusal(f"the {task.kind.value.replace('_', ' ')} task is assigned to "
                       f"{task.assignee_org}; {c.organisation_id} cannot complete it")
    r = c.result
    if r.kind != task.kind.value:
        return Refusal(f"this is a {task.kind.value} task; a {r.kind} result cannot complete it")
    tid = task.task_id
    match r:
        case rmsg.NeedsAssessmentResult():
            return [rev.NeedsAssessed(task_id=tid, assessment_record_id=r.assessment_record_id,
                                      needs=r.needs)]
        case rmsg.PlanResult():
            if r.declined_whole_plan:
                if r.lines:
                    return Refusal("she declined the whole plan: record no service lines")
                return [rev.PlanDeclined(task_id=tid)]
            if not r.lines:
                return Refusal("a plan has at least one service line (or she declined it)")
            if refusal := _lines_refusal(s, r.lines, ctx):
                return refusal
            return [rev.PlanAgreed(task_id=tid, lines=r.lines, plan_record_id=r.plan_record_id)]
        case rmsg.GrantPaymentResult():
            assert task.instalment is not None and task.attempt is not None
            instalment = s.instalment(task.instalment)
            if r.paid:
                if r.failure is not None:
                    return Refusal("a paid instalment has no failure")
                return [rev.GrantInstalmentPaid(
                    task_id=tid, instalment=instalment.number, attempt=task.attempt,
                    amount_minor=instalment.amount_minor, currency=instalment.currency,
                    method=r.method or instalment.method,
                    receipt_record_id=r.receipt_record_id)]
            if r.failure is None or r.receipt_record_id is not None:
                return Refusal("a failed payment needs its failure and has no receipt")
            return [rev.GrantPaymentFailed(task_id=tid, instalment=instalment.number,
                                           attempt=task.attempt, failure=r.failure)]
        case rmsg.PaymentReviewResult():
            assert task.instalment is not None
            events: list[Event] = [rev.PaymentReviewed(task_id=tid, instalment=task.instalment,
                                                       resolution=r.resolution)]
            if r.resolution is PaymentReviewResolution.CANCEL:
                events.append(rev.GrantInstalmentCancelled(
                    instalment=task.instalment, reason=InstalmentCancelReason.REVIEW_DECIDED))
            return events
        case rmsg.CheckInResult():
            assert task.check_in is not None
            if r.reached:
                if r.channel is None or r.not_reached_reason is not None:
                    return Refusal("a check-in that reached her states how (the channel) and "
                                   "no not-reached reason")
                return [rev.CheckInReached(task_id=tid, check_in=task.check_in,
                                           channel=r.channel,
                                           wellbeing_record_id=r.wellbeing_record_id)]
            if r.not_reached_reason is None or r.channel or r.wellbeing_record_id:
                return Refusal("a check-in that did not reach her states why, and nothing else")
            return [rev.CheckInNotReached(task_id=tid, check_in=task.check_in,
                                          reason=r.not_reached_reason)]
        case rmsg.TracingResult():
            if r.located:
                if r.channel is None:
                    return Refusal("she was located: state how (the channel)")
                return [rev.TracingCompleted(task_id=tid, located=True, channel=r.channel,
                                             wellbeing_record_id=r.wellbeing_record_id),
                        rev.ContactRestored(skipped_check_ins=_skipped(s, ctx.now))]
            if r.channel or r.wellbeing_record_id:
                return Refusal("she was not located: record no channel and no notes")
            exhausted = s.tracing_failures + 1 >= ctx.config.tracing_attempts
            return [rev.TracingCompleted(
                task_id=tid, located=False,
                next_tracing_at=None if exhausted else ctx.now + ctx.config.tracing_retry_after)]
        case rmsg.ServiceDeliveryResult():
            line = next(line for line in s.plan if line.line_id == task.line_id)
            return [rev.ServiceDeliveryReported(task_id=tid, line_id=line.line_id,
                                                service=line.service,
                                                provider_org=line.provider_org,
                                                status=r.status)]
        case rmsg.SustainabilityResult():
            scores = sustainability_scores(r.indicators)
            return [rev.SustainabilityAssessed(task_id=tid, indicators=r.indicators,
                                               economic=scores.economic, social=scores.social,
                                               psychosocial=scores.psychosocial)]
    raise TypeError(f"unknown task result {r!r}")  # pragma: no cover


def _skipped(s: ReintegrationState, now: datetime) -> tuple[int, ...]:
    """Check-ins whose dates passed while contact was lost, except the latest (it opens
    now: the schedule resumes from there)."""
    passed = sorted(c.number for c in s.check_ins
                    if c.status is CheckinStatus.SCHEDULED and c.due_at <= now)
    return tuple(passed[:-1])


# --- changes mid-flight -----------------------------------------------------------------

_STATUS_MOVES: dict[ServiceStatus, frozenset[ServiceStatus]] = {
    ServiceStatus.PLANNED: frozenset(ServiceStatus),
    ServiceStatus.IN_PROGRESS: frozenset(ServiceStatus) - {ServiceStatus.PLANNED},
}


def _lines_refusal(s: ReintegrationState, lines: tuple[rev.ServiceLine, ...],
                   ctx: Context) -> Refusal | None:
    ids = [line.line_id for line in lines]
    if len(set(ids)) != len(ids):
        return Refusal("each service line appears once")
    current = {line.line_id: line for line in s.plan}
    for line in lines:
        before = current.get(line.line_id)
        if before is None:
            if line.status in (ServiceStatus.DELIVERED, ServiceStatus.DROPPED):
                return Refusal(f"a new {line.service.value} line starts planned, in progress "
                               "or declined")
            if line.due_at <= ctx.now:
                return Refusal(f"the {line.service.value} line is due in the past")
            continue
        if before.service is not line.service:
            return Refusal("a line keeps its service; add a new line for another service")
        if before.status in TERMINAL_SERVICE_STATUSES:
            return Refusal(f"the {before.service.value} line is {before.status.value}: it "
                           "does not change any more")
        if line.status not in _STATUS_MOVES[before.status]:
            return Refusal(f"the {before.service.value} line cannot go from "
                           f"{before.status.value} back to {line.status.value}")
    return None


def _change_plan(s: ReintegrationState, change: rmsg.PlanChange, ctx: Context) -> Decision:
    events: list[Event] = []
    if change.lines:
        if not (s.plan_agreed or s.plan_declined):
            return Refusal("the reintegration plan is not recorded yet: complete its task")
        if refusal := _lines_refusal(s, change.lines, ctx):
            return refusal
        events.append(rev.PlanChanged(lines=change.lines))
        events += _cancel_deliveries(s, change.lines, ReintegrationTaskCancelReason.PLAN_CHANGED)
    offsets = change.remaining_check_ins_after_arrival
    if offsets is not None:
        assert s.arrived_at is not None
        if list(offsets) != sorted(set(offsets)):
            return Refusal("check-ins must be strictly increasing")
        held = [c for c in s.check_ins if c.status is not CheckinStatus.SCHEDULED]
        after = max((c.due_at for c in held), default=s.arrived_at)
        dues = [s.arrived_at + o for o in offsets]
        if dues[0] <= max(after, ctx.now):
            return Refusal("the remaining check-ins must all be in the future, after the "
                           "check-ins already held")
        first = max((c.number for c in held), default=0) + 1
        numbers = range(first, first + len(dues))
        waiting = [i.check_in for i in s.instalments
                   if i.status is InstalmentStatus.WAITING and i.check_in is not None]
        if waiting and max(waiting) > numbers[-1]:
            return Refusal(f"an instalment falls due at check-in {max(waiting)}: keep at least "
                           f"{max(waiting)} check-ins")
        events.append(rev.CheckInScheduleChanged(check_ins=tuple(
            rev.ScheduledCheckIn(number=n, due_at=d) for n, d in zip(numbers, dues,
                                                                       strict=True))))
    return events


def _cancel_deliveries(s: ReintegrationState, lines: Iterable[rev.ServiceLine],
                       reason: ReintegrationTaskCancelReason) -> list[Event]:
    """The open delivery tasks of lines that ended, or whose provider changed (the agenda
    opens one for the new provider)."""
    ended = {line.line_id for line in lines if line.status in TERMINAL_SERVICE_STATUSES}
    providers = {line.line_id: line.provider_org for line in lines}
    return [rev.ReintegrationTaskCancelled(task_id=t.task_id, kind=t.kind, reason=reason)
            for t in _open(s, Kind.SERVICE_DELIVERY)
            if t.line_id in ended or providers.get(t.line_id, t.assignee_org) != t.assignee_org]


def _opt_out_of_lines(s: ReintegrationState, opt_out: rmsg.OptOut) -> Decision:
    """She wants no more of some services: those lines are declined, the rest goes on."""
    if len(set(opt_out.line_ids)) != len(opt_out.line_ids):
        return Refusal("each service line appears once", code="invalid_opt_out")
    plan = {line.line_id: line for line in s.plan}
    lines = []
    for line_id in opt_out.line_ids:
        line = plan.get(line_id)
        if line is None:
            return Refusal(f"her plan has no service line {line_id}", code="no_such_line")
        if line.status in TERMINAL_SERVICE_STATUSES:
            return Refusal(f"the {line.service.value} line is {line.status.value} already",
                           code="line_ended")
        lines.append(line.model_copy(update={"status": ServiceStatus.DECLINED}))
    return [rev.PlanChanged(lines=tuple(lines), opt_out_form_record_id=opt_out.form_record_id),
            *_cancel_deliveries(s, lines, ReintegrationTaskCancelReason.OPTED_OUT)]


def _deliveries_due(s: ReintegrationState, ctx: Context) -> list[Event]:
    """A delivery task for each line still to deliver whose provider is not the receiving
    mission itself (it changes its own lines through the plan), one at a time per line."""
    if not ctx.delivery_tasks:
        return []
    reporting = {t.line_id for t in _open(s, Kind.SERVICE_DELIVERY)}
    return [_open_task(s, ctx, Kind.SERVICE_DELIVERY,
                       max(line.due_at, ctx.now + ctx.config.delivery_report_within),
                       assignee_org=line.provider_org, line_id=line.line_id)
            for line in s.plan
            if line.status not in TERMINAL_SERVICE_STATUSES
            and line.provider_org != s.receiving_mission and line.line_id not in reporting]


# --- the agenda: what the programme does by itself --------------------------------------


def next_step(s: ReintegrationState, ctx: Context) -> list[Event]:  # noqa: C901
    """The next group of system events due at ``ctx.now`` (empty: nothing to do now).
    Called until empty; each group is recorded in one append."""
    if not s.started or s.closed:
        return []
    config, now = ctx.config, ctx.now

    overdue = [rev.ReintegrationTaskOverdue(task_id=t.task_id, kind=t.kind, due_at=t.due_at)
               for t in s.open_tasks if not t.escalated and t.due_at <= now]
    if overdue:
        return overdue

    if not s.contact_lost and s.consecutive_misses >= config.misses_before_contact_lost:
        return [rev.ContactLost(consecutive_misses=s.consecutive_misses),
                _open_task(s, ctx, Kind.TRACING, now + config.tracing_within)]
    if s.contact_lost and not _open(s, Kind.TRACING):
        if s.tracing_retry_at is not None:
            if s.tracing_retry_at <= now:
                return [_open_task(s, ctx, Kind.TRACING, now + config.tracing_within)]
        elif s.tracing_failures >= config.tracing_attempts:
            return [*_wind_up(s, ReintegrationTaskCancelReason.CASE_CLOSED,
                              InstalmentCancelReason.CASE_CLOSED),
                    rev.ReintegrationClosed(reason=ClosureReason.NO_LONGER_REACHABLE)]

    if s.needs_assessed and not (s.plan_agreed or s.plan_declined) and not _open(
            s, Kind.REINTEGRATION_PLAN):
        assert s.arrived_at is not None
        due = max(s.arrived_at + config.plan_within, now + config.needs_assessment_within)
        return [_open_task(s, ctx, Kind.REINTEGRATION_PLAN, due)]

    if deliveries := _deliveries_due(s, ctx):
        return deliveries

    payments: list[Event] = []
    for i in s.instalments:
        if i.status is InstalmentStatus.PAYABLE or (
                i.status is InstalmentStatus.RETRY_SCHEDULED and i.retry_at is not None
                and i.retry_at <= now):
            payments.append(_open_task(
                s, ctx, Kind.GRANT_PAYMENT, now + config.payment_within, instalment=i.number,
                attempt=i.attempts + 1, amount_minor=i.amount_minor, currency=i.currency,
                method=i.method))
        elif i.status is InstalmentStatus.FAILED:
            if i.failures >= config.payment_attempts:
                payments += [
                    rev.ReintegrationEscalated(
                        reason=ReintegrationEscalationReason.PAYMENT_FAILURES_LIMIT, since=now,
                        instalment=i.number),
                    _open_task(s, ctx, Kind.PAYMENT_REVIEW, now + config.review_within,
                               instalment=i.number)]
            else:
                payments.append(rev.PaymentRetryScheduled(
                    instalment=i.number, next_attempt=i.attempts + 1,
                    not_before=now + config.payment_retry_delay(i.failures)))
    if payments:
        return payments

    if not s.contact_lost and not _open(s, Kind.CHECK_IN):
        due = [c for c in s.check_ins if c.status is CheckinStatus.SCHEDULED and c.due_at <= now]
        if due:
            first = min(due, key=lambda c: c.number)
            return [_open_task(s, ctx, Kind.CHECK_IN, first.due_at + config.check_in_window,
                               check_in=first.number)]

    last = _last_check_in(s)
    if (last is not None and last.status is CheckinStatus.REACHED and s.sustainability is None
            and not _open(s, Kind.SUSTAINABILITY_ASSESSMENT)):
        return [_open_task(s, ctx, Kind.SUSTAINABILITY_ASSESSMENT,
                           now + config.sustainability_within)]

    # Providers' reports do not hold the end of her support: closing cancels them.
    if (not s.contact_lost
            and not [t for t in s.open_tasks if t.kind is not Kind.SERVICE_DELIVERY]
            and all(c.status in _FINAL_CHECK_IN for c in s.check_ins)
            and not any(i.status in _UNSETTLED for i in s.instalments)):
        return [*_wind_up(s, ReintegrationTaskCancelReason.CASE_CLOSED,
                          InstalmentCancelReason.CASE_CLOSED),
                rev.ReintegrationClosed(reason=ClosureReason.SUPPORT_PERIOD_ENDED)]
    return []


__all__ = [
    "AssessAge", "ChangePlan", "CloseFollowUp", "Command", "CompleteTask", "Context", "Decision",
    "RecordOptOut", "RecordRisk", "ReopenFollowUp", "StartFollowUp", "decide", "evolve", "fold",
    "next_check_in_due", "next_step", "next_wake", "payment_failing", "stage_of",
    "sustainability_scores",
]
