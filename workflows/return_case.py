"""``ReturnCaseWorkflow``: one assisted return, referral to safe reception, as a durable
workflow.

The workflow decides with ``domain.journey.decider.decide`` and records every step as events through
the ``append_events`` activity; it never holds identity data. Human steps are tasks opened
as events and completed through the ``complete_task`` Update. Facts from outside arrive as
validated Updates and are recorded at once or refused with a reason: ``report_fact`` (the
road, ``domain.journey.road``), ``record_withdrawal`` (before departure: unwind what was booked;
after: bring her to a safe place first) and ``record_age_assessment``.

Imports: the standard library, temporalio and domain/ only (the sandbox rejects the rest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.boundary import (
        REINTEGRATION_WORKFLOW_TYPE,
        reintegration_workflow_id_for,
    )
    from domain.journey import decider as c
    from domain.journey import events as ev
    from domain.journey import messages as msg
    from domain.journey import transfers
    from domain.journey.policies import (
        border_hold_steps,
        handoff_code_from,
        handoff_code_hash,
        required_escorts,
    )
    from domain.journey.road import expected_facts, road_stage
    from domain.journey.vocabulary import (
        DID_NOT_ARRIVE,
        Determination,
        EscalationReason,
        EscalationResolution,
        EscortKind,
        EscortReleaseReason,
        EscortScope,
        FactSource,
        LegFailure,
        Outcome,
        ReturnOption,
        RoadFact,
        RouteKind,
        Stage,
        TaskCancelReason,
        TaskKind,
        TracingFinding,
        TracingNext,
        TraffickingStatus,
        TravelAdapter,
    )
    from domain.kernel import WORKFLOW_ACTOR, Refusal, Role, treated_as_minor
    from domain.reintegration.messages import ReintegrationInput
    from workflows import search_attributes as sa
    from workflows.legacy_road import SignalledRoad
    from workflows.recording import (
        ACTIVITY_RETRY,
        ACTIVITY_TIMEOUT,
        Recorder,
        Refused,
        refuse_if,
    )

T = TypeVar("T")

# Runs started before this patch take facts as queued signals (workflows/legacy_road.py).
ROAD_PATCH = "road-facts-as-updates"
# Runs started before this patch appoint a child's guardian after her consent.
GUARDIAN_PATCH = "guardian-before-decisions"

# Activity names (the workflow refers to them by name: activities import the database);
# events are appended through workflows.recording.
BOOK_JOURNEY = "book_journey"
CANCEL_BOOKING = "cancel_booking"
NO_ROUTE = "NoRouteAvailable"  # business error of book_journey


class _Stopped(ApplicationError):
    """Forward progress stopped: consent was withdrawn, or she was concluded missing."""

    def __init__(self) -> None:
        super().__init__("consent was withdrawn: the return is being unwound",
                         type="ConsentWithdrawn", non_retryable=True)


@workflow.defn
class ReturnCaseWorkflow(SignalledRoad):
    @workflow.init
    def __init__(self, input: msg.ReturnCaseInput) -> None:
        self._input = input
        self._state = c.JourneyState(case_id=input.case_id, config=input.config)
        self._recorder = Recorder(input.case_id, self._organisation_for)
        self._stage = Stage.REFERRAL
        self._blocked_on: str | None = None
        self._events_appended = 0
        self._ignored_signals = 0
        self._facts: list[msg.JourneyFact] = []  # pre-patch runs only
        self._facts_as_updates = True  # decided in run(): False for pre-patch runs
        self._guardian_first = True  # decided in run(): False for pre-patch runs
        self._results: dict[UUID, msg.TaskResult] = {}
        self._withdrawal: msg.ConsentWithdrawal | None = None
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._watchers: dict[UUID, asyncio.Task[None]] = {}  # overdue timers by task
        self._journey: asyncio.Task[None] | None = None
        self._safeguards: asyncio.Task[None] | None = None
        self._safeguards_inline = False
        self._hold_watch: asyncio.Task[None] | None = None
        self._companion_task: UUID | None = None
        self._hold_escalated = False
        self._road_changes = 0  # bumped by every recorded fact: the road loop wakes on it
        self._back_off_pending = False  # a leg failed: wait before the next booking
        self._replan = False  # tracing found her safe and asked for a new booking
        self._to_safety = False
        self._disruption: LegFailure | None = None  # the simulated provider's, this booking
        self._handoff_code: str | None = None
        self._op_errors: list[BaseException] = []
        self._closing = False  # the case is ending on its own: a withdrawal is moot

    # --- entry point ------------------------------------------------------------------

    @workflow.run
    async def run(self, input: msg.ReturnCaseInput) -> msg.ReturnCaseResult:
        self._facts_as_updates = workflow.patched(ROAD_PATCH)
        self._guardian_first = workflow.patched(GUARDIAN_PATCH)
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
            if self._withdrawal is None and not self._state.concluded_missing:
                raise  # the workflow itself was cancelled
        if self._withdrawal is not None and not self._state.closed:
            await self._unwind_after_withdrawal()
        elif self._state.concluded_missing and not self._state.closed:
            await self._close_missing()
        for watcher in (*self._watchers.values(), self._hold_watch):
            if watcher is not None:
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
                [c.CompleteTask(completion)],
                author_org=completion.organisation_id,
                actor=completion.actor_id,
                refusal_raises=True,
            ),
            even_after_withdrawal=self._protects_her(completion.task_id),
        )
        self._results[completion.task_id] = completion.result
        for event in appended:
            if isinstance(event, ev.TransferAccepted) and event.role.role is Role.RECEIVING_MISSION:
                workflow.upsert_search_attributes([sa.RECEIVING_MISSION.value_set(event.to_org)])
        if isinstance(completion.result, msg.TracingResult):
            self._after_tracing(completion.result)
        return msg.TaskCompleted(
            task_id=completion.task_id, event_types=tuple(e.type for e in appended)
        )

    @complete_task.validator
    def _validate_completion(self, completion: msg.TaskCompletion) -> None:
        # Runs before anything is written: a rejected Update leaves no trace in the history.
        if self._withdrawal is not None and not self._protects_her(completion.task_id):
            raise ValueError(
                f"consent was {self._withdrawal.change.value}: the return is being unwound"
            )
        s = self._state
        if self._lock.locked() and completion.task_id not in (
                *s.open_tasks, *s.done_tasks, *s.cancelled_tasks):
            # An append is in flight and may be opening this very task (already in an
            # inbox): the handler decides after it, under the lock, and refuses there.
            return
        decision = c.decide(self._state, c.CompleteTask(completion), self._context())
        if isinstance(decision, Refusal):
            raise ValueError(decision.reason)

    def _protects_her(self, task_id: UUID) -> bool:
        """Tasks that keep her safe on the road go on after a withdrawal."""
        task = self._state.open_tasks.get(task_id)
        return task is not None and task.kind in c.SAFETY_TASKS and (
            self._state.on_road or task.kind is TaskKind.TRACING)

    # --- Update: hand a role to another organisation (decision 0068) ---------------------

    @workflow.update
    async def request_transfer(self, request: msg.TransferRequest) -> msg.TransferRequested:
        """Offer a role to another organisation: a transfer decision task opens for it. The
        same transfer requested again while it is pending writes nothing."""
        kind = TaskKind.TRANSFER_DECISION
        command = c.RequestTransfer(workflow.uuid4(), request.role, request.to_org,
                                    request.reason,
                                    workflow.now() + self._input.config.due(kind),
                                    request.details_record_id)
        recorded = await self._op(lambda: self._apply_now(
            [command], author_org=request.organisation_id, actor=request.actor_id,
            refusal_raises=True))
        if recorded:
            self._watch(command.task_id, command.due_at)
        offer = transfers.pending_for(self._state, request.role)
        assert offer is not None
        return msg.TransferRequested(transfer_id=offer.transfer_id, role=offer.role,
                                     from_org=offer.from_org, to_org=offer.to_org,
                                     duplicate=not recorded)

    @request_transfer.validator
    def _validate_transfer(self, request: msg.TransferRequest) -> None:
        if request.organisation_id != self._input.sending_mission:
            raise Refused(Refusal("only the sending mission hands a role to another "
                                  "organisation", code="not_sending_mission"), self._stage)
        if self._withdrawal is not None or self._closing:
            raise Refused(Refusal("the return is being unwound or closed",
                                  code="case_closing"), self._stage)
        refuse_if(c.decide(self._state, c.RequestTransfer(
            UUID(int=0), request.role, request.to_org, request.reason, workflow.now()),
            self._context()), self._stage)

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
            UUID(int=0), workflow.now(), request.reason), self._context())
        if isinstance(decision, Refusal):
            raise ValueError(decision.reason)

    # --- Update: a fact from the road, recorded at once or refused ----------------------

    @workflow.update
    async def report_fact(self, fact: msg.JourneyFact) -> msg.FactRecorded:
        if not self._facts_as_updates:  # a pre-patch run: its road takes facts queued
            self._facts.append(fact)
            return msg.FactRecorded(fact=fact.fact, event_types=(), duplicate=False,
                                    stage=self._stage)
        command = self._fact_command(fact)
        recorded = await self._op(
            lambda: self._apply_now([command], author_org=fact.organisation_id,
                                    actor=fact.actor_id, refusal_raises=True),
            even_after_withdrawal=True)  # a fact that happened is recorded
        follow_up = await self._after_fact(command.fact) if recorded else []
        return msg.FactRecorded(fact=fact.fact,
                                event_types=(*(e.type for e in recorded), *follow_up),
                                duplicate=not recorded, stage=self._stage)

    @report_fact.validator
    def _validate_fact(self, fact: msg.JourneyFact) -> None:
        if not self._facts_as_updates:
            if fact.organisation_id != self._input.sending_mission:
                raise ValueError("only the sending mission reports facts of this case")
            return
        refuse_if(c.decide(self._state, self._fact_command(fact), self._context()), self._stage)

    def _role_of(self, organisation_id: str) -> Role:
        """The role an organisation plays in this case; an outsider is refused as a partner
        would be (neither reports facts nor relays a withdrawal)."""
        return c.role_of(self._state, organisation_id) or Role.PARTNER

    def _fact_command(self, fact: msg.JourneyFact) -> c.RecordFact:
        reporter = self._role_of(fact.organisation_id)
        return c.RecordFact(fact.fact, reporter, fact.failure)

    # --- Update: she withdraws or defers her consent ------------------------------------

    @workflow.update
    async def record_withdrawal(self, withdrawal: msg.ConsentWithdrawal
                                ) -> msg.WithdrawalRecorded:
        duplicate = self._withdrawal is not None
        if not duplicate:
            self._stop_for_withdrawal(withdrawal)
        # Answer once what follows is recorded too: the case closed (unwound), or the safe
        # place task open for the mission that will bring her to safety.
        await workflow.wait_condition(lambda: self._state.closed or (
            self._state.consent_withdrawn is not None and self._state.on_road and (
                self._state.safe_place or any(t.kind is TaskKind.SAFE_PLACE
                                              for t in self._state.open_tasks.values()))))
        path = "to_safety" if self._state.on_road else "unwind"
        return msg.WithdrawalRecorded(change=self._withdrawal.change if self._withdrawal
                                      else withdrawal.change, path=path, duplicate=duplicate)

    @record_withdrawal.validator
    def _validate_withdrawal(self, withdrawal: msg.ConsentWithdrawal) -> None:
        if self._withdrawal is not None:
            return  # recorded once
        if self._closing or self._state.closed:
            raise Refused(Refusal("the case is closing with its own outcome",
                                  code="case_closing"), self._stage)
        refuse_if(c.decide(self._state, self._withdrawal_command(withdrawal), self._context()),
                  self._stage)

    def _withdrawal_command(self, w: msg.ConsentWithdrawal) -> c.WithdrawConsent:
        relayed_by = self._role_of(w.organisation_id)
        return c.WithdrawConsent(w.change, w.form_record_id, relayed_by)

    def _stop_for_withdrawal(self, withdrawal: msg.ConsentWithdrawal) -> None:
        # Stop forward progress now, in this workflow task: the journey coroutine is cancelled
        # at its next await; steps already under way finish and are then unwound.
        self._withdrawal = withdrawal
        if self._journey is not None:
            self._journey.cancel()
        for task_id, watcher in self._watchers.items():
            if not self._protects_her(task_id):
                watcher.cancel()

    # --- Update: an age assessment ------------------------------------------------------

    @workflow.update
    async def record_age_assessment(self, assessment: msg.AgeAssessment) -> msg.AgeAssessed:
        was_minor = self._state.minor
        recorded = await self._op(lambda: self._apply_now(
            [c.AssessAge(assessment.assessed_by, assessment.result,
                                   assessment.evidence_record_id)],
            author_org=assessment.organisation_id, actor=assessment.actor_id,
            refusal_raises=True), even_after_withdrawal=True)
        follow_up: list[ev.JourneyEvent] = []
        if self._state.minor != was_minor:
            workflow.upsert_search_attributes([sa.MINOR.value_set(self._state.minor)])
            follow_up = await self._after_age_change()
        return msg.AgeAssessed(minor=self._state.minor,
                               event_types=tuple(e.type for e in (*recorded, *follow_up)))

    @record_age_assessment.validator
    def _validate_age_assessment(self, assessment: msg.AgeAssessment) -> None:
        if assessment.organisation_id != self._input.sending_mission:
            raise Refused(Refusal("the sending mission records an age assessment before the "
                                  "handoff", code="not_your_fact"))
        command = c.AssessAge(assessment.assessed_by, assessment.result,
                              assessment.evidence_record_id)
        refuse_if(c.decide(self._state, command, self._context()), self._stage)

    # --- signals of pre-patch runs ------------------------------------------------------

    @workflow.signal
    def journey_fact(self, fact: msg.JourneyFact) -> None:
        if self._facts_as_updates:
            self._ignore("journey_fact signal: this case takes facts as report_fact Updates")
            return
        if fact.organisation_id != self._input.sending_mission:
            self._ignore("journey fact from an organisation that is not the sending mission")
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
        self._stop_for_withdrawal(withdrawal)

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
            expected_facts=tuple(sorted(expected_facts(self._state))),
            minor=self._state.minor,
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
        await self._apply([c.RegisterReferral(i, guardian_takes_part=self._guardian_first)])

        self._set_stage(Stage.SCREENING)
        screening = await self._screening()
        if screening.trafficking_status is TraffickingStatus.NOT_A_VICTIM:
            await self._cancel_open_tasks(TaskCancelReason.CASE_CLOSED)  # a child's guardian's
            return await self._close(Outcome.NOT_IDENTIFIED_AS_VICTIM)

        await self._guardian_takes_part()
        self._set_stage(Stage.OPTIONS)
        decision = await self._task(TaskKind.OPTIONS_DECISION)
        assert isinstance(decision, msg.OptionsDecisionResult)
        if decision.choice is not ReturnOption.RETURN:
            # Every other choice is an outcome of its own: the case exists and counts.
            await self._cancel_open_tasks(TaskCancelReason.CASE_CLOSED)
            return await self._close(c.OUTCOME_OF_OPTION[decision.choice])

        await self._guardian_takes_part()  # an assessment may have found her a child since
        self._set_stage(Stage.CONSENT)
        await self._task(TaskKind.INFORMED_CONSENT)

        if not await self._child_may_travel():
            return

        self._set_stage(Stage.DOCUMENTS)
        if not await self._travel_documents():
            return await self._stop_return(EscalationReason.DOCUMENT_REFUSALS_LIMIT_REACHED)

        self._set_stage(Stage.CLEARANCES)
        await self._clearances()

        if self._facts_as_updates:
            stopped = await self._road()
        else:
            stopped = await self._travel_by_signals()
        if stopped is not None:
            return await self._stop_return(stopped)
        if self._state.closed:
            return

        self._set_stage(Stage.RECEPTION)
        await self._task(TaskKind.RECEPTION_HANDOFF)
        await self._after_handoff()

    async def _screening(self) -> msg.ScreeningResult:
        """The one screening interview. A child's guardian appointment opens with it: her
        interview may come first only with a child protection officer present (the
        interview records who sat with her)."""
        kind = TaskKind.SCREENING_INTERVIEW
        if self._state.guardian_takes_part and self._state.minor:
            _, task_id = await self._open_tasks([TaskKind.GUARDIAN_APPOINTMENT, kind])
            self._set_blocked(f"task:{kind.value}")
            result = await self._await_task(task_id)
            self._set_blocked(None)
        else:
            result = await self._task(kind)
        assert isinstance(result, msg.ScreeningResult)
        return result

    async def _guardian_takes_part(self) -> None:
        """A child decides her options and consents with her guardian: both wait for the
        appointment, whenever she is found to be a child before consent."""
        s = self._state
        if not (s.guardian_takes_part and s.minor) or s.guardian_appointed:
            return
        self._set_stage(Stage.MINOR_SAFEGUARDS)
        await self._open_guardian_task()
        self._set_blocked(f"task:{TaskKind.GUARDIAN_APPOINTMENT.value}")
        await workflow.wait_condition(lambda: self._state.guardian_appointed
                                      or not self._state.minor)
        self._set_blocked(None)

    async def _open_guardian_task(self) -> list[ev.JourneyEvent]:
        """The guardian appointment task, unless one is open (checked under the append lock:
        the journey and an age assessment may both ask at once)."""
        kind = TaskKind.GUARDIAN_APPOINTMENT
        command = c.OpenTask(workflow.uuid4(), kind,
                                    workflow.now() + self._input.config.due(kind))
        opened = await self._apply([command], only_if=lambda: not any(
            t.kind is kind for t in self._state.open_tasks.values()))
        if opened:
            self._watch(command.task_id, command.due_at)
        return opened

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

    # --- a child's safeguards (also when an assessment finds her a child later) ---------

    async def _child_may_travel(self) -> bool:
        """For a minor: the guardian, then the best-interest determination; False (and the
        case closed) when return is not in the child's interest."""
        if not self._state.minor or self._state.safeguards_done:
            return True
        self._set_stage(Stage.MINOR_SAFEGUARDS)
        while self._state.minor and not self._state.safeguards_done:
            if self._safeguards is not None and not self._safeguards.done():
                await self._safeguards  # started when an assessment found her a child
                continue
            self._safeguards_inline = True
            try:
                await self._run_safeguards()
            finally:
                self._safeguards_inline = False
        if self._state.best_interest is Determination.RETURN_NOT_IN_BEST_INTEREST:
            self._closing = True
            await self._undo_everything(EscortReleaseReason.RETURN_STOPPED,
                                        TaskCancelReason.RETURN_STOPPED)
            await self._close(Outcome.RETURN_NOT_IN_BEST_INTEREST)
            return False
        return True

    def _start_safeguards(self) -> None:
        """Alongside the journey's current step (documents wait for them)."""
        if not self._safeguards_inline and (self._safeguards is None
                                            or self._safeguards.done()):
            self._safeguards = asyncio.create_task(self._run_safeguards())

    async def _run_safeguards(self) -> None:
        try:
            if self._state.minor and not self._state.guardian_appointed:
                await self._task(TaskKind.GUARDIAN_APPOINTMENT)
            if self._state.minor and self._state.best_interest is None:
                await self._task(TaskKind.BEST_INTEREST_DETERMINATION)
        except _Stopped:
            if self._withdrawal is not None or self._state.concluded_missing:
                raise
            # An assessment found her an adult: her guardian and best-interest tasks ended.

    async def _after_age_change(self) -> list[ev.JourneyEvent]:
        """An assessment changed whether she is treated as a child."""
        s = self._state
        done: list[ev.JourneyEvent] = []
        if not s.minor:  # a disputed age resolved as adult: the child's tasks end
            for task in list(s.open_tasks.values()):
                if task.kind in (TaskKind.GUARDIAN_APPOINTMENT,
                                 TaskKind.BEST_INTEREST_DETERMINATION):
                    done += await self._apply_now([c.CancelTask(
                        task.task_id, TaskCancelReason.AGE_REASSESSED)])
            return done
        if s.on_road:
            # She is travelling: her escort now stays with her to the guardian or family.
            if not any(scope is EscortScope.END_TO_END for _, scope in s.escorts.values()):
                done += await self._apply_now([c.AssignEscort(
                    workflow.uuid4(), EscortKind.STAFF, EscortScope.END_TO_END)])
            self._start_safeguards()
        elif s.consent_given:
            self._start_safeguards()  # documents and booking wait for the safeguards
        elif s.guardian_takes_part:
            done += await self._open_guardian_task()  # her decisions wait for the guardian
        self._road_changes += 1
        return done

    # --- the road: a state machine over facts -------------------------------------------

    async def _road(self) -> EscalationReason | None:
        """Book, then follow the facts until she is across the border (None) or the return
        stops (the reason). Facts are recorded by ``report_fact`` as they come; this loop
        does what follows from them: rebook, wait, escalate."""
        while True:
            s = self._state
            if s.closed or s.border_cleared:
                return None
            if s.missing is not None:
                self._set_blocked(self._road_waits_on())
                await self._road_change()
                continue
            if s.minor and not s.safeguards_done and not s.on_road:
                await self._hold_journey_for_safeguards()
                if not await self._child_may_travel():
                    return None
                continue
            if self._replan:
                self._replan = False
                await self._cancel_booking()
                continue
            if s.booking is None:
                stopped = await self._next_booking()
                if stopped is not None:
                    return stopped
                continue
            self._sync_road_stage()
            self._set_blocked(self._road_waits_on())
            booking = s.booking
            if self._disruption is not None and not s.departed and s.at_border is None:
                await self._road_change(timeout=booking.departure_at - workflow.now())
                if self._state.booking == booking and not self._state.departed:
                    # The simulated provider's own feed: this leg does not operate.
                    await self._apply([c.RecordFact(
                        RoadFact.LEG_FAILED, failure=self._disruption,
                        source=FactSource.PROVIDER_FEED)])
                    self._back_off_pending = True
                continue
            await self._road_change()

    async def _road_change(self, timeout: timedelta | None = None) -> None:
        seen = self._road_changes
        try:
            await workflow.wait_condition(lambda: self._road_changes != seen,
                                          timeout=timeout if timeout is None
                                          else max(timeout, timedelta(0)))
        except TimeoutError:
            pass

    async def _next_booking(self) -> EscalationReason | None:
        s = self._state
        if s.failed_attempts >= self._input.config.max_rebook_attempts:
            self._back_off_pending = False
            if not await self._escalate(EscalationReason.REBOOKING_LIMIT_REACHED):
                return EscalationReason.REBOOKING_LIMIT_REACHED
        elif self._back_off_pending:
            self._back_off_pending = False
            await self._back_off(s.failed_attempts)
            if self._state.booking is not None or self._state.missing is not None:
                return None
        self._set_stage(Stage.BOOKING if not self._state.on_road else Stage.IN_TRANSIT)
        booking = await self._book()
        if booking is None:
            if await self._escalate(EscalationReason.REBOOKING_LIMIT_REACHED):
                return None
            return EscalationReason.REBOOKING_LIMIT_REACHED
        self._disruption = booking.disruption
        await self._equip_journey()
        self._sync_road_stage()
        return None

    async def _equip_journey(self) -> None:
        """Escorts (once) and the handoff code (once) for a booked journey."""
        if not self._state.escorts:
            await self._assign_escorts()
        if self._state.handoff_code_hash is None:
            code = handoff_code_from([workflow.random().randrange(32) for _ in range(8)])
            self._handoff_code = code
            await self._apply([c.IssueHandoffCode(handoff_code_hash(self._input.case_id, code))])

    async def _back_off(self, failed: int) -> None:
        delay = self._input.config.rebook_delay(failed)
        await self._apply([c.ScheduleRebooking(workflow.now() + delay)])
        self._set_blocked("rebooking")
        await workflow.sleep(delay)
        self._set_blocked(self._held_at_border())

    async def _hold_journey_for_safeguards(self) -> None:
        """An assessment found her a child after booking: the journey is re-planned with an
        escort who stays to the guardian, once the safeguards are done."""
        await self._cancel_booking()
        await self._release_escorts(EscortReleaseReason.AGE_REASSESSED)

    async def _cancel_booking(self) -> None:
        """Cancel a leg not yet started, with the provider and as an event, in one step that
        no fact interleaves with (a departure reported meanwhile is decided after it) and
        that a withdrawal does not cut in half."""
        if self._state.booking is None or self._state.departed:
            return  # nothing to cancel (and no step: replayed histories see none)
        await self._op(self._cancel_booking_now, even_after_withdrawal=True)

    async def _cancel_booking_now(self) -> None:
        async with self._lock:
            booking = self._state.booking
            if booking is None or self._state.departed:
                return  # she is on it: a leg under way is never cancelled
            await workflow.execute_activity(
                CANCEL_BOOKING,
                msg.CancelBookingRequest(case_id=self._input.case_id,
                                         booking_ref=booking.booking_ref,
                                         provider=booking.provider),
                result_type=msg.CancelBookingResult,
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY,
            )
            await self._record([c.CancelBooking()])

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

    # --- what follows from a recorded fact ----------------------------------------------

    async def _after_fact(self, fact: RoadFact) -> list[str]:
        """What a recorded fact sets going; the types of the events that wrote."""
        follow_up: list[str] = []
        if fact is RoadFact.BORDER_HOLD_STARTED:
            self._set_blocked("border_hold")
            held_from = self._state.hold_since or workflow.now()
            self._hold_watch = asyncio.create_task(self._watch_hold(self._state.holds,
                                                                    held_from))
        elif fact in (RoadFact.BORDER_HOLD_LIFTED, RoadFact.ENTRY_REFUSED):
            follow_up += await self._end_hold()
        elif fact is RoadFact.LEG_FAILED:
            self._back_off_pending = True
        elif fact in DID_NOT_ARRIVE:
            await self._open_tasks([TaskKind.TRACING], safety=True)
            follow_up.append(ev.TaskOpened.model_fields["type"].default)
            workflow.upsert_search_attributes([sa.MISSING.value_set(True)])
            self._set_blocked(f"tracing:{fact.value}")
        self._road_changes += 1
        self._sync_road_stage()
        return follow_up

    async def _watch_hold(self, hold: int, held_from: datetime) -> None:
        """This hold's durable timers: a companion after 6 h, an escalation after 24 h."""
        current = lambda: self._state.hold_on and self._state.holds == hold  # noqa: E731
        for after, step in border_hold_steps(self._input.config):
            await workflow.sleep(max(held_from + after - workflow.now(), timedelta(0)))
            if not current():
                return
            if step == "companion":
                [self._companion_task] = await self._open_tasks([TaskKind.BORDER_COMPANION],
                                                                safety=True, only_if=current)
            else:
                escalate = c.EscalateCase(EscalationReason.BORDER_HOLD_EXCEEDED, held_from)
                await self._apply([escalate], safety=True, only_if=current)
                if current():
                    self._hold_escalated = True
                    self._set_blocked(self._held_at_border())

    def _road_waits_on(self) -> str | None:
        """What the case waits for on the road: the tracing, the hold, else the next fact
        where she is (``road:in_transit`` for days with no report is worth a look)."""
        if self._state.missing is not None:
            return f"tracing:{self._state.missing.value}"
        stage = road_stage(self._state)
        return self._held_at_border() or (f"road:{stage.value}" if stage else None)

    def _held_at_border(self) -> str | None:
        """What a hold blocks the case on, for as long as it lasts."""
        if not self._state.hold_on:
            return None
        escalated = EscalationReason.BORDER_HOLD_EXCEEDED
        return f"escalation:{escalated.value}" if self._hold_escalated else "border_hold"

    async def _end_hold(self) -> list[str]:
        if self._hold_watch is not None:
            self._hold_watch.cancel()
            self._hold_watch = None
        self._hold_escalated = False
        self._set_blocked(None)
        companion, self._companion_task = self._companion_task, None
        if companion is not None and companion in self._state.open_tasks:
            cancelled = await self._apply([c.CancelTask(companion, TaskCancelReason.HOLD_ENDED)],
                                          safety=True)
            return [e.type for e in cancelled]
        return []

    def _after_tracing(self, result: msg.TracingResult) -> None:
        if result.finding is TracingFinding.MISSING:
            # Everything else stops; run() closes the case as missing.
            if self._journey is not None:
                self._journey.cancel()
            return
        workflow.upsert_search_attributes([sa.MISSING.value_set(False)])
        self._set_blocked(None)
        self._replan = result.then is TracingNext.REPLAN
        self._road_changes += 1
        self._sync_road_stage()

    def _sync_road_stage(self) -> None:
        """The stage follows where the facts put her, until the return is past the road."""
        if self._to_safety or self._stage in (Stage.GUARDIAN_HANDOVER, Stage.COMPENSATING,
                                              Stage.CLOSED):
            return
        stage = road_stage(self._state)
        if stage is not None:
            self._set_stage(stage)

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
                REINTEGRATION_WORKFLOW_TYPE,
                ReintegrationInput(
                    case_id=self._input.case_id,
                    receiving_mission=self._state.organisation_for(Role.RECEIVING_MISSION),
                    destination_country=self._input.destination_country,
                    minor=self._state.minor, arrived_at=workflow.now(),
                    config=self._input.reintegration),
                id=reintegration_workflow_id_for(self._input.case_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )

    # --- escalation, stopping, unwinding, safety ----------------------------------------

    async def _escalate(self, reason: EscalationReason) -> bool:
        """Escalate to the coordinator; True to try again, False to stop the return."""
        await self._apply([c.EscalateCase(reason, workflow.now())])
        review = await self._task(TaskKind.ESCALATION_REVIEW,
                                  blocked_on=f"escalation:{reason.value}")
        assert isinstance(review, msg.EscalationReviewResult)
        self._set_blocked(None)
        return review.resolution is EscalationResolution.RETRY

    async def _stop_return(self, reason: EscalationReason) -> None:
        self._closing = True
        if self._state.on_road:
            return await self._bring_to_safety(Outcome.RETURN_STOPPED, reason,
                                               TaskCancelReason.RETURN_STOPPED)
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
        command = self._withdrawal_command(w)
        decision = c.decide(self._state, command, self._context())
        if isinstance(decision, Refusal):
            # The handoff completed while the withdrawal was arriving: she is home.
            self._ignore(decision.reason)
            self._withdrawal = None
            await self._after_handoff()
            return
        await self._apply_now([command], author_org=w.organisation_id, actor=w.actor_id)
        # She may board in the moments before her leg is cancelled: the departure is recorded
        # (a fact), and from then on she is brought to safety, never stranded by the undoing.
        if not self._state.on_road:
            await self._cancel_booking()
        if self._state.on_road:
            await self._bring_to_safety(Outcome.ALTERNATIVE_PATHWAY, None,
                                        TaskCancelReason.CONSENT_WITHDRAWN)
            return
        await self._undo_everything(EscortReleaseReason.CONSENT_WITHDRAWN,
                                    TaskCancelReason.CONSENT_WITHDRAWN)
        await self._apply_now([c.CloseCase(Outcome.ALTERNATIVE_PATHWAY)])
        self._set_stage(Stage.CLOSED)
        self._set_blocked(None)

    async def _bring_to_safety(self, outcome: Outcome, reason: EscalationReason | None,
                               task_reason: TaskCancelReason) -> None:
        """She has left and the return stops: the leg she is on goes on, her escorts stay,
        legs not yet started are cancelled, and a mission arranges a safe place. The case
        closes only once that place is confirmed (or tracing concludes she is missing)."""
        self._to_safety = True
        self._set_stage(Stage.TO_SAFETY)
        await workflow.wait_condition(lambda: not self._inflight)
        await self._cancel_booking()
        for task in list(self._state.open_tasks.values()):
            if task.kind not in c.SAFETY_TASKS:
                await self._apply_now([c.CancelTask(task.task_id, task_reason)])
        if not any(t.kind is TaskKind.SAFE_PLACE for t in self._state.open_tasks.values()):
            # Across the border, the receiving mission is the one near her.
            role = (Role.RECEIVING_MISSION if self._state.border_cleared
                    else Role.SENDING_MISSION)
            await self._open_tasks([TaskKind.SAFE_PLACE], safety=True, role=role)
        self._set_blocked(f"task:{TaskKind.SAFE_PLACE.value}")
        await workflow.wait_condition(lambda: self._state.safe_place
                                      or self._state.concluded_missing)
        if self._state.concluded_missing:
            return await self._close_missing()
        await self._release_escorts(EscortReleaseReason.SAFE_PLACE_REACHED, now=True)
        for task_id in list(self._state.open_tasks):
            await self._apply_now([c.CancelTask(task_id, TaskCancelReason.SAFE_PLACE_REACHED)])
        await self._apply_now([c.CloseCase(outcome, reason)])
        self._set_stage(Stage.CLOSED)
        self._set_blocked(None)

    async def _close_missing(self) -> None:
        """Tracing concluded she is missing: undo what is left and close, counted."""
        self._closing = True
        await workflow.wait_condition(lambda: not self._inflight)
        await self._cancel_booking()
        await self._release_escorts(EscortReleaseReason.PERSON_MISSING, now=True)
        if self._state.documents_request is not None:
            await self._apply_now([c.WithdrawDocumentRequest()])
        for task_id in list(self._state.open_tasks):
            await self._apply_now([c.CancelTask(task_id, TaskCancelReason.PERSON_MISSING)])
        await self._apply_now([c.CloseCase(Outcome.MISSING)])
        self._set_stage(Stage.CLOSED)
        self._set_blocked(f"closed:{Outcome.MISSING.value}")

    async def _undo_everything(self, escort_reason: EscortReleaseReason,
                               task_reason: TaskCancelReason) -> None:
        """Compensation before departure: each step an activity and an event; nothing is
        left booked."""
        await self._cancel_booking()
        await self._release_escorts(escort_reason, now=True)
        if self._state.documents_request is not None:
            await self._apply_now([c.WithdrawDocumentRequest()])
        for task_id in list(self._state.open_tasks):
            await self._apply_now([c.CancelTask(task_id, task_reason)])

    async def _cancel_open_tasks(self, reason: TaskCancelReason) -> None:
        for task_id in list(self._state.open_tasks):
            await self._apply([c.CancelTask(task_id, reason)])

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

    async def _open_tasks(self, kinds: Sequence[TaskKind], *, safety: bool = False,
                          role: Role | None = None,
                          only_if: Callable[[], bool] | None = None) -> list[UUID]:
        now = workflow.now()
        commands = [
            c.OpenTask(workflow.uuid4(), kind, now + self._input.config.due(kind), role)
            for kind in kinds
        ]
        await self._apply(commands, safety=safety, only_if=only_if)
        for command in commands:
            if command.task_id in self._state.open_tasks:
                self._watch(command.task_id, command.due_at)
        return [command.task_id for command in commands]

    def _watch(self, task_id: UUID, due_at: datetime) -> None:
        watcher = asyncio.create_task(self._escalate_when_overdue(task_id, due_at))
        self._watchers[task_id] = watcher
        watcher.add_done_callback(lambda _: self._watchers.pop(task_id, None))

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
                await self._apply([c.EscalateOverdueTask(task_id)], if_allowed=True,
                                  safety=self._protects_her(task_id))
            except _Stopped:
                pass

    # --- deciding and recording ---------------------------------------------------------

    @staticmethod
    def _context() -> c.Context:
        return c.Context(now=workflow.now())

    async def _apply(self, commands: Sequence[c.Command], *, fact: msg.JourneyFact | None = None,
                     if_allowed: bool = False, safety: bool = False,
                     only_if: Callable[[], bool] | None = None) -> list[ev.JourneyEvent]:
        author = (fact.organisation_id, fact.actor_id) if fact else (None, WORKFLOW_ACTOR)
        return await self._op(lambda: self._apply_now(
            commands, author_org=author[0], actor=author[1], if_allowed=if_allowed,
            only_if=only_if), even_after_withdrawal=safety)

    async def _op(self, step: Callable[[], Awaitable[T]], *,
                  even_after_withdrawal: bool = False) -> T:
        """Run a step as a unit that a consent withdrawal cannot cut in half.

        A step starts only while consent stands (steps that keep her safe on the road, and
        facts, also after); once started it runs to the end in its own asyncio task
        (shielded from the cancelled journey), and the unwinding waits for it, so whatever
        it booked is seen and undone."""
        if self._withdrawal is not None:
            if not even_after_withdrawal:
                raise _Stopped()
            return await step()  # serialised with the unwinding by the append lock
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
                         if_allowed: bool = False,
                         only_if: Callable[[], bool] | None = None) -> list[ev.JourneyEvent]:
        """decide → append (one activity, idempotent by event id) → evolve."""
        async with self._lock:
            if only_if is not None and not only_if():
                return []
            return await self._record(commands, author_org=author_org, actor=actor,
                                      refusal_raises=refusal_raises, if_allowed=if_allowed)

    async def _record(self, commands: Sequence[c.Command], *, author_org: str | None = None,
                      actor: str = WORKFLOW_ACTOR, refusal_raises: bool = False,
                      if_allowed: bool = False) -> list[ev.JourneyEvent]:
        """``_apply_now`` with the append lock already held."""
        state = self._state
        decided: list[ev.JourneyEvent] = []
        for command in commands:
            decision = c.decide(state, command, self._context())
            if isinstance(decision, Refusal):
                if if_allowed:
                    return []
                if refusal_raises:
                    raise Refused(decision, self._stage)
                raise ApplicationError(f"workflow step refused: {decision.reason}",
                                       type="StepRefused", non_retryable=True)
            for event in decision:
                state = c.evolve(state, event)
                decided.append(event)
        if not decided:
            return []
        appended = await self._recorder.append(decided, author_org=author_org, actor=actor,
                                               refuse_on_failure=refusal_raises)
        self._state = state
        self._events_appended += appended
        return decided

    def _organisation_for(self, role: Role) -> str:
        """Who writes an event of ``role`` that no person's Update names: the case's
        organisation in that role (the sending mission until the referral is recorded)."""
        if self._state.referral is None:
            return self._input.sending_mission
        return self._state.organisation_for(role)

    # --- search attributes --------------------------------------------------------------

    def _set_stage(self, stage: Stage) -> None:
        if stage is not self._stage:
            self._stage = stage
            workflow.upsert_search_attributes([sa.STAGE.value_set(stage.value)])

    def _set_blocked(self, blocked_on: str | None) -> None:
        if blocked_on == self._blocked_on:
            return
        self._blocked_on = blocked_on
        workflow.upsert_search_attributes(sa.blocked(blocked_on, workflow.now()))

    def _ignore(self, why: str) -> None:
        self._ignored_signals += 1
        workflow.logger.warning("ignored: %s", why)
