"""The people of a case, played by a program: ``homeward demo`` and the scenario tests'
``CaseDriver`` both use this, so a task result the workflow accepts and the way a task is
completed are written once.

- ``referral()``, the start of a case, and builders of valid task results, each with
  fresh record ids (``screening()``, ``decision()``, ``consent()``, ``documents_issued()``,
  ``medical_fit()``, ``security()``, ``reception_handoff()``).
- ``Parties``: a return case's organisations at work. It waits through the ``status``
  query for a stage or an open task, completes the open task of a kind through the
  ``complete_task`` Update as the organisation the task is assigned to, and reports road
  facts through ``report_fact``.
- ``FollowUpParties``: the receiving mission completing the reintegration tasks.

How long to wait, how often to look, and whether a case that closes ends a wait are the
caller's: the demo gives up in seconds, the tests wait out a loaded machine.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.journey import messages as msg
from domain.journey.vocabulary import (
    IdentificationMethod,
    LegFailure,
    Placement,
    PostArrivalAssistance,
    ReferralSource,
    ReturnOption,
    RiskLevel,
    TaskKind,
    TraffickingStatus,
)
from domain.kernel import AgeCategory
from domain.reintegration import messages as rm
from domain.reintegration.vocabulary import ReintegrationTaskKind
from workflows import ReintegrationWorkflow, ReturnCaseWorkflow


def record_id() -> str:
    """A fresh id of a record in the case's vault (interview notes, forms, certificates)."""
    return f"rec_{uuid.uuid4().hex[:16]}"


# --- the referral and task results -------------------------------------------------------

def referral(case_id: str, *, sending_mission: str, receiving_mission: str,
             border_partner: str, **fields: Any) -> msg.ReturnCaseInput:
    """A referral home from Serbia to Moldova: an adult in a low-risk shelter, referred
    after a police raid, at low risk; ``fields`` override any of it."""
    return msg.ReturnCaseInput(**{
        "case_id": case_id, "sending_mission": sending_mission,
        "receiving_mission": receiving_mission, "border_partner": border_partner,
        "host_country": "RS", "destination_country": "MD",
        "referral_source": ReferralSource.POLICE_RAID,
        "first_placement": Placement.SHELTER_LOW_RISK, "risk_level": RiskLevel.LOW,
        "age_category": AgeCategory.AGE_18_TO_24, **fields})


def screening(**kw: Any) -> msg.ScreeningResult:
    return msg.ScreeningResult(**{
        "interview_record_id": record_id(), "interview_language": "ro",
        "interpreter_used": False, "reads_languages": ("ro", "ru"),
        "trafficking_status": TraffickingStatus.ACTUAL, **kw})


def decision(choice: ReturnOption = ReturnOption.RETURN, **kw: Any) -> msg.OptionsDecisionResult:
    return msg.OptionsDecisionResult(choice=choice, counselled_in_language="ro", **kw)


def consent(now: datetime, **kw: Any) -> msg.ConsentResult:
    """Her consent, signed ``now`` unless ``signed_at`` says otherwise."""
    return msg.ConsentResult(**{
        "consent_form_record_id": record_id(), "form_language": "ro", "form_version": "2026-1",
        "interpreter_used": False, "signed_at": now, **kw})


def documents_issued() -> msg.TravelDocumentsResult:
    return msg.TravelDocumentsResult(issued=True, document_record_id=record_id())


def medical_fit() -> msg.MedicalClearanceResult:
    return msg.MedicalClearanceResult(fit_to_travel=True, medical_record_id=record_id())


def security(risk: RiskLevel = RiskLevel.LOW) -> msg.SecurityAssessmentResult:
    return msg.SecurityAssessmentResult(risk_level=risk)


ARRIVAL_ASSISTANCE = (PostArrivalAssistance.OVERNIGHT_ACCOMMODATION,
                      PostArrivalAssistance.ONWARD_TRANSFER)


def reception_handoff(code: str, assistance: Iterable[PostArrivalAssistance] =
                      ARRIVAL_ASSISTANCE) -> msg.ReceptionHandoffResult:
    """She is received at home: identified by the handoff code, safe, and assisted."""
    return msg.ReceptionHandoffResult(
        identification=IdentificationMethod.HANDOFF_CODE, handoff_code=code,
        safe_arrival_confirmed=True, assistance_provided=tuple(assistance))


# --- waiting -----------------------------------------------------------------------------

class Stuck(Exception):
    """A case did not get where a party waited for it to get."""


V = TypeVar("V")


