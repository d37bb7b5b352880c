"""The road as cases started before facts were Updates (patch ``road-facts-as-updates``)
still travel it: facts arrive as ``journey_fact`` signals and wait in a queue for the step
that expects them. Kept only so that those runs, and their recorded histories, replay
unchanged (decision 0035); new runs never enter this code. Remove it once no run started
before the patch is open.

Imports: the standard library, temporalio and domain/ only (the sandbox rejects the rest).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.journey import decider as c
    from domain.journey import messages as msg
    from domain.journey.config import JourneyConfig
    from domain.journey.policies import border_hold_steps
    from domain.journey.vocabulary import (
        EscalationReason,
        FactSource,
        LegFailure,
        RoadFact,
        Stage,
        TaskCancelReason,
        TaskKind,
    )
    from domain.kernel import WORKFLOW_ACTOR

if TYPE_CHECKING:
    from workflows.return_case import ReturnCaseWorkflow as _Base
else:
    _Base = object


class SignalledRoad(_Base):
    """Mixin of ``ReturnCaseWorkflow``: the queued-signal road of pre-patch runs."""

    async def _travel_by_signals(self) -> EscalationReason | None:
        while True:
            self._set_stage(Stage.BOOKING)
            booking = await self._book()
            if booking is None:
                if await self._escalate(EscalationReason.REBOOKING_LIMIT_REACHED):
                    continue
                return EscalationReason.REBOOKING_LIMIT_REACHED
            await self._equip_journey()

            self._set_stage(Stage.AWAITING_DEPARTURE)
            wait = booking.departure_at - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)
            if booking.disruption is not None:  # the simulated provider's own feed
                fact = msg.JourneyFact(organisation_id=self._input.sending_mission,
                                       actor_id=WORKFLOW_ACTOR, fact=RoadFact.LEG_FAILED,
                                       failure=booking.disruption)
                source = FactSource.PROVIDER_FEED
            else:
                fact = await self._next_fact({"departed", "leg_failed"})
                source = FactSource.FIELD_REPORT
            if fact.fact == "leg_failed":
                if not await self._signalled_leg_failure(fact, source):
                    return EscalationReason.REBOOKING_LIMIT_REACHED
                continue
            await self._apply([c.RecordFact(RoadFact.DEPARTED)], fact=fact)

            self._set_stage(Stage.IN_TRANSIT)
            fact = await self._next_fact({"arrived_at_border", "leg_failed"})
            if fact.fact == "leg_failed":
                if not await self._signalled_leg_failure(fact, FactSource.FIELD_REPORT):
                    return EscalationReason.REBOOKING_LIMIT_REACHED
                continue
            await self._apply([c.RecordFact(RoadFact.ARRIVED_AT_BORDER)],
                              fact=fact)

            self._set_stage(Stage.BORDER)
            if await self._signalled_border(self._input.config):
                return None
            # Entry refused: back to planning; the provider avoids the refused entry point.

    async def _signalled_leg_failure(self, fact: msg.JourneyFact, source: FactSource) -> bool:
        assert fact.failure is not None
        await self._apply([c.RecordFact(RoadFact.LEG_FAILED,
                                        failure=LegFailure(fact.failure), source=source)],
                          fact=fact)
        failed = self._state.failed_attempts
        if failed >= self._input.config.max_rebook_attempts:
            return await self._escalate(EscalationReason.REBOOKING_LIMIT_REACHED)
        await self._back_off(failed)
        return True

    async def _signalled_border(self, config: JourneyConfig) -> bool:
        while True:
            fact = await self._next_fact({"border_cleared", "border_hold_started",
                                          "entry_refused"})
            now = workflow.now()
            await self._apply([c.RecordFact(RoadFact(fact.fact))], fact=fact)
            if fact.fact != "border_hold_started":
                return fact.fact == "border_cleared"
            return await self._signalled_hold(config, now)

    async def _signalled_hold(self, config: JourneyConfig, held_from: datetime) -> bool:
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
                    await self._apply([c.EscalateCase(EscalationReason.BORDER_HOLD_EXCEEDED,
                                                  held_from)])
                    self._set_blocked(f"escalation:{EscalationReason.BORDER_HOLD_EXCEEDED.value}")
                continue
            await self._apply([c.RecordFact(RoadFact(fact.fact))], fact=fact)
            if companion_task is not None and companion_task in self._state.open_tasks:
                await self._apply([c.CancelTask(companion_task, TaskCancelReason.HOLD_ENDED)])
            self._set_blocked(None)
            return fact.fact == "border_hold_lifted"

    async def _next_fact(self, kinds: set[str],
                         timeout: timedelta | None = None) -> msg.JourneyFact | None:
        """The next queued fact of one of ``kinds``; facts of other kinds that arrive first
        are dropped (counted in ``status``)."""

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
