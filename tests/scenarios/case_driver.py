"""Drives a return case the way its people would, through ``workers.parties`` (the helper
``homeward demo`` plays them with too): waits for a task, completes it through the Update,
reports road facts; reads back the event store. What only a test wants stays here: waiting
for activities to settle before time is skipped, recording histories for the replay test,
and the exact event sequences of the common stretches of a journey."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle

from domain.journey import messages as msg
from domain.journey.vocabulary import (
    ChildPresence,
    ConsentChange,
    DecidedBy,
    Determination,
    GuardianAuthority,
    HandoverTo,
    LegFailure,
    RiskLevel,
    TaskKind,
    TestimonyArrangement,
)
from domain.kernel import AgeAssessor, AgeCategory, treated_as_minor
from store.event_store import EventStore
from workers import parties
from workers.parties import (
    ARRIVAL_ASSISTANCE,
    Parties,
    consent,
    decision,
    documents_issued,
    medical_fit,
    reception_handoff,
    screening,
    security,
)
from workflows import ReturnCaseWorkflow
from workflows.client import start_return_case

# How long a test waits in real time for a condition before it fails rather than hang.
# Generous on purpose: a shared 2-core machine can be slow; a condition that holds is seen
# as soon as it holds, so a working case never waits for this bound.
WAIT_BOUND = 300.0

SENDING = "iom-belgrade"
RECEIVING = "iom-chisinau"
PARTNER = "ngo-border-companions"


# Event types of the common stretches of a journey, for exact-sequence assertions.
REFERRAL_TO_CONSENT = [
    "case.referral_registered",
    "task.opened", "screening.interview_recorded",
    "task.opened", "options.decision_recorded",
    "task.opened", "consent.recorded",
]
# A child: her guardian appointment opens with the interview and comes before her decisions.
CHILD_REFERRAL_TO_CONSENT = [
    "case.referral_registered",
    "task.opened", "task.opened",  # guardian appointment and screening interview, together
    "minor.guardian_appointed", "screening.interview_recorded",
    "task.opened", "options.decision_recorded",
    "task.opened", "consent.recorded",
]
DOCUMENTS_AND_CLEARANCES = [
    "documents.requested", "task.opened", "documents.issued",
    "task.opened", "task.opened",  # medical and security, opened together
    "clearance.medical_recorded", "clearance.security_assessed",
]
BOOKED = ["journey.booked", "escort.assigned", "reception.handoff_code_issued"]
TRAVEL_TO_BORDER = ["journey.departed", "journey.arrived_at_border"]
RECEPTION = [
    "task.opened", "reception.handoff_confirmed", "reception.safe_arrival_confirmed",
    "reception.assistance_recorded",
]


def case_input(**overrides: Any) -> msg.ReturnCaseInput:
    """``parties.referral`` between this module's organisations, under a fresh case id."""
    return parties.referral(**{
        "case_id": f"c-{uuid.uuid4().hex[:12]}", "sending_mission": SENDING,
        "receiving_mission": RECEIVING, "border_partner": PARTNER, **overrides})


rec = parties.record_id


class HeldAppend(EventStore):
    """The event store, holding the append of one event type until the test lets it
    through: a step under way for as long as the test needs."""

    def __init__(self, engine, event_type: str):
        super().__init__(engine)
        self.event_type = event_type
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def append(self, case_id, expected_version, events_):
        if any(e.event_type == self.event_type for e in events_):
            self.reached.set()
            await self.release.wait()
        return await super().append(case_id, expected_version, events_)