async def wait_until(read: Callable[[], Awaitable[V]], predicate: Callable[[V], bool],
                     what: str, *, timeout: float, interval: float,
                     closed: Callable[[V], str | None] = lambda view: None,
                     stage: Callable[[V], object] = lambda view: None) -> V:
    """Read a view until ``predicate`` holds; ``Stuck`` after ``timeout`` seconds, or as
    soon as ``closed`` names why the case closed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        view = await read()
        if predicate(view):
            return view
        if (reason := closed(view)) is not None:
            raise Stuck(f"the case closed ({reason}) while waiting for {what}")
        if loop.time() > deadline:
            stuck = Stuck(f"no {what} after {timeout:.0f} s (stage {stage(view)})")
            stuck.add_note(f"status: {view}")
            raise stuck
        await asyncio.sleep(interval)


async def _update(handle: WorkflowHandle, update: Any, arg: Any) -> Any:
    """An Update; a refusal raises with its reason in a note, for readable failures."""
    try:
        return await handle.execute_update(update, arg)
    except WorkflowUpdateFailedError as failed:
        failed.add_note(f"refused: {failed.cause}")
        raise


# --- the parties -------------------------------------------------------------------------

class Parties:
    """A return case's organisations: each completes the tasks assigned to it; the sending
    mission (``road_org``, its escort travels with her) reports the facts of the road.

    ``actor`` completes tasks and ``road_actor`` reports facts. A wait gives up after
    ``timeout`` seconds, looking every ``interval``; with ``give_up_when_closed`` it also
    gives up as soon as the case has an outcome."""

    def __init__(self, handle: WorkflowHandle, *, road_org: str, actor: str,
                 road_actor: str | None = None, timeout: float, interval: float,
                 give_up_when_closed: bool):
        self.handle = handle
        self.road_org = road_org
        self.actor = actor
        self.road_actor = road_actor or actor
        self.timeout = timeout
        self.interval = interval
        self.give_up_when_closed = give_up_when_closed

    async def status(self) -> msg.CaseView:
        return await self.handle.query(ReturnCaseWorkflow.status)

    async def until(self, predicate: Callable[[msg.CaseView], bool], what: str,
                    timeout: float | None = None) -> msg.CaseView:
        return await wait_until(
            self.status, predicate, what, timeout=timeout or self.timeout,
            interval=self.interval, stage=lambda view: view.stage,
            closed=(lambda view: view.outcome) if self.give_up_when_closed else
            (lambda view: None))

    async def stage(self, stage: str) -> msg.CaseView:
        return await self.until(lambda v: v.stage == stage, f"stage {stage}")

    async def open_task(self, kind: TaskKind) -> tuple[msg.CaseView, msg.OpenTaskView]:
        """The case as it was when a task of ``kind`` was open, and that task."""
        view = await self.until(lambda v: any(t.kind == kind for t in v.open_tasks),
                                f"open {kind.value} task")
        return view, next(t for t in view.open_tasks if t.kind == kind)

    async def task(self, kind: TaskKind) -> msg.OpenTaskView:
        return (await self.open_task(kind))[1]

    async def complete_task(self, task: msg.OpenTaskView, result: Any, *,
                            org: str | None = None, actor: str | None = None
                            ) -> msg.TaskCompleted:
        """Complete ``task`` as its assignee (or as ``org``, to see another refused)."""
        return await self.update(ReturnCaseWorkflow.complete_task, msg.TaskCompletion(
            task_id=task.task_id, organisation_id=org or task.assignee_org,
            actor_id=actor or self.actor, result=result))

    async def complete(self, kind: TaskKind, result: Any, *, org: str | None = None,
                       actor: str | None = None) -> msg.TaskCompleted:
        """Wait for an open task of ``kind`` and complete it."""
        return await self.complete_task(await self.task(kind), result, org=org, actor=actor)

    async def fact(self, fact: str, failure: LegFailure | None = None,
                   org: str | None = None) -> msg.FactRecorded:
        """A fact from the road; the Update answers once it is recorded (or raises)."""
        return await self.update(ReturnCaseWorkflow.report_fact, msg.JourneyFact(
            organisation_id=org or self.road_org, actor_id=self.road_actor, fact=fact,
            failure=failure))

    async def handoff_code(self) -> str:
        code = await self.handle.query(ReturnCaseWorkflow.handoff_code)
        if code is None:
            raise Stuck("no handoff code was issued")
        return code

    async def update(self, update: Any, arg: Any) -> Any:
        return await _update(self.handle, update, arg)


class FollowUpParties:
    """The receiving mission at work on a reintegration: it completes the open task of a
    kind (and instalment, check-in or attempt) as its assignee, through the
    ``complete_task`` Update. A wait gives up when the reintegration closes."""

    def __init__(self, handle: WorkflowHandle, *, actor: str, timeout: float,
                 interval: float):
        self.handle = handle
        self.actor = actor
        self.timeout = timeout
        self.interval = interval

    async def status(self) -> rm.ReintegrationView:
        return await self.handle.query(ReintegrationWorkflow.status)

    async def task(self, kind: ReintegrationTaskKind, **refs: Any) -> rm.OpenReintegrationTask:
        def match(t: rm.OpenReintegrationTask) -> bool:
            return t.kind is kind and all(getattr(t, k) == v for k, v in refs.items())

        view = await wait_until(
            self.status, lambda v: any(match(t) for t in v.state.open_tasks),
            f"{kind.value} task", timeout=self.timeout, interval=self.interval,
            stage=lambda view: view.stage, closed=lambda view: view.state.closed_reason)
        return next(t for t in view.state.open_tasks if match(t))

    async def complete_task(self, task: rm.OpenReintegrationTask, result: Any) -> Any:
        return await self.update(ReintegrationWorkflow.complete_task,
                                 rm.ReintegrationTaskCompletion(
                                     task_id=task.task_id, organisation_id=task.assignee_org,
                                     actor_id=self.actor, result=result))

    async def complete(self, kind: ReintegrationTaskKind, result: Any, **refs: Any) -> Any:
        return await self.complete_task(await self.task(kind, **refs), result)

    async def update(self, update: Any, arg: Any) -> Any:
        return await _update(self.handle, update, arg)
