"""``ReturnCaseWorkflow``: one assisted return, referral to safe reception, as a durable
workflow (domain brief, "The journey of one case").

The workflow decides with ``domain.case.decide`` and records every step as events through
the ``append_events`` activity; it never holds identity data. Human steps are tasks opened
as events and completed through the ``complete_task`` Update; facts from the road arrive as
``journey_fact`` signals; ``withdraw_consent`` stops everything and unwinds what was booked.

Imports: the standard library, temporalio and domain/ only (the sandbox rejects the rest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import case as c
    from domain import events as ev
    from domain import messages as msg
    from domain.config import JourneyConfig
    from domain.policies import (
        Refusal,
        border_hold_steps,
        handoff_code_from,
        handoff_code_hash,
        required_escorts,
        treated_as_minor,
    )
    from domain.reintegration_messages import ReintegrationInput
    from domain.vocabulary import (
        SYSTEM_ORGANISATION,
        WORKFLOW_ACTOR,
        Determination,
        EscalationReason,
        EscalationResolution,
        EscortReleaseReason,
        EscortScope,
        FactSource,
        LegFailure,
        Outcome,
        ReturnOption,
        Role,
        RouteKind,
        Stage,
        TaskCancelReason,
        TaskKind,
        TraffickingStatus,
        TravelAdapter,
    )
    from workflows import search_attributes as sa

T = TypeVar("T")

WORKFLOW_ID_PREFIX = "return-"

# Activity names (the workflow refers to them by name: activities import the database).
APPEND_EVENTS = "append_events"
BOOK_JOURNEY = "book_journey"
CANCEL_BOOKING = "cancel_booking"
NO_ROUTE = "NoRouteAvailable"  # business error of book_journey

# Transient failures (database down, provider timeout) retry with backoff, without limit:
# an operator sees the failing activity in the UI. Business failures are non-retryable
# ApplicationErrors, handled by the workflow as decisions.
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
ACTIVITY_TIMEOUT = timedelta(seconds=30)


def workflow_id_for(case_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{case_id}"


class Refused(ApplicationError):
    """A command the domain refused (Update handlers: reported to the caller)."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.reason, type="Refused", non_retryable=True)


class _Stopped(ApplicationError):
    """Forward progress stopped because consent was withdrawn."""

    def __init__(self) -> None:
        super().__init__("consent was withdrawn: the return is being unwound",
                         type="ConsentWithdrawn", non_retryable=True)


