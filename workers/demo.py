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

from domain.boundary import reintegration_workflow_id_for, workflow_id_for
from domain.journey import messages as msg
from domain.journey.config import DEFAULT_TASK_DUE, JourneyConfig
from domain.journey.vocabulary import LegFailure, ReferralSource, RiskLevel, TaskKind
from domain.reintegration import messages as rm
from domain.reintegration.config import ReintegrationConfig
from domain.reintegration.events import ServiceLine, SustainabilityIndicators
from domain.reintegration.vocabulary import (
    ContactChannel,
    Level,
    NotReachedReason,
    PaymentFailure,
    ReintegrationTaskKind,
    ServiceKind,
    ServiceStatus,
)
from store.event_store import EventStore
from workers import parties
from workers.parties import FollowUpParties, Parties, Stuck
from workflows import ReintegrationWorkflow
from workflows.client import start_return_case

SENDING = "mission-rs"
RECEIVING = "mission-md"
PARTNER = "ngo-md-border"


def workflow_url(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The workflow's page in the Temporal Web UI at ``ui_url``."""
    return f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"


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


async def run_demo(client: Client, store: EventStore, task_queue: str,
                   out: Callable[[str], Any] = print, follow_up: bool = True,
                   ui_url: str | None = None) -> int:
    """``ui_url``: the Temporal Web UI the printed links point at (default: the one of the
    settings, ``HOMEWARD_TEMPORAL_UI_PORT``); the namespace is the client's."""
    if ui_url is None:
        from workers.settings import load_settings

        ui_url = load_settings().temporal_ui_url

    def link(workflow_id: str) -> str:
        return workflow_url(ui_url, client.namespace, workflow_id)

    case_id = f"demo-{uuid.uuid4().hex[:12]}"
    input = parties.referral(
        case_id, sending_mission=SENDING, receiving_mission=RECEIVING, border_partner=PARTNER,
        referral_source=ReferralSource.NGO, risk_level=RiskLevel.HIGH,
        simulated_disruptions=(LegFailure.CANCELLED_FLIGHT,),
        config=DEMO_CONFIG,
        reintegration=DEMO_REINTEGRATION if follow_up else None,
    )
    workflow_id = workflow_id_for(case_id)
    handle = await start_return_case(client, input, task_queue)
    out(f"case {case_id} started: {link(workflow_id)}")
    demo = _Demo(handle, store, case_id, out)
    try:
        await demo.play()
        result = await asyncio.wait_for(handle.result(), STEP_TIMEOUT)
        closed = None
        if follow_up and result.outcome == "returned":
            follow = _FollowUpDemo(client, store, case_id, out, link)
            await follow.play()
            closed = await asyncio.wait_for(follow.handle.result(), STEP_TIMEOUT)
    except (DemoFailed, Stuck, TimeoutError) as error:
        out(f"demo failed: {error or 'timed out'} (is the worker running? `homeward dev`)")
        out(f"inspect it: {link(workflow_id)}")
        return 1
    count = len(await store.read_stream(case_id))
    after = "" if closed is None else (
        f"reintegration closed: {closed.closed_reason} after {closed.runs} run(s) · ")
    out(f"outcome: {result.outcome} · {after}{count} events in the store · "
        f"{link(workflow_id)}")
    if follow_up and (closed is None or closed.closed_reason != "support_period_ended"):
        return 1
    return 0 if result.outcome == "returned" else 1


class _Demo:
    def __init__(self, handle: WorkflowHandle, store: EventStore, case_id: str,
                 out: Callable[[str], Any]):
        self.parties = Parties(handle, road_org=SENDING, actor="u-demo", timeout=STEP_TIMEOUT,
                               interval=0.2, give_up_when_closed=True)
        self.store = store
        self.case_id = case_id
        self.out = out

    async def play(self) -> None:
        now = datetime.now(UTC)
        await self.complete(TaskKind.SCREENING_INTERVIEW, parties.screening())
        await self.complete(TaskKind.OPTIONS_DECISION, parties.decision())
        await self.complete(TaskKind.INFORMED_CONSENT, parties.consent(now))
        await self.complete(TaskKind.TRAVEL_DOCUMENTS, parties.documents_issued())
        await self.complete(TaskKind.MEDICAL_CLEARANCE, parties.medical_fit())
        await self.complete(TaskKind.SECURITY_ASSESSMENT, parties.security(RiskLevel.HIGH))

        self.out("journey: the first flight is cancelled by the carrier; rebooking…")
        view = await self.parties.until(lambda v: v.booking_attempts >= 2 and
                                        v.stage == "awaiting_departure", "the rebooked flight")
        await self.progress(view.stage, "rebooked after the cancelled flight")
        await self.fact("departed")
        await self.fact("arrived_at_border")
        await self.fact("border_hold_started")
        view = await self.parties.until(lambda v: v.blocked_on == "border_hold",
                                        "the border hold")
        await self.progress(view.stage, "held at the border")
        await self.complete(TaskKind.BORDER_COMPANION, msg.BorderCompanionResult(
            companion_record_id=parties.record_id()))
        await self.fact("border_hold_lifted")
        await self.fact("border_cleared")

        code = await self.parties.handoff_code()
        await self.complete(TaskKind.RECEPTION_HANDOFF, parties.reception_handoff(code))

    async def complete(self, kind: TaskKind, result: Any) -> None:
        """Her task of ``kind``, completed by the organisation it is assigned to."""
        view, task = await self.parties.open_task(kind)
        await self.parties.complete_task(task, result)
        await self.progress(view.stage, f"task completed: {kind.value} ({task.assignee_org})")

    async def fact(self, fact: str) -> None:
        """A fact from the road, recorded at once (the Update answers with its events)."""
        recorded = await self.parties.fact(fact)
        await self.progress(recorded.stage, f"fact {fact}: {', '.join(recorded.event_types)}")

    async def progress(self, stage: str, what: str) -> None:
        events = len(await self.store.read_stream(self.case_id))
        self.out(f"[{stage}] {what} · {events} events")


K = ReintegrationTaskKind


class _FollowUpDemo:
    """The receiving mission's year of follow-up, in seconds: assessment, a plan (one
    service declined), three instalments (one fails once and is retried), four check-ins
    (one missed), a plan change, the sustainability assessment and the closure."""

    def __init__(self, client: Client, store: EventStore, case_id: str,
                 out: Callable[[str], Any], link: Callable[[str], str]):
        self.link = link
        self.handle = client.get_workflow_handle_for(ReintegrationWorkflow.run,
                                                     reintegration_workflow_id_for(case_id))
        self.mission = FollowUpParties(self.handle, actor="u-demo", timeout=STEP_TIMEOUT,
                                       interval=0.2)
        self.store = store
        self.case_id = case_id
        self.out = out

    async def play(self) -> None:
        self.out(f"reintegration: {self.link(self.handle.id)}")
        await self.complete(K.NEEDS_ASSESSMENT, rm.NeedsAssessmentResult(
            assessment_record_id=parties.record_id(),
            needs=(ServiceKind.VOCATIONAL_TRAINING, ServiceKind.PSYCHOLOGICAL_SUPPORT)))
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
                                   wellbeing_record_id=parties.record_id())
        await self.complete(K.CHECK_IN, reached, check_in=1)
        await self.complete(K.GRANT_PAYMENT, rm.GrantPaymentResult(paid=True), instalment=3)
        await self.complete(K.CHECK_IN, rm.CheckInResult(
            reached=False, not_reached_reason=NotReachedReason.NO_ANSWER), check_in=2)
        await self.mission.update(ReintegrationWorkflow.change_plan, rm.PlanChange(
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

    async def complete(self, kind: ReintegrationTaskKind, result: Any, **refs: Any) -> None:
        """Her task of ``kind`` (``refs`` pick the instalment, check-in or attempt),
        completed by the receiving mission it is assigned to."""
        task = await self.mission.task(kind, **refs)
        await self.mission.complete_task(task, result)
        detail = "".join(f" {k} {v}" for k, v in refs.items())
        await self.progress(f"task completed: {kind.value}{detail} ({task.assignee_org})")

    async def progress(self, what: str) -> None:
        view = await self.mission.status()
        events = len(await self.store.read_stream(self.case_id))
        self.out(f"[reintegration:{view.stage.value}] {what} · {events} events")
