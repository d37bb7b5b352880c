"""``homeward demo``: one simulated return, end to end, on the running dev stack.

Plays every party through the same Updates and signals the API will use: the sending
mission's coordinator (screening, decision, consent, documents, clearances, road facts),
the partner NGO (a companion at the border) and the receiving mission (the handoff).
The journey's durations are seconds instead of days (``JourneyConfig``), so it finishes
in well under a minute, with one cancelled flight (rebooked after a backoff) and a short
border hold that calls a companion. Watch it in the Temporal UI while it runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle

from domain import messages as msg
from domain import reintegration_messages as rm
from domain.boundary import reintegration_workflow_id_for, workflow_id_for
from domain.config import DEFAULT_TASK_DUE, JourneyConfig, ReintegrationConfig
from domain.reintegration_events import ServiceLine, SustainabilityIndicators
from domain.reintegration_vocabulary import (
    ContactChannel,
    Level,
    NotReachedReason,
    PaymentFailure,
    ReintegrationTaskKind,
    ServiceKind,
    ServiceStatus,
)
from domain.vocabulary import (
    AgeCategory,
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
from store.event_store import EventStore
from workflows import ReintegrationWorkflow, ReturnCaseWorkflow
from workflows.client import start_return_case

SENDING = "mission-rs"
RECEIVING = "mission-md"
PARTNER = "ngo-md-border"
UI_URL = "http://localhost:8233/namespaces/default/workflows/{workflow_id}"

DEMO_CONFIG = JourneyConfig(
    border_companion_after=timedelta(seconds=2),
    border_escalation_after=timedelta(seconds=30),
    departure_lead=timedelta(seconds=2),
    rebook_backoff=timedelta(seconds=1),
    rebook_backoff_max=timedelta(seconds=4),
    medical_reassessment_after=timedelta(seconds=2),
    witness_notice=timedelta(seconds=5),
    # Generous for a demo driven by a script: nothing becomes overdue.
    task_due={kind: timedelta(minutes=10) for kind in DEFAULT_TASK_DUE},
)

# Reintegration in seconds: four check-ins 3 s apart instead of 1, 3, 6 and 12 months.
_S = timedelta(seconds=1)
DEMO_REINTEGRATION = ReintegrationConfig(
    needs_assessment_within=600 * _S, plan_within=600 * _S,
    check_ins_after_arrival=(3 * _S, 6 * _S, 9 * _S, 12 * _S), check_in_window=600 * _S,
    tracing_within=600 * _S, tracing_retry_after=5 * _S, payment_within=600 * _S,
    payment_retry_after=_S, payment_retry_max=2 * _S, review_within=600 * _S,
    sustainability_within=600 * _S, reopen_window=2 * _S,
)

STEP_TIMEOUT = 30.0  # seconds to wait for any one step before giving up


class DemoFailed(Exception):
    pass


def _rec() -> str:
    return f"rec_{uuid.uuid4().hex[:16]}"


async def run_demo(client: Client, store: EventStore, task_queue: str,
                   out: Callable[[str], Any] = print, follow_up: bool = True) -> int:
    case_id = f"demo-{uuid.uuid4().hex[:12]}"
    input = msg.ReturnCaseInput(
        case_id=case_id,
        sending_mission=SENDING,
        receiving_mission=RECEIVING,
        border_partner=PARTNER,
        host_country="RS",
        destination_country="MD",
        referral_source=ReferralSource.NGO,
        first_placement=Placement.SHELTER_LOW_RISK,
        risk_level=RiskLevel.HIGH,
        age_category=AgeCategory.AGE_18_TO_24,
        simulated_disruptions=(LegFailure.CANCELLED_FLIGHT,),
        config=DEMO_CONFIG,
        reintegration=DEMO_REINTEGRATION if follow_up else None,
    )
    workflow_id = workflow_id_for(case_id)
    handle = await start_return_case(client, input, task_queue)
    out(f"case {case_id} started: {UI_URL.format(workflow_id=workflow_id)}")
    demo = _Demo(handle, store, case_id, out)
    try:
        await demo.play()
        result = await asyncio.wait_for(handle.result(), STEP_TIMEOUT)
        closed = None
        if follow_up and result.outcome == "returned":
            follow = _FollowUpDemo(client, store, case_id, out)
            await follow.play()
            closed = await asyncio.wait_for(follow.handle.result(), STEP_TIMEOUT)
    except (DemoFailed, TimeoutError) as error:
        out(f"demo failed: {error or 'timed out'} (is the worker running? `homeward dev`)")
        out(f"inspect it: {UI_URL.format(workflow_id=workflow_id)}")
        return 1
    count = len(await store.read_stream(case_id))
    after = "" if closed is None else (
        f"reintegration closed: {closed.closed_reason} after {closed.runs} run(s) · ")
    out(f"outcome: {result.outcome} · {after}{count} events in the store · "
        f"{UI_URL.format(workflow_id=workflow_id)}")
    if follow_up and (closed is None or closed.closed_reason != "support_period_ended"):
        return 1
    return 0 if result.outcome == "returned" else 1


class _Demo:
    def __init__(self, handle: WorkflowHandle, store: EventStore, case_id: str,
                 out: Callable[[str], Any]):
        self.handle = handle
        self.store = store
        self.case_id = case_id
        self.out = out

    async def play(self) -> None:
        now = datetime.now(UTC)
        await self.complete(TaskKind.SCREENING_INTERVIEW, msg.ScreeningResult(
            interview_record_id=_rec(), interview_language="ro", interpreter_used=False,
            reads_languages=("ro", "ru"), trafficking_status=TraffickingStatus.ACTUAL))
        await self.complete(TaskKind.OPTIONS_DECISION, msg.OptionsDecisionResult(
            choice=ReturnOption.RETURN, counselled_in_language="ro"))
        await self.complete(TaskKind.INFORMED_CONSENT, msg.ConsentResult(
            consent_form_record_id=_rec(), form_language="ro", form_version="2026-1",
            interpreter_used=False, signed_at=now))
        await self.complete(TaskKind.TRAVEL_DOCUMENTS, msg.TravelDocumentsResult(
            issued=True, document_record_id=_rec()))
        await self.complete(TaskKind.MEDICAL_CLEARANCE, msg.MedicalClearanceResult(
            fit_to_travel=True, medical_record_id=_rec()))
        await self.complete(TaskKind.SECURITY_ASSESSMENT, msg.SecurityAssessmentResult(
            risk_level=RiskLevel.HIGH))

        self.out("journey: the first flight is cancelled by the carrier; rebooking…")
        view = await self.until(lambda v: v.booking_attempts >= 2 and
                                v.stage == "awaiting_departure", "the rebooked flight")
        await self.progress(view, "rebooked after the cancelled flight")
        await self.fact("departed")
        await self.fact("arrived_at_border")
        await self.fact("border_hold_started")
        view = await self.until(lambda v: v.blocked_on == "border_hold", "the border hold")
        await self.progress(view, "held at the border")
        await self.complete(TaskKind.BORDER_COMPANION, msg.BorderCompanionResult(
            companion_record_id=_rec()), org=PARTNER)
        await self.fact("border_hold_lifted")
        await self.fact("border_cleared")

        code = await self.handle.query(ReturnCaseWorkflow.handoff_code)
        if code is None:
            raise DemoFailed("no handoff code was issued")
        await self.complete(TaskKind.RECEPTION_HANDOFF, msg.ReceptionHandoffResult(
            identification=IdentificationMethod.HANDOFF_CODE, handoff_code=code,
            safe_arrival_confirmed=True,
            assistance_provided=(PostArrivalAssistance.OVERNIGHT_ACCOMMODATION,
                                 PostArrivalAssistance.ONWARD_TRANSFER)), org=RECEIVING)

    async def status(self) -> msg.CaseView:
        return await self.handle.query(ReturnCaseWorkflow.status)

    async def until(self, predicate, what: str) -> msg.CaseView:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STEP_TIMEOUT
        while True:
            view = await self.status()
            if predicate(view):
                return view
            if view.outcome is not None:
                raise DemoFailed(f"the case closed ({view.outcome}) while waiting for {what}")
            if loop.time() > deadline:
                raise DemoFailed(f"no {what} after {STEP_TIMEOUT:.0f} s (stage {view.stage})")
            await asyncio.sleep(0.2)

    async def complete(self, kind: TaskKind, result: Any, org: str = SENDING) -> None:
        view = await self.until(lambda v: any(t.kind == kind for t in v.open_tasks),
                                f"open {kind.value} task")
        task = next(t for t in view.open_tasks if t.kind == kind)
        await self.handle.execute_update(
            ReturnCaseWorkflow.complete_task,
            msg.TaskCompletion(task_id=task.task_id, organisation_id=org,
                               actor_id="u-demo", result=result),
        )
        await self.progress(await self.status(), f"task completed: {kind.value} ({org})",
                            stage=view.stage)

    async def fact(self, fact: str) -> None:
        """A fact from the road, recorded at once (the Update answers with its events)."""
        recorded = await self.handle.execute_update(ReturnCaseWorkflow.report_fact,
                                                    msg.JourneyFact(organisation_id=SENDING,
                                                                    actor_id="u-demo",
                                                                    fact=fact))
        await self.progress(await self.status(),
                            f"fact {fact}: {', '.join(recorded.event_types)}",
                            stage=recorded.stage)

    async def progress(self, view: msg.CaseView, what: str, stage: str | None = None) -> None:
        events = len(await self.store.read_stream(self.case_id))
        self.out(f"[{stage or view.stage}] {what} · {events} events")


K = ReintegrationTaskKind


class _FollowUpDemo:
    """The receiving mission's year of follow-up, in seconds: assessment, a plan (one
    service declined), three instalments (one fails once and is retried), four check-ins
    (one missed), a plan change, the sustainability assessment and the closure."""

    def __init__(self, client: Client, store: EventStore, case_id: str,
                 out: Callable[[str], Any]):
        self.handle = client.get_workflow_handle_for(ReintegrationWorkflow.run,
                                                     reintegration_workflow_id_for(case_id))
        self.store = store
        self.case_id = case_id
        self.out = out

    async def play(self) -> None:
        self.out(f"reintegration: {UI_URL.format(workflow_id=self.handle.id)}")
        await self.complete(K.NEEDS_ASSESSMENT, rm.NeedsAssessmentResult(
            assessment_record_id=_rec(), needs=(ServiceKind.VOCATIONAL_TRAINING,
                                                ServiceKind.PSYCHOLOGICAL_SUPPORT)))
        now = datetime.now(UTC)
        training = ServiceLine(line_id=uuid.uuid4(), service=ServiceKind.VOCATIONAL_TRAINING,
                               provider_org="ngo-skills-md", due_at=now + timedelta(days=60))
        await self.complete(K.REINTEGRATION_PLAN, rm.PlanResult(lines=(
            training,
            ServiceLine(line_id=uuid.uuid4(), service=ServiceKind.PSYCHOLOGICAL_SUPPORT,
                        provider_org="ngo-counsel-md", due_at=now + timedelta(days=30)),
            ServiceLine(line_id=uuid.uuid4(), service=ServiceKind.MICRO_CREDIT,
                        provider_org="mfi-md", due_at=now + timedelta(days=90),
                        status=ServiceStatus.DECLINED),  # her choice: recorded, no penalty
        )))
        await self.complete(K.GRANT_PAYMENT, rm.GrantPaymentResult(paid=True), instalment=1)
        await self.complete(K.GRANT_PAYMENT, rm.GrantPaymentResult(
            paid=False, failure=PaymentFailure.TRANSFER_REJECTED), instalment=2)
        await self.complete(K.GRANT_PAYMENT, rm.GrantPaymentResult(paid=True), instalment=2,
                            attempt=2)
        reached = rm.CheckInResult(reached=True, channel=ContactChannel.HOME_VISIT,
                                   wellbeing_record_id=_rec())
        await self.complete(K.CHECK_IN, reached, check_in=1)
        await self.complete(K.GRANT_PAYMENT, rm.GrantPaymentResult(paid=True), instalment=3)
        await self.complete(K.CHECK_IN, rm.CheckInResult(
            reached=False, not_reached_reason=NotReachedReason.NO_ANSWER), check_in=2)
        await self.handle.execute_update(ReintegrationWorkflow.change_plan, rm.PlanChange(
            organisation_id=RECEIVING, actor_id="u-demo",
            lines=(training.model_copy(update={"status": ServiceStatus.IN_PROGRESS}),)))
        await self.progress("plan changed: vocational training in progress")
        await self.complete(K.CHECK_IN, reached, check_in=3)
        await self.complete(K.CHECK_IN, reached, check_in=4)
        await self.complete(K.SUSTAINABILITY_ASSESSMENT, rm.SustainabilityResult(
            indicators=SustainabilityIndicators(
                income=Level.PARTIAL, housing=Level.FULL, basic_needs_met=True,
                family_support=Level.FULL, access_to_services=True, stigma_experienced=False,
                feels_safe=True, wellbeing_rating=4, has_trusted_person=True)))

    async def status(self) -> rm.ReintegrationView:
        return await self.handle.query(ReintegrationWorkflow.status)

    async def complete(self, kind: ReintegrationTaskKind, result: Any, **refs: Any) -> None:
        def match(t: rm.OpenReintegrationTask) -> bool:
            return t.kind is kind and all(getattr(t, k) == v for k, v in refs.items())

        loop = asyncio.get_running_loop()
        deadline = loop.time() + STEP_TIMEOUT
        while True:
            view = await self.status()
            task = next((t for t in view.state.open_tasks if match(t)), None)
            if task is not None:
                break
            if view.state.closed_reason is not None:
                raise DemoFailed(f"reintegration closed ({view.state.closed_reason}) while "
                                 f"waiting for {kind.value}")
            if loop.time() > deadline:
                raise DemoFailed(f"no {kind.value} task after {STEP_TIMEOUT:.0f} s "
                                 f"(stage {view.stage})")
            await asyncio.sleep(0.2)
        await self.handle.execute_update(
            ReintegrationWorkflow.complete_task,
            rm.ReintegrationTaskCompletion(task_id=task.task_id, organisation_id=RECEIVING,
                                           actor_id="u-demo", result=result))
        detail = "".join(f" {k} {v}" for k, v in refs.items())
        await self.progress(f"task completed: {kind.value}{detail} ({RECEIVING})")

    async def progress(self, what: str) -> None:
        view = await self.status()
        events = len(await self.store.read_stream(self.case_id))
        self.out(f"[reintegration:{view.stage.value}] {what} · {events} events")
