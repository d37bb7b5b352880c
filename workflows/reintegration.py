"""``ReintegrationWorkflow``: a year (or more) of follow-up after safe arrival, owned by the
receiving mission (§5.5).

A child of ``ReturnCaseWorkflow`` (id ``reintegration-<case id>``), started at reception
with non-identifying input. The workflow is a small reactor: it sleeps on a durable timer
until ``domain.reintegration.decider.next_wake`` (a check-in date, a payment retry, a task due),
runs the agenda (``next_step``) until there is nothing left to do now, and records every
decision as events through the ``append_events`` activity. People act through Updates
whose validators refuse the wrong organisation, an unknown task or a malformed payload
before anything is written.

Long life: the run continues as new when the server suggests it or when its history
reaches ``ReintegrationConfig.continue_as_new_after_events``, after every handler has
finished, carrying only ``ReintegrationState`` (decision 0032).

Imports: the standard library, temporalio and domain/ only (the sandbox rejects the rest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from domain.journey import messages as msg
    from domain.kernel import WORKFLOW_ACTOR, Refusal, Role
    from domain.reintegration import decider as r
    from domain.reintegration import messages as rmsg
    from workflows import search_attributes as sa
    from workflows.recording import Recorder, Refused, refuse_if

PAYMENT_FAILING = "grant_payment_failing"  # HomewardBlockedOn while a payment is failing
ROLLING_OVER = "the case is moving to a new run of its history; retry in a moment"
# Reopening restores what the closure cancelled and she is still owed, with the mission's
# decision recorded (decision 0041). Runs that reopened before replay without it.
REOPEN_RESTORES_OWED = "reintegration-reopen-restores-owed"
# Providers named on plan lines get delivery tasks (decision 0064); runs before replay
# without them.
DELIVERY_TASKS = "reintegration-service-delivery-tasks"


def _no_id() -> UUID:
    """Validators decide without drawing ids (they do not run on replay)."""
    return UUID(int=0)


@workflow.defn
class ReintegrationWorkflow:
    @workflow.init
    def __init__(self, input: rmsg.ReintegrationInput) -> None:
        self._input = input
        self._config = input.config
        self._state = input.carried or rmsg.ReintegrationState(
            case_id=input.case_id, receiving_mission=input.receiving_mission)
        if self._state.minor is None:
            self._state = self._state.model_copy(update={"minor": input.minor})
        self._events_recorded = input.events_recorded
        self._recorder = Recorder(input.case_id, self._organisation_for)
        self._lock = asyncio.Lock()
        self._changed = False
        self._rolling_over = False
        self._restores_owed = False  # set by a reopening (decision 0041)
        self._attributes: dict[str, Any] = {}

    # --- entry point ------------------------------------------------------------------

    @workflow.run
    async def run(self, input: rmsg.ReintegrationInput) -> rmsg.ReintegrationResult:
        workflow.upsert_search_attributes([
            sa.RECEIVING_MISSION.value_set(input.receiving_mission),
            sa.DESTINATION_COUNTRY.value_set(input.destination_country),
            sa.MINOR.value_set(input.minor),
        ])
        self._attributes[sa.MINOR.name] = input.minor
        if not self._state.started:
            await self._record_command(r.StartFollowUp(input.arrived_at,
                                               input.pre_departure_instalment_paid))
        self._publish()
        while True:
            while await self._advance():
                pass
            if self._state.closed:
                if not await self._reopened_in_time():
                    break
                if self._restores_owed:
                    continue  # what the reopening made due (a payment owed) is done now
            if self._history_full():
                await self._continue_as_new()
            wake = r.next_wake(self._state)
            self._changed = False
            try:
                await workflow.wait_condition(
                    self._woken,
                    timeout=None if wake is None else max(wake - workflow.now(),
                                                          timedelta(seconds=1)))
            except TimeoutError:
                pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        return rmsg.ReintegrationResult(case_id=input.case_id,
                                        closed_reason=self._state.closed_reason,
                                        events_recorded=self._events_recorded, runs=input.run)

    async def _reopened_in_time(self) -> bool:
        """A closed case waits for a reopening until its window ends (then the run ends)."""
        closed_at = self._state.closed_at or workflow.now()
        while self._state.closed:
            if self._history_full():
                await self._continue_as_new()
            left = closed_at + self._config.reopen_window - workflow.now()
            if left <= timedelta(0):
                return False
            self._changed = False
            try:
                await workflow.wait_condition(self._woken, timeout=left)
            except TimeoutError:
                pass
        return True

    def _woken(self) -> bool:
        return self._changed or self._history_full()

    def _history_full(self) -> bool:
        info = workflow.info()
        return (info.is_continue_as_new_suggested()
                or info.get_current_history_length() >= self._config.continue_as_new_after_events)

    async def _continue_as_new(self) -> None:
        self._rolling_over = True  # validators refuse new Updates from here
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._input.model_copy(update={
            "carried": self._state, "events_recorded": self._events_recorded,
            "run": self._input.run + 1}))

    # --- Updates ----------------------------------------------------------------------

    @workflow.update
    async def complete_task(self, completion: rmsg.ReintegrationTaskCompletion) -> rmsg.Recorded:
        return await self._handle(r.CompleteTask(completion), completion.organisation_id,
                                  completion.actor_id)

    @complete_task.validator
    def _validate_completion(self, completion: rmsg.ReintegrationTaskCompletion) -> None:
        self._validate(r.CompleteTask(completion))

    @workflow.update
    async def change_plan(self, change: rmsg.PlanChange) -> rmsg.Recorded:
        return await self._handle(r.ChangePlan(change), change.organisation_id, change.actor_id)

    @change_plan.validator
    def _validate_plan_change(self, change: rmsg.PlanChange) -> None:
        self._validate(r.ChangePlan(change))

    @workflow.update
    async def record_risk(self, report: rmsg.RiskReport) -> rmsg.Recorded:
        return await self._handle(r.RecordRisk(report), report.organisation_id, report.actor_id)

    @record_risk.validator
    def _validate_risk(self, report: rmsg.RiskReport) -> None:
        self._validate(r.RecordRisk(report))

    @workflow.update
    async def record_opt_out(self, opt_out: rmsg.OptOut) -> rmsg.Recorded:
        return await self._handle(r.RecordOptOut(opt_out), opt_out.organisation_id,
                                  opt_out.actor_id)

    @record_opt_out.validator
    def _validate_opt_out(self, opt_out: rmsg.OptOut) -> None:
        self._validate(r.RecordOptOut(opt_out))

    @workflow.update
    async def close(self, closure: rmsg.Closure) -> rmsg.Recorded:
        return await self._handle(r.CloseFollowUp(closure), closure.organisation_id,
                                  closure.actor_id)

    @close.validator
    def _validate_closure(self, closure: rmsg.Closure) -> None:
        self._validate(r.CloseFollowUp(closure))

    @workflow.update
    async def reopen(self, reopening: rmsg.Reopening) -> rmsg.Recorded:
        # Runs that reopened before decision 0041 replay as they ran: nothing restored, and
        # the agenda waited for its next wake instead of running at once.
        self._restores_owed = workflow.patched(REOPEN_RESTORES_OWED)
        return await self._handle(r.ReopenFollowUp(reopening, restores_owed=self._restores_owed),
                                  reopening.organisation_id, reopening.actor_id)

    @reopen.validator
    def _validate_reopening(self, reopening: rmsg.Reopening) -> None:
        self._validate(r.ReopenFollowUp(reopening))

    @workflow.update
    async def record_age_assessment(self, assessment: msg.AgeAssessment) -> rmsg.Recorded:
        """After the handoff: an assessment that finds her a child makes her follow-up a
        child's (``HomewardMinor``)."""
        return await self._handle(r.AssessAge(assessment), assessment.organisation_id,
                                  assessment.actor_id)

    @record_age_assessment.validator
    def _validate_age_assessment(self, assessment: msg.AgeAssessment) -> None:
        self._validate(r.AssessAge(assessment))

    def _validate(self, command: r.Command) -> None:
        # Runs before anything is written: a rejected Update leaves no trace in the history.
        if self._rolling_over:
            raise ValueError(ROLLING_OVER)
        if self._lock.locked() and isinstance(command, r.CompleteTask) and not (
                self._state.task(command.completion.task_id)
                or command.completion.task_id in (*self._state.done_tasks,
                                                  *self._state.cancelled_tasks)):
            # An append is in flight and may be opening this very task (already in an
            # inbox, not yet in this state): the handler decides after it, under the lock,
            # and refuses there if the completion is still wrong.
            return
        refuse_if(r.decide(self._state, command,
                           r.Context(self._config, workflow.now(), _no_id)))

    async def _handle(self, command: r.Command, organisation_id: str,
                      actor_id: str) -> rmsg.Recorded:
        events = await self._record_command(command, author_org=organisation_id,
                                            actor=actor_id)
        return rmsg.Recorded(event_types=tuple(e.type for e in events))  # type: ignore[attr-defined]

    # --- query --------------------------------------------------------------------------

    @workflow.query
    def status(self) -> rmsg.ReintegrationView:
        return rmsg.ReintegrationView(
            stage=r.stage_of(self._state), next_check_in_due=r.next_check_in_due(self._state),
            payment_failing=r.payment_failing(self._state),
            events_recorded=self._events_recorded, run=self._input.run, state=self._state)

    # --- deciding and recording ---------------------------------------------------------

    def _context(self) -> r.Context:
        return r.Context(self._config, workflow.now(), workflow.uuid4,
                         delivery_tasks=workflow.patched(DELIVERY_TASKS))

    async def _advance(self) -> bool:
        """One step of the agenda; False when there is nothing to do now."""
        async with self._lock:
            events = r.next_step(self._state, self._context())
            if not events:
                return False
            await self._append(events)
            return True

    async def _record_command(self, command: r.Command, *, author_org: str | None = None,
                              actor: str = WORKFLOW_ACTOR) -> list[r.Event]:
        async with self._lock:
            decision = r.decide(self._state, command, self._context())
            if isinstance(decision, Refusal):
                # The state moved between validation and handling (another Update won).
                raise Refused(decision)
            await self._append(decision, author_org=author_org, actor=actor)
            return decision

    async def _append(self, events: Sequence[r.Event], *, author_org: str | None = None,
                      actor: str = WORKFLOW_ACTOR) -> None:
        state = r.fold(self._state, events)
        if state.closed and state.closed_at is None:
            state = state.model_copy(update={"closed_at": workflow.now()})
        # An Update names its organisation: a failed append is refused to its caller.
        appended = await self._recorder.append(events, author_org=author_org, actor=actor,
                                               refuse_on_failure=author_org is not None)
        self._state = state
        self._events_recorded += appended
        self._changed = True
        self._publish()

    def _organisation_for(self, role: Role) -> str:
        """Who writes an event that no person's Update names: the receiving mission, which
        owns the follow-up."""
        return self._input.receiving_mission

    # --- search attributes --------------------------------------------------------------

    def _publish(self) -> None:
        s = self._state
        failing = r.payment_failing(s)
        wanted: dict[str, Any] = {
            sa.REINTEGRATION_STAGE.name: r.stage_of(s).value,
            sa.NEXT_CHECK_IN_DUE.name: r.next_check_in_due(s),
            sa.CONTACT_LOST.name: s.contact_lost,
            sa.CLOSED_REASON.name: s.closed_reason.value if s.closed_reason else None,
            sa.RISK_ESCALATED.name: s.risks[-1].value if s.risks else None,
            sa.BLOCKED_ON.name: PAYMENT_FAILING if failing else None,
            sa.MINOR.name: bool(s.minor),
        }
        keys = {k.name: k for k in (sa.REINTEGRATION_STAGE, sa.NEXT_CHECK_IN_DUE,
                                    sa.CONTACT_LOST, sa.CLOSED_REASON, sa.RISK_ESCALATED,
                                    sa.BLOCKED_ON, sa.MINOR)}
        updates: list[SearchAttributeUpdate[Any]] = []
        for name, value in wanted.items():
            if name in self._attributes and self._attributes[name] == value:
                continue
            self._attributes[name] = value
            key = keys[name]
            if key is sa.BLOCKED_ON:
                updates += sa.blocked(value, workflow.now())
            else:
                updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)