class CaseDriver:
    def __init__(self, client: Client, handle: WorkflowHandle, input: msg.ReturnCaseInput,
                 store: EventStore):
        self.client = client
        self.handle = handle
        self.input = input
        self.store = store
        self.guardian_appointed = False  # by this driver
        self.parties = Parties(handle, road_org=SENDING, actor="u-1001", road_actor="u-2001",
                               timeout=WAIT_BOUND, interval=0.05, give_up_when_closed=False)

    @classmethod
    async def start(cls, client: Client, task_queue: str, store: EventStore,
                    input: msg.ReturnCaseInput) -> CaseDriver:
        handle = await start_return_case(client, input, task_queue)
        return cls(client, handle, input, store)

    async def status(self) -> msg.CaseView:
        return await self.parties.status()

    async def until(self, predicate, what: str, timeout: float = WAIT_BOUND) -> msg.CaseView:
        return await self.parties.until(predicate, what, timeout)

    async def task(self, kind: TaskKind) -> msg.OpenTaskView:
        return await self.parties.task(kind)

    async def complete(self, kind: TaskKind, result: Any, *, org: str | None = None,
                       actor: str | None = None) -> msg.TaskCompleted:
        """Complete the open task of ``kind`` as its assignee (or as ``org``)."""
        return await self.parties.complete(kind, result, org=org, actor=actor)

    async def fact(self, fact: str, failure: LegFailure | None = None,
                   org: str = SENDING) -> msg.FactRecorded:
        """Report a road fact; the Update answers once it is recorded (or raises)."""
        return await self.parties.fact(fact, failure, org)

    async def withdraw(self, change: ConsentChange = ConsentChange.WITHDRAWN,
                       org: str = SENDING) -> msg.WithdrawalRecorded:
        return await self.parties.update(
            ReturnCaseWorkflow.record_withdrawal,
            msg.ConsentWithdrawal(organisation_id=org, actor_id="u-1001", change=change,
                                  form_record_id=rec()))

    async def assess_age(self, result: AgeCategory,
                         by: AgeAssessor = AgeAssessor.SOCIAL_WELFARE_CENTRE) -> msg.AgeAssessed:
        return await self.parties.update(
            ReturnCaseWorkflow.record_age_assessment,
            msg.AgeAssessment(organisation_id=SENDING, actor_id="u-1001", assessed_by=by,
                              result=result, evidence_record_id=rec()))

    async def search_attributes(self) -> dict[str, object]:
        return await search_attributes(self.client, self.handle.id)

    async def stage(self, stage: str) -> msg.CaseView:
        return await self.parties.stage(stage)

    async def event_types(self) -> list[str]:
        return [e.event_type for e in await self.store.read_stream(self.input.case_id)]

    async def events(self):
        return await self.store.read_stream(self.input.case_id)

    async def now(self) -> datetime:
        return datetime.now(UTC)

    # --- the common stretches of a journey ---------------------------------------------

    async def through_consent(self, now: datetime) -> None:
        """Screening, her decision to return and her consent; a child's guardian is
        appointed first, sits in the interview and decides and consents with her."""
        if not treated_as_minor(self.input.age_category):
            await self.complete(TaskKind.SCREENING_INTERVIEW, screening())
            await self.complete(TaskKind.OPTIONS_DECISION, decision())
            await self.complete(TaskKind.INFORMED_CONSENT, consent(now))
            return
        await self.appoint_guardian()
        await self.complete(TaskKind.SCREENING_INTERVIEW,
                            screening(child_accompanied_by=ChildPresence.GUARDIAN))
        await self.complete(TaskKind.OPTIONS_DECISION,
                            decision(decided_by=DecidedBy.CHILD_WITH_GUARDIAN))
        await self.complete(TaskKind.INFORMED_CONSENT,
                            consent(now, consented_by=DecidedBy.CHILD_WITH_GUARDIAN))

    async def appoint_guardian(self, **kw: Any) -> msg.TaskCompleted:
        done = await self.complete(TaskKind.GUARDIAN_APPOINTMENT, msg.GuardianAppointmentResult(
            **{"guardian_record_id": rec(),
               "authority": GuardianAuthority.SOCIAL_WELFARE_CENTRE, **kw}))
        self.guardian_appointed = True
        return done

    async def minor_safeguards(self, determination: Determination) -> None:
        """The guardian (unless this driver appointed one already), then the best-interest
        determination."""
        if not self.guardian_appointed:
            await self.appoint_guardian()
        await self.complete(TaskKind.BEST_INTEREST_DETERMINATION, msg.BestInterestResult(
            determination=determination, family_assessment_record_id=rec()))

    async def documents_and_clearances(self, risk: RiskLevel = RiskLevel.LOW,
                                       notified_at: datetime | None = None) -> None:
        await self.complete(TaskKind.TRAVEL_DOCUMENTS, documents_issued())
        await self.complete(TaskKind.MEDICAL_CLEARANCE, medical_fit())
        if notified_at is not None:
            await self.complete(TaskKind.PROSECUTOR_NOTICE, msg.ProsecutorNoticeResult(
                notified_at=notified_at, testimony=TestimonyArrangement.REMOTE_TESTIMONY_ARRANGED))
        await self.complete(TaskKind.SECURITY_ASSESSMENT, security(risk))

    async def depart(self, sleep) -> None:
        """She boards when the flight leaves: skip to the departure and report it."""
        await self.stage("awaiting_departure")
        await self.settled()  # time does not skip while an activity runs
        await sleep(self.input.config.departure_lead + timedelta(minutes=1))
        await self.fact("departed")

    async def depart_and_arrive(self, sleep) -> None:
        await self.depart(sleep)
        await self.stage("in_transit")
        await self.fact("arrived_at_border")
        await self.stage("border")

    async def reception(self, assistance=ARRIVAL_ASSISTANCE) -> None:
        code = await self.parties.handoff_code()
        await self.complete(TaskKind.RECEPTION_HANDOFF, reception_handoff(code, assistance))

    async def guardian_handover(self) -> None:
        await self.complete(TaskKind.GUARDIAN_HANDOVER, msg.GuardianHandoverResult(
            handed_to=HandoverTo.FAMILY, guardian_record_id=rec()))

    async def terminate(self) -> None:
        """End a scenario that stops half-way. Waits for running activities first: the
        time-skipping test server keeps time locked for an activity of a terminated
        workflow, which would stall every later ``env.sleep``."""
        from temporalio.api.enums.v1 import EventType as E

        ended = {E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, E.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                 E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, E.EVENT_TYPE_ACTIVITY_TASK_CANCELED}
        deadline = asyncio.get_running_loop().time() + WAIT_BOUND
        while asyncio.get_running_loop().time() < deadline:
            history = await self.handle.fetch_history()
            scheduled = sum(e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                            for e in history.events)
            if scheduled == sum(e.event_type in ended for e in history.events):
                break
            await asyncio.sleep(0.05)
        await self.handle.terminate("scenario over")

    async def settled(self) -> None:
        """Until no activity of the case is running, so that time skipped next cannot
        overtake a step still in flight (a retry's backoff would be skipped with it)."""
        deadline = asyncio.get_running_loop().time() + WAIT_BOUND
        while _busy(await describe(self.client, self.handle.id)):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"activities still running: {await self.status()}")
            await asyncio.sleep(0.01)

    async def result(self) -> msg.ReturnCaseResult:
        return await self.handle.result()


