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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

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
from workflows import ReintegrationWorkflow, ReturnCaseWorkflow
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


# --- ``homeward demo --cases N``: a varied caseload for the reports -----------------------

SEED_SEXES = (("female", 80), ("male", 12), ("other", 3), ("not_recorded", 5))
SEED_AGES = (("18_24", 40), ("25_34", 18), ("35_plus", 7), ("12_17", 15), ("under_12", 3),
             ("unknown", 12), ("disputed", 5))
SEED_DESTINATIONS = (("MD", 60), ("RO", 15), ("UA", 15), ("BG", 10))
SEED_HOSTS = (("RS", 55), ("BA", 20), ("MK", 15), ("XK", 10))
SEED_OUTCOMES = (("returned", 45), ("declined", 9), ("not_a_victim", 7),
                 ("alternative_pathway", 8), ("reflection_period", 5),
                 ("temporary_residence", 4), ("stay_in_shelter", 4), ("missing", 5),
                 ("open", 13))
SEED_TRANSIT = ("RO", "HU", "BG", "MK", "ME", "AL", "IT", "TR")
SEED_EXPLOITATION = ("RS", "BA", "XK", "MK", "IT", "DE", "TR", "AE")
SEED_CONCURRENCY = 6


def _pick(rng: Any, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def seed_account(rng: Any, origin: str, host: str) -> Any:
    """A coded account of how trafficking occurred: each question answered or skipped at
    random; recruited at home, through 0–2 countries, exploited in the host country (and
    sometimes elsewhere first)."""
    from domain.trafficking import (
        DurationBand,
        ExploitationType,
        RecruitmentMethod,
        RouteRole,
        RouteStop,
        TraffickingAccount,
        TransportMeans,
    )

    route = [RouteStop(role=RouteRole.RECRUITMENT, country=origin)]
    route += [RouteStop(role=RouteRole.TRANSIT, country=c)
              for c in rng.sample([c for c in SEED_TRANSIT if c not in (origin, host)],
                                  rng.choice((0, 1, 1, 2)))]
    if rng.random() < 0.25:
        route.append(RouteStop(role=RouteRole.EXPLOITATION, country=rng.choice(
            [c for c in SEED_EXPLOITATION if c != host])))
    route.append(RouteStop(role=RouteRole.EXPLOITATION, country=host))
    types = [ExploitationType.SEXUAL_EXPLOITATION] if rng.random() < 0.7 else []
    types += rng.sample([ExploitationType.FORCED_LABOUR, ExploitationType.FORCED_BEGGING,
                         ExploitationType.SERVITUDE, ExploitationType.FORCED_MARRIAGE],
                        rng.choice((0, 0, 1)))

    def maybe(value: Any, empty: Any = None) -> Any:
        return value if rng.random() < 0.85 else empty

    return TraffickingAccount(
        recruitment_method=maybe(rng.choice(list(RecruitmentMethod))),
        exploitation_types=tuple(maybe(types, [])) or (ExploitationType.OTHER,),
        route=tuple(maybe(route, [])),
        duration_band=maybe(rng.choice(list(DurationBand))),
        transport_means=tuple(maybe(rng.sample(list(TransportMeans)[:6], rng.choice((1, 2))),
                                    [])))


async def record_account(store: EventStore, case_id: str, account: Any,
                         actor: str = "u-demo") -> bool:
    """The sending mission's account, decided and appended as ``PUT
    /cases/{id}/trafficking-account`` does it."""
    from api.service.trafficking import TraffickingService
    from store.accounts import OrgKind, Principal, UserRole

    caller = Principal(actor, SENDING, OrgKind.SENDING_MISSION, UserRole.COORDINATOR)
    events = await store.read_case(case_id)
    return (await TraffickingService(store).record(caller, case_id, events, account)).recorded


async def run_seed(client: Client, store: EventStore, task_queue: str, cases: int,
                   out: Callable[[str], Any] = print, seed: int | None = None,
                   concurrency: int = SEED_CONCURRENCY) -> int:
    """``cases`` simulated cases with varied sex, age bands (minors and unknown age
    among them), host and destination countries, referral sources and outcomes, most with
    an account of how trafficking occurred, some returned ones followed up to their
    closure: something for the statistical report to show. Each case is driven as
    ``homeward demo`` drives one, several at a time; a line per case as it ends."""
    import random

    rng = random.Random(seed)
    plans = [_SeedPlan.draw(rng, i) for i in range(cases)]
    gate = asyncio.Semaphore(concurrency)
    done: list[str] = []
    failed: list[str] = []

    async def one(plan: _SeedPlan) -> None:
        async with gate:
            try:
                what = await _SeedCase(client, store, task_queue, plan).play()
            except (DemoFailed, Stuck, TimeoutError, WorkflowUpdateFailedError) as error:
                failed.append(plan.case_id)
                why = getattr(error, "cause", None) or error or "timed out"
                out(f"[{len(done) + len(failed)}/{cases}] {plan.case_id} failed: {why}")
                return
            done.append(plan.case_id)
            out(f"[{len(done) + len(failed)}/{cases}] {plan.case_id} {what}")

    out(f"seeding {cases} simulated cases ({concurrency} at a time)…")
    await asyncio.gather(*(one(p) for p in plans))
    out(f"seeded {len(done)} case(s), {len(failed)} failed: see GET /reports/statistical")
    return 1 if failed else 0


@dataclass(frozen=True)
class _SeedPlan:
    case_id: str
    sex: str
    age: str
    host: str
    destination: str
    source: ReferralSource
    outcome: str
    account: Any  # a TraffickingAccount, or None: the questions were not asked
    follow_up: str  # "closed", "planned" or "started" (returned cases)
    possible_victim: bool  # screened a possible, not an actual, victim

    @classmethod
    def draw(cls, rng: Any, n: int) -> _SeedPlan:
        host, destination = _pick(rng, SEED_HOSTS), _pick(rng, SEED_DESTINATIONS)
        outcome = _pick(rng, SEED_OUTCOMES)
        account = (seed_account(rng, destination, host)
                   if outcome != "not_a_victim" and rng.random() < 0.85 else None)
        return cls(f"seed-{uuid.uuid4().hex[:10]}-{n}", _pick(rng, SEED_SEXES),
                   _pick(rng, SEED_AGES), host, destination,
                   rng.choice(list(ReferralSource)), outcome, account,
                   rng.choice(("closed", "planned", "started")), rng.random() < 0.3)


_SEED_CHOICES = {"declined": "decline_assistance", "reflection_period": "reflection_period",
                 "temporary_residence": "temporary_residence",
                 "stay_in_shelter": "stay_in_shelter"}


class _SeedCase:
    def __init__(self, client: Client, store: EventStore, task_queue: str, plan: _SeedPlan):
        self.client, self.store, self.task_queue, self.plan = client, store, task_queue, plan

    async def play(self) -> str:
        from domain.journey.vocabulary import (
            ChildPresence,
            DecidedBy,
            Determination,
            GuardianAuthority,
            HandoverTo,
            ReturnOption,
            TracingFinding,
            TraffickingStatus,
        )
        from domain.kernel import AgeCategory, treated_as_minor

        p = self.plan
        minor = treated_as_minor(AgeCategory(p.age))
        handle = await start_return_case(self.client, parties.referral(
            p.case_id, sending_mission=SENDING, receiving_mission=RECEIVING,
            border_partner=PARTNER, host_country=p.host, destination_country=p.destination,
            referral_source=p.source, age_category=p.age, sex=p.sex, config=DEMO_CONFIG,
            reintegration=DEMO_REINTEGRATION), self.task_queue)
        case = Parties(handle, road_org=SENDING, actor="u-demo", timeout=STEP_TIMEOUT,
                       interval=0.2, give_up_when_closed=True)
        together: dict[str, Any] = {}
        if minor:
            await case.complete(TaskKind.GUARDIAN_APPOINTMENT, msg.GuardianAppointmentResult(
                guardian_record_id=parties.record_id(),
                authority=GuardianAuthority.SOCIAL_WELFARE_CENTRE))
            together = {"decided_by": DecidedBy.CHILD_WITH_GUARDIAN}
        status = (TraffickingStatus.NOT_A_VICTIM if p.outcome == "not_a_victim" else
                  TraffickingStatus.POSSIBLE if p.possible_victim else TraffickingStatus.ACTUAL)
        await case.complete(TaskKind.SCREENING_INTERVIEW, parties.screening(
            trafficking_status=status,
            child_accompanied_by=ChildPresence.GUARDIAN if minor else None))
        if p.account is not None:
            await record_account(self.store, p.case_id, p.account)
        if p.outcome == "not_a_victim" or p.outcome == "open":
            return self._said("screened: not a victim" if p.outcome == "not_a_victim"
                              else "open, waiting for her decision")
        choice = _SEED_CHOICES.get(p.outcome, ReturnOption.RETURN.value)
        from domain.journey.policies import reflection_minimum_days

        days = {"reflection_days": reflection_minimum_days(p.host, DEMO_CONFIG)}
        await case.complete(TaskKind.OPTIONS_DECISION, parties.decision(
            ReturnOption(choice), **(days if choice == "reflection_period" else {}),
            **together))
        if choice != ReturnOption.RETURN.value:
            return await self._outcome(handle)
        await case.complete(TaskKind.INFORMED_CONSENT, parties.consent(
            datetime.now(UTC), **({"consented_by": DecidedBy.CHILD_WITH_GUARDIAN}
                                  if minor else {})))
        if p.outcome == "alternative_pathway":
            await case.update(ReturnCaseWorkflow.record_withdrawal, msg.ConsentWithdrawal(
                organisation_id=SENDING, actor_id="u-demo"))
            return await self._outcome(handle)
        if minor:
            await case.complete(TaskKind.BEST_INTEREST_DETERMINATION, msg.BestInterestResult(
                determination=Determination.RETURN_IN_BEST_INTEREST,
                family_assessment_record_id=parties.record_id()))
        await case.complete(TaskKind.TRAVEL_DOCUMENTS, parties.documents_issued())
        await case.complete(TaskKind.MEDICAL_CLEARANCE, parties.medical_fit())
        await case.complete(TaskKind.SECURITY_ASSESSMENT, parties.security())
        await case.stage("awaiting_departure")
        if p.outcome == "missing":
            await case.fact("did_not_board")
            await case.complete(TaskKind.TRACING, msg.TracingResult(
                finding=TracingFinding.MISSING, tracing_record_id=parties.record_id()))
            return await self._outcome(handle)
        await case.fact("departed")
        await case.fact("arrived_at_border")
        await case.fact("border_cleared")
        await case.complete(TaskKind.RECEPTION_HANDOFF,
                            parties.reception_handoff(await case.handoff_code()))
        if minor:
            await case.complete(TaskKind.GUARDIAN_HANDOVER, msg.GuardianHandoverResult(
                handed_to=HandoverTo.FAMILY, guardian_record_id=parties.record_id()))
        outcome = await self._outcome(handle)
        return outcome + await self._follow_up()

    async def _outcome(self, handle: WorkflowHandle) -> str:
        result = await asyncio.wait_for(handle.result(), STEP_TIMEOUT)
        return self._said(result.outcome)

    def _said(self, what: str) -> str:
        p = self.plan
        route = "→".join(s.country for s in p.account.route) if p.account else ""
        return (f"{what} ({p.sex}, {p.age}, {p.host}→{p.destination}, {p.source.value})"
                + (f" · route {route}" if route else ""))

    async def _follow_up(self) -> str:
        if self.plan.follow_up == "started":
            return " · follow-up started"
        follow = _FollowUpDemo(self.client, self.store, self.plan.case_id, lambda _: None,
                               lambda workflow_id: workflow_id)
        if self.plan.follow_up == "planned":
            await follow.complete(K.NEEDS_ASSESSMENT, rm.NeedsAssessmentResult(
                assessment_record_id=parties.record_id(),
                needs=(ServiceKind.MEDICAL, ServiceKind.SHELTER)))
            return " · follow-up: needs assessed"
        await follow.play()
        closed = await asyncio.wait_for(follow.handle.result(), STEP_TIMEOUT)
        return f" · follow-up closed: {closed.closed_reason}"