@workflow.defn
class ReturnCaseWorkflow:
    @workflow.init
    def __init__(self, input: msg.ReturnCaseInput) -> None:
        self._input = input
        self._state = c.CaseState(case_id=input.case_id, config=input.config)
        self._stage = Stage.REFERRAL
        self._blocked_on: str | None = None
        self._events_appended = 0
        self._ignored_signals = 0
        self._facts: list[msg.JourneyFact] = []
        self._results: dict[UUID, msg.TaskResult] = {}
        self._withdrawal: msg.ConsentWithdrawal | None = None
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._watchers: set[asyncio.Task[None]] = set()
        self._journey: asyncio.Task[None] | None = None
        self._handoff_code: str | None = None
        self._op_errors: list[BaseException] = []
        self._closing = False  # the case is ending on its own: a withdrawal is moot

    # --- entry point ------------------------------------------------------------------

    @workflow.run
    async def run(self, input: msg.ReturnCaseInput) -> msg.ReturnCaseResult:
        workflow.upsert_search_attributes(
            [
                sa.STAGE.value_set(self._stage.value),
                sa.SENDING_MISSION.value_set(input.sending_mission),
                sa.RECEIVING_MISSION.value_set(input.receiving_mission),
                sa.DESTINATION_COUNTRY.value_set(input.destination_country),
                sa.MINOR.value_set(treated_as_minor(input.age_category)),
            ]
        )
        self._journey = asyncio.create_task(self._run_journey())
        try:
            await self._journey
        except (asyncio.CancelledError, _Stopped):
            if self._withdrawal is None:
                raise  # the workflow itself was cancelled
        if self._withdrawal is not None and not self._state.closed:
            await self._unwind_after_withdrawal()
        for watcher in self._watchers:
            watcher.cancel()
        await workflow.wait_condition(lambda: not self._inflight)
        if self._op_errors:
            raise self._op_errors[0]
        await workflow.wait_condition(workflow.all_handlers_finished)
        return msg.ReturnCaseResult(
            case_id=input.case_id,
            outcome=self._state.outcome or "open",
            events_appended=self._events_appended,
        )

    # --- Update: complete a human task --------------------------------------------------

    @workflow.update
    async def complete_task(self, completion: msg.TaskCompletion) -> msg.TaskCompleted:
        appended = await self._op(
            lambda: self._apply_now(
                [c.CompleteTask(completion, workflow.now())],
                author_org=completion.organisation_id,
                actor=completion.actor_id,
                refusal_raises=True,
            )
        )
        self._results[completion.task_id] = completion.result
        return msg.TaskCompleted(
            task_id=completion.task_id, event_types=tuple(e.type for e in appended)
        )

    @complete_task.validator
    def _validate_completion(self, completion: msg.TaskCompletion) -> None:
        # Runs before anything is written: a rejected Update leaves no trace in the history.
        if self._withdrawal is not None:
            raise ValueError(
                f"consent was {self._withdrawal.change.value}: the return is being unwound"
            )
        decision = c.decide(self._state, c.CompleteTask(completion, workflow.now()))
        if isinstance(decision, Refusal):
            raise ValueError(decision.reason)

    # --- Update: a second screening interview, only with a reason -----------------------

    @workflow.update
    async def request_repeat_interview(
        self, request: msg.RepeatInterviewRequest
    ) -> msg.OpenTaskView:
        kind = TaskKind.SCREENING_INTERVIEW
        command = c.RequestRepeatInterview(workflow.uuid4(),
                                           workflow.now() + self._input.config.due(kind),
                                           request.reason)
        await self._op(lambda: self._apply_now([command], author_org=request.organisation_id,
                                               actor=request.actor_id, refusal_raises=True))
        self._watch(command.task_id, command.due_at)
        task = self._state.open_tasks[command.task_id]
        return msg.OpenTaskView(task_id=task.task_id, kind=task.kind,
                                assignee_org=task.assignee_org, due_at=task.due_at,
                                escalated=False)

    @request_repeat_interview.validator
    def _validate_repeat_interview(self, request: msg.RepeatInterviewRequest) -> None:
        if self._withdrawal is not None:
            raise ValueError("consent was withdrawn: the return is being unwound")
        if request.organisation_id != self._input.sending_mission:
            raise ValueError("only the sending mission holds the screening interview")
        decision = c.decide(self._state, c.RequestRepeatInterview(
            UUID(int=0), workflow.now(), request.reason))
        if isinstance(decision, Refusal):
            raise ValueError(decision.reason)

    # --- signals: facts from outside ----------------------------------------------------

    @workflow.signal
    def journey_fact(self, fact: msg.JourneyFact) -> None:
        if fact.organisation_id != self._input.sending_mission:
            self._ignore("journey fact from an organisation that is not the sending mission")
            return
        if fact.fact == "leg_failed" and fact.failure is None:
            self._ignore("a leg_failed fact without its failure")
            return
        self._facts.append(fact)

    @workflow.signal
    def withdraw_consent(self, withdrawal: msg.ConsentWithdrawal) -> None:
        if withdrawal.organisation_id != self._input.sending_mission:
            self._ignore("consent withdrawal from an organisation that is not the sending mission")
            return
        if (self._withdrawal is not None or self._closing or self._state.closed
                or self._state.handoff_confirmed):
            self._ignore("consent withdrawal after the handoff, while closing, or repeated")
            return
        # Stop forward progress now, in this workflow task: the journey coroutine is cancelled
        # at its next await; steps already under way finish and are then unwound.
        self._withdrawal = withdrawal
        if self._journey is not None:
            self._journey.cancel()
        for watcher in self._watchers:
            watcher.cancel()

    # --- queries ------------------------------------------------------------------------

    @workflow.query
    def status(self) -> msg.CaseView:
        return msg.CaseView(
            case_id=self._input.case_id,
            stage=self._stage.value,
            blocked_on=self._blocked_on,
            open_tasks=tuple(
                msg.OpenTaskView(
                    task_id=t.task_id,
                    kind=t.kind,
                    assignee_org=t.assignee_org,
                    due_at=t.due_at,
                    escalated=t.escalated,
                )
                for t in self._state.open_tasks.values()
            ),
            outcome=self._state.outcome,
            events_appended=self._events_appended,
            booking_attempts=self._state.booking_attempts,
            ignored_signals=self._ignored_signals,
        )

    @workflow.query
    def handoff_code(self) -> str | None:
        """The one-time code the escort presents and the receiving officer enters. Only its
        hash is ever written; serve it to the escort and receiving officer alone (the API
        authorises the caller)."""
        return None if self._state.handoff_confirmed else self._handoff_code

    # --- the journey --------------------------------------------------------------------

    async def _run_journey(self) -> None:
        i = self._input
        await self._apply([c.RegisterReferral(i)])

        self._set_stage(Stage.SCREENING)
        screening = await self._task(TaskKind.SCREENING_INTERVIEW)
        assert isinstance(screening, msg.ScreeningResult)
        if screening.trafficking_status is TraffickingStatus.NOT_A_VICTIM:
            return await self._close(Outcome.NOT_IDENTIFIED_AS_VICTIM)

        self._set_stage(Stage.OPTIONS)
        decision = await self._task(TaskKind.OPTIONS_DECISION)
        assert isinstance(decision, msg.OptionsDecisionResult)
        if decision.choice is not ReturnOption.RETURN:
            # Every other choice is an outcome of its own: the case exists and counts.
            return await self._close(c.OUTCOME_OF_OPTION[decision.choice])

        self._set_stage(Stage.CONSENT)
        await self._task(TaskKind.INFORMED_CONSENT)

        if self._state.minor:
            self._set_stage(Stage.MINOR_SAFEGUARDS)
            await self._task(TaskKind.GUARDIAN_APPOINTMENT)
            await self._task(TaskKind.BEST_INTEREST_DETERMINATION)
            if self._state.best_interest is Determination.RETURN_NOT_IN_BEST_INTEREST:
                return await self._close(Outcome.RETURN_NOT_IN_BEST_INTEREST)

        self._set_stage(Stage.DOCUMENTS)
        if not await self._travel_documents():
            return await self._stop_return(EscalationReason.DOCUMENT_REFUSALS_LIMIT_REACHED)

        self._set_stage(Stage.CLEARANCES)
        await self._clearances()

        stopped = await self._travel()
        if stopped is not None:
            return await self._stop_return(stopped)

        self._set_stage(Stage.RECEPTION)
        await self._task(TaskKind.RECEPTION_HANDOFF)
        await self._after_handoff()

    async def _travel_documents(self) -> bool:
        """Request → issued, or refused → a new request; after N refusals the coordinator
        decides. Issued documents are kept for every later rebooking."""
        while True:
            await self._apply([c.RequestDocuments(workflow.uuid4())])
            await self._task(TaskKind.TRAVEL_DOCUMENTS)
            if self._state.documents_issued:
                return True
            if self._state.document_refusals >= self._input.config.max_document_refusals:
                if not await self._escalate(EscalationReason.DOCUMENT_REFUSALS_LIMIT_REACHED):
                    return False

    async def _clearances(self) -> None:
        """Medical, legal (witnesses only) and security, in parallel: one append opens them."""
        kinds = [TaskKind.MEDICAL_CLEARANCE, TaskKind.SECURITY_ASSESSMENT]
        if self._state.witness:
            kinds.insert(1, TaskKind.PROSECUTOR_NOTICE)
        task_ids = await self._open_tasks(kinds)
        for kind, task_id in zip(kinds, task_ids, strict=True):
            if task_id not in self._results:
                self._set_blocked(f"task:{kind.value}")
            await self._await_task(task_id)
        while not self._state.medically_fit:
            self._set_blocked("medical_reassessment")
            await workflow.sleep(self._input.config.medical_reassessment_after)
            await self._task(TaskKind.MEDICAL_CLEARANCE)
        self._set_blocked(None)

    async def _travel(self) -> EscalationReason | None:
        """Book, depart, cross the border; failures re-plan. Returns a reason if stopped."""
        config = self._input.config
        while True:
            self._set_stage(Stage.BOOKING)
            booking = await self._book()
            if booking is None:
                if await self._escalate(EscalationReason.REBOOKING_LIMIT_REACHED):
                    continue
                return EscalationReason.REBOOKING_LIMIT_REACHED
            if not self._state.escorts:
                await self._assign_escorts()
            if self._state.handoff_code_hash is None:
                code = handoff_code_from([workflow.random().randrange(32) for _ in range(8)])
                self._handoff_code = code
                await self._apply([c.IssueHandoffCode(handoff_code_hash(self._input.case_id,
                                                                        code))])

            self._set_stage(Stage.AWAITING_DEPARTURE)
            wait = booking.departure_at - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)
            if booking.disruption is not None:  # the simulated provider's own feed
                fact = msg.JourneyFact(organisation_id=self._input.sending_mission,
                                       actor_id=WORKFLOW_ACTOR, fact="leg_failed",
                                       failure=booking.disruption)
                source = FactSource.PROVIDER_FEED
            else:
                fact = await self._next_fact({"departed", "leg_failed"})
                source = FactSource.FIELD_REPORT
            if fact.fact == "leg_failed":
                if not await self._leg_failed(fact, source):
                    return EscalationReason.REBOOKING_LIMIT_REACHED
                continue
            await self._apply([c.RecordDeparture(workflow.now())], fact=fact)

            self._set_stage(Stage.IN_TRANSIT)
            fact = await self._next_fact({"arrived_at_border", "leg_failed"})
            if fact.fact == "leg_failed":
                if not await self._leg_failed(fact, FactSource.FIELD_REPORT):
                    return EscalationReason.REBOOKING_LIMIT_REACHED
                continue
            await self._apply([c.ArriveAtBorder()], fact=fact)

            self._set_stage(Stage.BORDER)
            if await self._border(config):
                return None
            # Entry refused: back to planning; the provider avoids the refused entry point.

    async def _book(self) -> msg.Booking | None:
        """The next booking, or None when the attempts are exhausted."""
        if self._state.failed_attempts >= self._input.config.max_rebook_attempts:
            return None
        if self._input.travel_adapter is TravelAdapter.MANUAL:
            await self._task(TaskKind.ENTER_BOOKING)
            b = self._state.booking
            assert b is not None
            return msg.Booking(booking_ref=b.booking_ref, provider=b.provider,
                               route=RouteKind.DIRECT, entry_point=b.entry_point,
                               departure_at=b.departure_at)
        attempt = self._state.booking_attempts + 1
        disruptions = self._input.simulated_disruptions
        not_before = workflow.now() + self._input.config.departure_lead
        if self._state.witness and self._state.earliest_departure is not None:
            not_before = max(not_before, self._state.earliest_departure)
        request = msg.BookingRequest(
            case_id=self._input.case_id,
            request_id=workflow.uuid4(),
            attempt=attempt,
            host_country=self._input.host_country,
            destination_country=self._input.destination_country,
            avoid_entry_points=self._state.refused_entry_points,
            not_before=not_before,
            simulated_disruption=disruptions[attempt - 1] if attempt <= len(disruptions) else None,
        )

        async def book_and_record() -> msg.Booking | None:
            # One unit: a booking made is recorded even if consent is withdrawn meanwhile,
            # so that the unwinding sees it and cancels it.
            try:
                booking = await workflow.execute_activity(
                    BOOK_JOURNEY, request, result_type=msg.Booking,
                    start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY,
                )
            except ActivityError as error:
                cause = error.cause
                if isinstance(cause, ApplicationError) and cause.type == NO_ROUTE:
                    return None  # every entry point refused: the coordinator decides
                raise
            await self._apply_now([c.RecordBooking(booking)])
            return booking

        return await self._op(book_and_record)

    async def _assign_escorts(self) -> None:
        commands = [
            c.AssignEscort(workflow.uuid4(), kind, scope)
            for kind, scope in required_escorts(self._state.minor, self._state.risk_level
                                                or self._input.risk_level)
        ]
        await self._apply(commands)

    async def _leg_failed(self, fact: msg.JourneyFact, source: FactSource) -> bool:
        """Record the failure, then rebook after a backoff; False once the coordinator
        stops the return after the attempts are exhausted."""
        assert fact.failure is not None
        await self._apply([c.RecordLegFailure(LegFailure(fact.failure), source)], fact=fact)
        failed = self._state.failed_attempts
        if failed >= self._input.config.max_rebook_attempts:
            if not await self._escalate(EscalationReason.REBOOKING_LIMIT_REACHED):
                return False
            return True
        delay = self._input.config.rebook_delay(failed)
        await self._apply([c.ScheduleRebooking(workflow.now() + delay)])
        self._set_blocked("rebooking")
        await workflow.sleep(delay)
        self._set_blocked(None)
        return True

    async def _border(self, config: JourneyConfig) -> bool:
        """True when she is through the border, False when entry was refused."""
        while True:
            fact = await self._next_fact({"border_cleared", "border_hold_started",
                                          "entry_refused"})
            if fact.fact == "border_cleared":
                await self._apply([c.ClearBorder()], fact=fact)
                return True
            if fact.fact == "entry_refused":
                await self._apply([c.RefuseEntry()], fact=fact)
                return False
            held_from = workflow.now()  # the hold_started event's occurred_at
            await self._apply([c.StartBorderHold()], fact=fact)
            return await self._border_hold(config, held_from)

    async def _border_hold(self, config: JourneyConfig, held_from: datetime) -> bool:
        self._set_blocked("border_hold")
        steps = [(held_from + after, step) for after, step in border_hold_steps(config)]
        companion_task: UUID | None = None
        while True:
            timeout = (steps[0][0] - workflow.now()) if steps else None
            fact = await self._next_fact({"border_hold_lifted", "entry_refused"},
                                         timeout=timeout)
            if fact is None:  # the next step of a long hold is due
                _, step = steps.pop(0)
                if step == "companion":
                    [companion_task] = await self._open_tasks([TaskKind.BORDER_COMPANION])
                else:
                    await self._apply([c.Escalate(EscalationReason.BORDER_HOLD_EXCEEDED,
                                                  held_from)])
                    self._set_blocked(f"escalation:{EscalationReason.BORDER_HOLD_EXCEEDED.value}")
                continue
            if fact.fact == "border_hold_lifted":
                held = int((workflow.now() - held_from).total_seconds())
                await self._apply([c.LiftBorderHold(held)], fact=fact)
                through = True
            else:
                await self._apply([c.RefuseEntry()], fact=fact)
                through = False
            if companion_task is not None and companion_task in self._state.open_tasks:
                await self._apply([c.CancelTask(companion_task, TaskCancelReason.HOLD_ENDED)])
            self._set_blocked(None)
            return through

    async def _after_handoff(self) -> None:
        await self._release_escorts(EscortReleaseReason.HANDOFF_COMPLETE,
                                    only=EscortScope.TO_HANDOFF)
        if self._state.minor:
            self._set_stage(Stage.GUARDIAN_HANDOVER)
            await self._task(TaskKind.GUARDIAN_HANDOVER)
            await self._release_escorts(EscortReleaseReason.GUARDIAN_HANDOVER_COMPLETE)
        await self._close(Outcome.RETURNED)
        # Reintegration: the receiving mission's follow-up, a child workflow that outlives
        # the journey (ABANDON). Histories recorded before it existed replay without it.
        if self._input.reintegration is not None and workflow.patched("start-reintegration"):
            await workflow.start_child_workflow(
                "ReintegrationWorkflow",
                ReintegrationInput(
                    case_id=self._input.case_id,
                    receiving_mission=self._input.receiving_mission,
                    destination_country=self._input.destination_country,
                    minor=self._state.minor, arrived_at=workflow.now(),
                    config=self._input.reintegration),
                id=f"reintegration-{self._input.case_id}",
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )

    # --- escalation, stopping, unwinding ------------------------------------------------

    async def _escalate(self, reason: EscalationReason) -> bool:
        """Escalate to the coordinator; True to try again, False to stop the return."""
        await self._apply([c.Escalate(reason, workflow.now())])
        review = await self._task(TaskKind.ESCALATION_REVIEW,
                                  blocked_on=f"escalation:{reason.value}")
        assert isinstance(review, msg.EscalationReviewResult)
        self._set_blocked(None)
        return review.resolution is EscalationResolution.RETRY

    async def _stop_return(self, reason: EscalationReason) -> None:
        self._closing = True
        await self._undo_everything(EscortReleaseReason.RETURN_STOPPED,
                                    TaskCancelReason.RETURN_STOPPED)
        await self._close(Outcome.RETURN_STOPPED, reason=reason)

    async def _unwind_after_withdrawal(self) -> None:
        assert self._withdrawal is not None
        self._set_stage(Stage.COMPENSATING)
        # Steps already under way (an Update, a booking) finish first, so nothing booked
        # escapes the unwinding.
        await workflow.wait_condition(lambda: not self._inflight)
        w = self._withdrawal
        decision = c.decide(self._state, c.WithdrawConsent(w.change, w.form_record_id))
        if isinstance(decision, Refusal):
            # The handoff completed while the withdrawal was arriving: she is home.
            self._ignore(decision.reason)
            self._withdrawal = None
            await self._after_handoff()
            return
        await self._apply_now([c.WithdrawConsent(w.change, w.form_record_id)],
                              author_org=w.organisation_id, actor=w.actor_id)
        await self._undo_everything(EscortReleaseReason.CONSENT_WITHDRAWN,
                                    TaskCancelReason.CONSENT_WITHDRAWN)
        await self._apply_now([c.CloseCase(Outcome.ALTERNATIVE_PATHWAY)])
        self._set_stage(Stage.CLOSED)
        self._set_blocked(None)

    async def _undo_everything(self, escort_reason: EscortReleaseReason,
                               task_reason: TaskCancelReason) -> None:
        """Compensation: each step an activity and an event; nothing is left booked."""
        booking = self._state.booking
        if booking is not None:
            await workflow.execute_activity(
                CANCEL_BOOKING,
                msg.CancelBookingRequest(case_id=self._input.case_id,
                                         booking_ref=booking.booking_ref,
                                         provider=booking.provider),
                result_type=msg.CancelBookingResult,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY,
            )
            await self._apply_now([c.CancelBooking()])
        await self._release_escorts(escort_reason, now=True)
        if self._state.documents_request is not None:
            await self._apply_now([c.WithdrawDocumentRequest()])
        for task_id in list(self._state.open_tasks):
            await self._apply_now([c.CancelTask(task_id, task_reason)])

    async def _release_escorts(self, reason: EscortReleaseReason,
                               only: EscortScope | None = None, now: bool = False) -> None:
        for escort_id, (_, scope) in list(self._state.escorts.items()):
            if only is None or scope is only:
                command = [c.ReleaseEscort(escort_id, reason)]
                await (self._apply_now(command) if now else self._apply(command))

    async def _close(self, outcome: Outcome, reason: EscalationReason | None = None) -> None:
        self._closing = True
        await self._op(lambda: self._apply_now([c.CloseCase(outcome, reason)]))
        self._set_stage(Stage.CLOSED)
        self._set_blocked(None)

    # --- human tasks --------------------------------------------------------------------

    async def _task(self, kind: TaskKind, blocked_on: str | None = None) -> msg.TaskResult:
        [task_id] = await self._open_tasks([kind])
        self._set_blocked(blocked_on or f"task:{kind.value}")
        result = await self._await_task(task_id)
        self._set_blocked(None)
        return result

    async def _open_tasks(self, kinds: Sequence[TaskKind]) -> list[UUID]:
        now = workflow.now()
        commands = [
            c.OpenTaskCommand(workflow.uuid4(), kind, now + self._input.config.due(kind))
            for kind in kinds
        ]
        await self._apply(commands)
        for command in commands:
            self._watch(command.task_id, command.due_at)
        return [command.task_id for command in commands]

    def _watch(self, task_id: UUID, due_at: datetime) -> None:
        watcher = asyncio.create_task(self._escalate_when_overdue(task_id, due_at))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _await_task(self, task_id: UUID) -> msg.TaskResult:
        await workflow.wait_condition(
            lambda: task_id in self._results or task_id in self._state.cancelled_tasks
        )
        if task_id not in self._results:
            raise _Stopped()
        return self._results[task_id]

    async def _escalate_when_overdue(self, task_id: UUID, due_at: datetime) -> None:
        """A durable timer per task: overdue once → one escalation event."""
        try:
            await workflow.wait_condition(
                lambda: task_id not in self._state.open_tasks,
                timeout=max(due_at - workflow.now(), timedelta(0)),
            )
        except TimeoutError:
            try:
                await self._apply([c.EscalateOverdueTask(task_id)], if_allowed=True)
            except _Stopped:
                pass

    # --- facts --------------------------------------------------------------------------

    async def _next_fact(self, kinds: set[str],
                         timeout: timedelta | None = None) -> msg.JourneyFact | None:
        """The next fact of one of ``kinds``; facts of other kinds that arrive first are
        out of order for this step and ignored (counted in ``status``)."""

        def ready() -> bool:
            while self._facts and self._facts[0].fact not in kinds:
                self._ignore(f"journey fact {self._facts.pop(0).fact} out of order at "
                             f"stage {self._stage.value}")
            return bool(self._facts)

        if timeout is not None and timeout <= timedelta(0):
            return self._facts.pop(0) if ready() else None
        try:
            await workflow.wait_condition(ready, timeout=timeout)
        except TimeoutError:
            return None
        return self._facts.pop(0)

    # --- deciding and recording ---------------------------------------------------------

    async def _apply(self, commands: Sequence[c.Command], *, fact: msg.JourneyFact | None = None,
                     if_allowed: bool = False) -> list[ev._Event]:
        author = (fact.organisation_id, fact.actor_id) if fact else (None, WORKFLOW_ACTOR)
        return await self._op(lambda: self._apply_now(
            commands, author_org=author[0], actor=author[1], if_allowed=if_allowed))

    async def _op(self, step: Callable[[], Awaitable[T]]) -> T:
        """Run a step as a unit that a consent withdrawal cannot cut in half.

        A step starts only while consent stands; once started it runs to the end in its
        own asyncio task (shielded from the cancelled journey), and the unwinding waits
        for it, so whatever it booked is seen and undone."""
        if self._withdrawal is not None:
            raise _Stopped()
        task = asyncio.create_task(step())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The caller was cancelled (consent withdrawn); the step goes on. Nobody awaits
            # it any more, so keep its failure, if any, for the end of the run.
            def keep_failure(t: asyncio.Task[Any]) -> None:
                if not t.cancelled() and t.exception() is not None:
                    self._op_errors.append(t.exception())  # type: ignore[arg-type]

            task.add_done_callback(keep_failure)
            raise

    async def _apply_now(self, commands: Sequence[c.Command], *, author_org: str | None = None,
                         actor: str = WORKFLOW_ACTOR, refusal_raises: bool = False,
                         if_allowed: bool = False) -> list[ev._Event]:
        """decide → append (one activity, idempotent by event id) → evolve."""
        async with self._lock:
            state = self._state
            decided: list[ev._Event] = []
            for command in commands:
                decision = c.decide(state, command)
                if isinstance(decision, Refusal):
                    if if_allowed:
                        return []
                    if refusal_raises:
                        raise Refused(decision)
                    raise ApplicationError(f"workflow step refused: {decision.reason}",
                                           type="StepRefused", non_retryable=True)
                for event in decision:
                    state = c.evolve(state, event)
                    decided.append(event)
            if not decided:
                return []
            now = workflow.now()
            envelopes = tuple(
                msg.EventEnvelope(
                    event_id=workflow.uuid4(),
                    occurred_at=now,
                    # System-owned events (tasks, outcomes) are always the system's, even
                    # when a person's Update caused them.
                    author_org=(author_org if author_org and event.owner is not Role.SYSTEM
                                else self._author_for(event)),
                    actor=actor,
                    event=event,
                )
                for event in decided
            )
            # The workflow is the only writer of the journey, but the API and the vault
            # append other events to the same case: append at the end (expected_version
            # None) and rely on event-id idempotency for retries.
            try:
                await workflow.execute_activity(
                    APPEND_EVENTS,
                    msg.AppendEventsRequest(case_id=self._input.case_id, events=envelopes),
                    result_type=msg.AppendEventsResult,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                )
            except ActivityError as error:
                if refusal_raises:  # tell the Update caller why; nothing was written
                    raise Refused(Refusal(str(error.cause or error))) from error
                raise
            self._state = state
            self._events_appended += len(envelopes)
            return decided

    def _author_for(self, event: ev._Event) -> str:
        role = event.owner
        if role is Role.SYSTEM:
            return SYSTEM_ORGANISATION
        return self._state.organisation_for(role) if self._state.referral else (
            self._input.sending_mission
        )

    # --- search attributes --------------------------------------------------------------

    def _set_stage(self, stage: Stage) -> None:
        if stage is not self._stage:
            self._stage = stage
            workflow.upsert_search_attributes([sa.STAGE.value_set(stage.value)])

    def _set_blocked(self, blocked_on: str | None) -> None:
        if blocked_on == self._blocked_on:
            return
        self._blocked_on = blocked_on
        updates: list[SearchAttributeUpdate[Any]]
        if blocked_on is None:
            updates = [sa.BLOCKED_ON.value_unset(), sa.BLOCKED_SINCE.value_unset()]
        else:
            updates = [sa.BLOCKED_ON.value_set(blocked_on),
                       sa.BLOCKED_SINCE.value_set(workflow.now())]
        workflow.upsert_search_attributes(updates)

    def _ignore(self, why: str) -> None:
        self._ignored_signals += 1
        workflow.logger.warning("ignored: %s", why)