async def describe(client: Client, workflow_id: str):
    """The raw description (the typed one fails on the time-skipping server, which answers an
    unset datetime search attribute in a form the typed decoder rejects)."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

    return await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=client.namespace,
                                         execution=WorkflowExecution(workflow_id=workflow_id)))


async def search_attributes(client: Client, workflow_id: str) -> dict[str, object]:
    """A workflow's search attributes as operators filter on them, decoded one by one."""
    from temporalio.converter import PayloadConverter

    raw = await describe(client, workflow_id)
    fields = raw.workflow_execution_info.search_attributes.indexed_fields
    return {name: PayloadConverter.default.from_payload(payload)
            for name, payload in fields.items() if payload.data not in (b"", b"null")}


RECORD_ENV = "HOMEWARD_RECORD_HISTORIES"
HISTORIES = __import__("pathlib").Path(__file__).parent / "histories"


async def record_history(case: CaseDriver, name: str) -> None:
    """With HOMEWARD_RECORD_HISTORIES=1, keep this run's history for the replay test."""
    import os

    if os.environ.get(RECORD_ENV) != "1":
        return
    history = await case.handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())


def _busy(description) -> bool:
    """A workflow task or an activity of the case is scheduled or running."""
    return bool(description.pending_activities) or description.HasField("pending_workflow_task")


async def advance(env, case: CaseDriver, predicate, what: str,
                  step: timedelta = timedelta(hours=1), max_steps: int = 24 * 12):
    """Skip time a step at a time until the case satisfies ``predicate``."""
    for _ in range(max_steps):
        await case.settled()
        view = await case.status()
        if predicate(view):
            return view
        await env.sleep(step)
    raise AssertionError(f"never reached {what}; status: {await case.status()}")
