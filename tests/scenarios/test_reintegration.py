"""Reintegration and follow-up on the time-skipping server, against a real event store.

Each scenario drives the receiving mission through the child workflow's Updates, skips
months with ``env.sleep`` and asserts the exact sequence of event types in the store.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from case_driver import RECEIVING, SENDING, case_input, record_history
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus, WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import (
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.boundary import reintegration_workflow_id_for
from domain.catalogue import payload_of
from domain.journey import decider as c
from domain.reintegration import messages as rm
from domain.reintegration.config import ReintegrationConfig
from domain.reintegration.events import ServiceLine, SustainabilityIndicators
from domain.reintegration.vocabulary import (
    ClosureReason,
    ContactChannel,
    Level,
    NotReachedReason,
    NotRestoredReason,
    OwedOnReopening,
    PaymentFailure,
    PaymentReviewResolution,
    ReintegrationTaskKind,
    ReopenReason,
    RiskIndicator,
    ServiceKind,
    ServiceStatus,
)
from store.event_store import EventStore
from store.events import NewEvent
from workflows import search_attributes as sa
from workflows.reintegration import (
    PAYMENT_FAILING,
    ROLLING_OVER,
    ReintegrationWorkflow,
)

K = ReintegrationTaskKind
DAY = timedelta(days=1)
OPENED = "reintegration.task_opened"
STARTED = [
    "reintegration.started", OPENED,  # the needs assessment
    OPENED, OPENED,  # the pre-departure and reception instalments
]
ASSESSED_AND_PLANNED = [
    "reintegration.needs_assessed", OPENED, "reintegration.plan_agreed",
]
PAID = "reintegration.grant_paid"
REACHED = "reintegration.check_in_reached"
NOT_REACHED = "reintegration.check_in_not_reached"


def rec() -> str:
    return f"rec_{uuid.uuid4().hex[:16]}"



def delivery_task(event) -> bool:
    """An event of a provider's service delivery task (opened, overdue, cancelled)."""
    return (event.event_type in ("reintegration.task_opened", "reintegration.task_overdue",
                                 "reintegration.task_cancelled")
            and event.payload.get("kind") == K.SERVICE_DELIVERY.value)


def lines(now: datetime) -> tuple[ServiceLine, ...]:
    return (
        ServiceLine(line_id=uuid.uuid4(), service=ServiceKind.VOCATIONAL_TRAINING,
                    provider_org="ngo-skills-md", due_at=now + 60 * DAY),
        ServiceLine(line_id=uuid.uuid4(), service=ServiceKind.PSYCHOLOGICAL_SUPPORT,
                    provider_org="ngo-counsel-md", due_at=now + 30 * DAY),
        ServiceLine(line_id=uuid.uuid4(), service=ServiceKind.MICRO_CREDIT,
                    provider_org="mfi-md", due_at=now + 90 * DAY,
                    status=ServiceStatus.DECLINED),  # her choice, recorded
    )


def reached(**kw: Any) -> rm.CheckInResult:
    return rm.CheckInResult(reached=True, channel=ContactChannel.HOME_VISIT,
                            wellbeing_record_id=rec(), **kw)


def not_reached() -> rm.CheckInResult:
    return rm.CheckInResult(reached=False, not_reached_reason=NotReachedReason.NO_ANSWER)


def paid() -> rm.GrantPaymentResult:
    return rm.GrantPaymentResult(paid=True, receipt_record_id=rec())


def failed() -> rm.GrantPaymentResult:
    return rm.GrantPaymentResult(paid=False, failure=PaymentFailure.TRANSFER_REJECTED)


INDICATORS = SustainabilityIndicators(
    income=Level.PARTIAL, housing=Level.FULL, basic_needs_met=True,
    family_support=Level.FULL, access_to_services=True, stigma_experienced=True,
    feels_safe=True, wellbeing_rating=4, has_trusted_person=True)


_WFT_ENDED = frozenset({EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
                        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                        EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT})
_ACTIVITY_ENDED = frozenset({EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                             EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                             EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
                             EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED})
_CAUSE = WorkflowTaskFailedCause
_BUG = frozenset({_CAUSE.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
                  _CAUSE.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR})
FAILING_ATTEMPTS = 5  # an append that failed this often is a bug, not a passing glitch
# The time-skipping server has no long poll for new history events, so the driver reads the
# history again after a short pause (the pause decides nothing: it only paces re-reading).
POLL = 0.02
# A safety net, not a budget: a step in flight that makes no progress for this long (real
# seconds) fails the test instead of hanging it. Generous because the machine is shared and
# slow; a step that ends is seen as soon as it ends, so a working test never waits this long.
STUCK = 300.0
# The moment a timer was set for is read back from history timestamps (nanoseconds, then
# microseconds) while the workflow computed it from its own clock: the two can differ by a
# microsecond of rounding, nothing more. Far below any rule's resolution (hours, days).
ROUNDING = timedelta(milliseconds=1)


def _at(timestamp: Any) -> datetime:
    return timestamp.ToDatetime(tzinfo=UTC)


def _run_of(events: Sequence[Any]) -> str | None:
    """The run a history belongs to (the id its start event was written with)."""
    if not events:
        return None
    return events[0].workflow_execution_started_event_attributes.original_execution_run_id


class Progress:
    """What one run's history says: work in flight (a workflow task or an activity), the
    timers pending (each with the moment the workflow set it for: its workflow task's
    ``workflow.now()`` plus the timeout), a workflow task failed by a bug."""

    def __init__(self, events: Sequence[Any]):
        self.length = len(events)
        self.run = _run_of(events)
        self.bug: str | None = None
        tasks = activities = 0
        now: datetime | None = None
        timers: dict[str, tuple[datetime, datetime]] = {}
        for e in events:
            t = e.event_type
            if t == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                tasks += 1
            elif t in _WFT_ENDED:
                tasks -= 1
            if t == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                now = _at(e.event_time)
            elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failed = e.workflow_task_failed_event_attributes
                if failed.cause in _BUG:
                    self.bug = failed.failure.message
            elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                self.bug = None
            elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                activities += 1
            elif t in _ACTIVITY_ENDED:
                activities -= 1
            elif t == EventType.EVENT_TYPE_TIMER_STARTED:
                a = e.timer_started_event_attributes
                timeout = a.start_to_fire_timeout.ToTimedelta()
                assert now is not None
                timers[a.timer_id] = (now + timeout, _at(e.event_time) + timeout)
            elif t == EventType.EVENT_TYPE_TIMER_FIRED:
                timers.pop(e.timer_fired_event_attributes.timer_id, None)
            elif t == EventType.EVENT_TYPE_TIMER_CANCELED:
                timers.pop(e.timer_canceled_event_attributes.timer_id, None)
        self.activities = activities
        continued = bool(events) and events[-1].event_type == \
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        self.in_flight = tasks > 0 or activities > 0 or continued
        self.timers = list(timers.values())  # (set for, fires at)


class FollowUp:
    """Plays the receiving mission against one ``reintegration-<case id>`` workflow.

    It never waits on the wall clock: it follows the workflow's history (a long poll for
    the next event) while the workflow has work in flight, and when nothing is in flight
    the workflow waits for a person or a timer, so a condition not met by then fails at
    once. Skipping time (``sleep_until``) also waits for the timers the workflow set for
    moments up to the target."""

    def __init__(self, env: WorkflowEnvironment, handle: WorkflowHandle, store: EventStore,
                 case_id: str, arrived_at: datetime):
        self.env = env
        self.handle = handle
        self.store = store
        self.case_id = case_id
        self.arrived_at = arrived_at

    @classmethod
    async def start(cls, env: WorkflowEnvironment, task_queue: str, store: EventStore,
                    config: ReintegrationConfig | None = None, **overrides: Any) -> FollowUp:
        journey = case_input()
        # The journey's first event names the case's parties (append_events checks them).
        [referral] = c.decide(c.JourneyState(case_id=journey.case_id),
                              c.RegisterReferral(journey), c.Context(now=datetime.now(UTC)))
        await store.append(journey.case_id, 0, [NewEvent(
            event_id=uuid.uuid4(), event_type=referral.type,
            schema_version=type(referral).schema_version,
            payload=payload_of(referral), author_org=SENDING, actor="u-1",
            occurred_at=await env.get_current_time())])
        arrived_at = await env.get_current_time()
        input = rm.ReintegrationInput(**{
            "case_id": journey.case_id, "receiving_mission": RECEIVING,
            "destination_country": "MD", "minor": False, "arrived_at": arrived_at,
            "config": config or ReintegrationConfig(), **overrides})
        handle = await env.client.start_workflow(
            ReintegrationWorkflow.run, input, id=reintegration_workflow_id_for(journey.case_id),
            task_queue=task_queue)
        return cls(env, handle, store, journey.case_id, arrived_at)

    # --- following the history ---------------------------------------------------------

    async def progress(self) -> Progress:
        """The latest run's history (after a continue-as-new: the new run's)."""
        return Progress((await self.handle.fetch_history()).events)

    async def _grows(self, seen: Progress) -> None:
        """Until the latest run's history is longer than ``seen``, or another run's."""
        loop = asyncio.get_running_loop()
        stuck_at = loop.time() + STUCK
        while True:
            await asyncio.sleep(POLL)
            events = (await self.handle.fetch_history()).events
            if _run_of(events) != seen.run or len(events) > seen.length:
                return
            if seen.activities:
                for pending in (await self._describe()).pending_activities:
                    if pending.attempt >= FAILING_ATTEMPTS:
                        raise AssertionError(f"{pending.activity_type.name} keeps failing: "
                                             f"{pending.last_failure.message}")
            if loop.time() > stuck_at:
                raise AssertionError(f"no progress in {STUCK:.0f} s: {await self.status()}")

    async def moves(self, *, timers: bool = False, since: Progress | None = None) -> bool:
        """Wait for the workflow's next step if it has one in flight (True), or say that it
        waits for a person or a timer (False). With ``timers`` on a server whose time
        passes by itself (the dev server), a pending timer counts as a next step. With
        ``since`` (the history as it was before the caller looked at the workflow), a step
        taken since then counts at once: the caller's view is already out of date."""
        p = await self.progress()
        if since is not None and (p.run != since.run or p.length > since.length):
            return True
        if p.bug:
            raise AssertionError(f"a workflow task failed: {p.bug}")
        if not p.in_flight and not (timers and p.timers
                                    and not self.env.supports_time_skipping):
            return False
        await self._grows(p)
        return True

    async def settled(self) -> rm.ReintegrationView:
        """The status once nothing is in flight: what follows waits for a person or time."""
        while await self.moves():
            pass
        return await self.status()

    async def status(self) -> rm.ReintegrationView:
        while True:
            try:
                return await self.handle.query(ReintegrationWorkflow.status)
            except RPCError:  # between two runs of a continued-as-new workflow
                if not await self.moves():
                    raise

    async def until(self, predicate, what: str) -> rm.ReintegrationView:
        if self.env.supports_time_skipping:
            # Time stands still: once nothing is in flight, nothing more happens by itself.
            # (Queried only then: a query racing a workflow task can add an empty one to
            # the history, and a scenario's history should be the same on every run.)
            view = await self.settled()
            if predicate(view):
                return view
            raise AssertionError(f"no {what}: the workflow waits for a person or time; "
                                 f"status: {view}")
        while True:  # a server whose time passes by itself: its timers fire meanwhile
            # The history is read before the status: a step the workflow takes between the
            # two (the task this waits for, appended just after the status was answered)
            # is seen as a step, not mistaken for a wait on a timer days away.
            seen = await self.progress()
            view = await self.status()
            if predicate(view):
                return view
            if not await self.moves(timers=True, since=seen):
                view = await self.status()
                if predicate(view):
                    return view
                raise AssertionError(f"no {what}: the workflow waits for a person or a "
                                     f"timer; status: {view}")

    async def task(self, kind: K, **refs: Any) -> rm.OpenReintegrationTask:
        def match(t: rm.OpenReintegrationTask) -> bool:
            return t.kind is kind and all(getattr(t, k) == v for k, v in refs.items())

        view = await self.until(lambda v: any(match(t) for t in v.state.open_tasks),
                                f"open {kind.value} task {refs or ''}")
        return next(t for t in view.state.open_tasks if match(t))

    async def update(self, update, payload) -> rm.Recorded:
        """Execute an Update; one that reaches a run while it continues as new is refused
        before anything is written (or lands on a closed run) and is sent again once the
        workflow has moved on (a few steps at most: the bound only stops a loop)."""
        last: Exception | None = None
        for _ in range(50):
            # Sent when the workflow has nothing in flight: a scenario's history is the
            # same on every run (where it continues as new, what its recorded history holds).
            while await self.moves():
                pass
            try:
                return await self.handle.execute_update(update, payload)
            except WorkflowUpdateFailedError as error:
                if ROLLING_OVER not in str(error.cause):
                    raise
                last = error
            except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
                last = error  # the run just continued as new
        raise AssertionError(f"the Update was never accepted: {last!r}")

    async def complete(self, kind: K, result: Any, *, org: str = RECEIVING,
                       **refs: Any) -> rm.Recorded:
        task = await self.task(kind, **refs)
        return await self.update(
            ReintegrationWorkflow.complete_task, rm.ReintegrationTaskCompletion(
                task_id=task.task_id, organisation_id=org, actor_id="u-3001", result=result))

    async def assess_and_plan(self) -> tuple[ServiceLine, ...]:
        await self.complete(K.NEEDS_ASSESSMENT, rm.NeedsAssessmentResult(
            assessment_record_id=rec(), needs=(ServiceKind.VOCATIONAL_TRAINING,
                                               ServiceKind.PSYCHOLOGICAL_SUPPORT)))
        plan = lines(self.arrived_at)
        await self.complete(K.REINTEGRATION_PLAN, rm.PlanResult(lines=plan,
                                                                plan_record_id=rec()))
        return plan

    # --- skipping time -----------------------------------------------------------------

    async def sleep_until(self, moment: datetime) -> None:
        """Skip to ``moment``; every timer the workflow set for a moment up to it fires
        and the workflow finishes what was due. (The server starts a timer when the
        workflow task that set it completes, a few milliseconds after that task's
        ``workflow.now()``: the timer for ``moment`` fires just after it.)"""
        now = await self.env.get_current_time()
        if moment > now:
            await self.env.sleep(moment - now)
        while True:
            p = await self.progress()
            due = [fires for set_for, fires in p.timers if set_for <= moment + ROUNDING]
            if due:
                now = await self.env.get_current_time()
                if max(due) > now:
                    await self.env.sleep(max(due) - now)
                await self._grows(p)
            elif not await self.moves():
                return

    async def sleep_to(self, after_arrival: timedelta) -> None:
        """Skip to ``arrival + after_arrival`` (durable timers fire on the way)."""
        await self.sleep_until(self.arrived_at + after_arrival)

    async def check_in(self, number: int, result: rm.CheckInResult,
                       after_arrival: timedelta | None = None) -> None:
        """Hold check-in ``number`` on its date (``after_arrival``, or its date in the
        workflow's schedule)."""
        if after_arrival is None:
            due = (await self.status()).state.check_in(number)
            assert due is not None, f"no check-in {number} in the schedule"
            await self.sleep_until(due.due_at)
        else:
            await self.sleep_to(after_arrival)
        await self.complete(K.CHECK_IN, result, check_in=number)

    # --- what was recorded ---------------------------------------------------------------

    async def events(self):
        return (await self.store.read_stream(self.case_id))[1:]  # without the seeded referral

    async def types(self) -> list[str]:
        """The types of the follow-up's events, without the providers' delivery tasks
        (decision 0064): they run beside every plan that names a provider, and
        test_each_provider_of_the_plan_gets_one_delivery_task follows them."""
        return [e.event_type for e in await self.events() if not delivery_task(e)]

    async def last(self, event_type: str):
        return [e for e in await self.events() if e.event_type == event_type][-1]

    async def attributes(self) -> dict[str, Any]:
        """The search attributes as the workflow upserted them (read from its history: the
        time-skipping server's describe cannot decode datetime attributes)."""
        values: dict[str, Any] = {}
        keys = {k.name: k for k in sa.ALL}
        history = await self.handle.fetch_history()
        for event in history.events:
            if event.event_type != EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
                continue
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            for name, payload in fields.indexed_fields.items():
                value = json.loads(payload.data) if payload.data else None
                if value in (None, []):
                    values.pop(name, None)
                elif name not in keys:  # Temporal's own (TemporalChangeVersion: patches)
                    values[name] = value
                elif keys[name].indexed_value_type.name == "DATETIME":
                    values[name] = datetime.fromisoformat(value)
                else:
                    values[name] = value
        return values

    async def accepted_updates(self) -> int:
        history = await self.handle.fetch_history()
        return sum(1 for e in history.events
                   if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)

    async def result(self) -> rm.ReintegrationResult:
        return await self.handle.result()

    async def _describe(self) -> Any:
        """The server's raw description (the client's ``describe`` cannot decode the
        time-skipping server's datetime search attributes)."""
        return await self.env.client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=self.env.client.namespace,
                execution=WorkflowExecution(workflow_id=self.handle.id)))

    async def describe_status(self) -> str:
        status = (await self._describe()).workflow_execution_info.status
        return WorkflowExecutionStatus.Name(status).removeprefix("WORKFLOW_EXECUTION_STATUS_")

    async def terminate(self) -> None:
        """End a scenario half-way, once no activity is running (the time-skipping server
        keeps time locked for a running activity of a terminated workflow)."""
        try:
            while (await self.progress()).activities and await self.moves():
                pass
        finally:
            await self.handle.terminate("scenario over")


_STARTED: list[FollowUp] = []


@pytest.fixture(autouse=True)
async def _end_what_is_left(worker):
    """A scenario that fails half-way leaves no running workflow behind (it would keep the
    time-skipping server's clock locked for the next tests). Runs before the worker stops."""
    yield
    while _STARTED:
        f = _STARTED.pop()
        try:
            await f.terminate()
        except RPCError:  # already completed or terminated
            pass


async def start(workflow_env, task_queue, store, **kw) -> FollowUp:
    f = await FollowUp.start(workflow_env, task_queue, store, **kw)
    _STARTED.append(f)
    return f


MONTH = 30 * DAY


# --- a full year ----------------------------------------------------------------------


async def test_each_provider_of_the_plan_gets_one_delivery_task(
        workflow_env, worker, task_queue, store):
    f = await start(workflow_env, task_queue, store)
    plan = await f.assess_and_plan()
    await f.sleep_to(4 * MONTH)  # past every line's due date
    opened = {(e.payload["line_id"], e.payload["assignee_org"]) for e in await f.events()
              if delivery_task(e) and e.event_type == "reintegration.task_opened"}
    # one task per provider's line; none for the line she declined
    assert opened == {(str(line.line_id), line.provider_org) for line in plan
                      if line.status is not ServiceStatus.DECLINED}
    assert len(opened) == 2 and all(line.provider_org != RECEIVING for line in plan)


async def test_a_full_year_of_follow_up(workflow_env, worker, task_queue, store):
    f = await start(workflow_env, task_queue, store)
    view = await f.until(lambda v: len(v.state.open_tasks) == 3, "the first tasks")
    assert {t.kind for t in view.state.open_tasks} == {K.NEEDS_ASSESSMENT, K.GRANT_PAYMENT}
    needs = next(t for t in view.state.open_tasks if t.kind is K.NEEDS_ASSESSMENT)
    assert needs.due_at == f.arrived_at + 7 * DAY and needs.assignee_org == RECEIVING
    assert view.stage == "needs_assessment"

    await f.assess_and_plan()
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=1)
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=2)
    view = await f.status()
    assert view.stage == "follow_up"
    assert view.next_check_in_due == f.arrived_at + MONTH

    await f.check_in(1, reached(), MONTH)
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=3)
    await f.check_in(2, reached(), 3 * MONTH)
    await f.check_in(3, reached(), 6 * MONTH)
    await f.check_in(4, reached(), 365 * DAY)
    await f.until(lambda v: v.stage == "final_assessment", "the final assessment")
    await f.complete(K.SUSTAINABILITY_ASSESSMENT, rm.SustainabilityResult(indicators=INDICATORS))

    result = await f.result()  # the reopening window passes on skipped time
    assert result.closed_reason is ClosureReason.SUPPORT_PERIOD_ENDED
    assert await f.types() == [
        *STARTED, *ASSESSED_AND_PLANNED, PAID, PAID,
        OPENED, REACHED, OPENED, PAID,  # check-in 1 and the instalment due at it
        OPENED, REACHED, OPENED, REACHED, OPENED, REACHED,
        OPENED, "reintegration.sustainability_assessed", "reintegration.closed",
    ]
    events = await f.events()
    assert result.events_recorded == len(events)
    payments = [e.payload for e in events if e.event_type == PAID]
    assert [(p["instalment"], p["amount_minor"], p["currency"]) for p in payments] == [
        (1, 5000, "USD"), (2, 5000, "USD"), (3, 5000, "USD")]
    started = events[0].payload
    assert [datetime.fromisoformat(c["due_at"]) - f.arrived_at for c in started["check_ins"]] \
        == [MONTH, 3 * MONTH, 6 * MONTH, 365 * DAY]
    assessed = next(e for e in events
                    if e.event_type == "reintegration.sustainability_assessed").payload
    assert (assessed["economic"], assessed["social"], assessed["psychosocial"]) == (
        0.83, 0.67, 0.92)
    authors = {e.event_type: e.author_org for e in events}
    assert authors[OPENED] == "homeward"
    assert authors[REACHED] == authors["reintegration.closed"] == RECEIVING
    attributes = await f.attributes()
    assert attributes[sa.REINTEGRATION_STAGE.name] == "closed"
    assert attributes[sa.CLOSED_REASON.name] == "support_period_ended"
    assert sa.NEXT_CHECK_IN_DUE.name not in attributes
    await record_history_of(f, "reintegration_full_year")


async def record_history_of(f: FollowUp | WorkflowHandle, name: str) -> None:
    class _Case:  # record_history wants something with a handle
        handle = f.handle if isinstance(f, FollowUp) else f

    await record_history(_Case(), name)  # type: ignore[arg-type]


# --- contact lost, and found again ----------------------------------------------------


async def test_two_missed_check_ins_lose_contact_and_tracing_resumes_the_schedule(
    workflow_env, worker, task_queue, store
):
    f = await start(workflow_env, task_queue, store)
    await f.assess_and_plan()
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=1)
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=2)
    await f.check_in(1, not_reached(), MONTH)
    view = await f.status()
    assert (view.state.consecutive_misses, view.state.contact_lost) == (1, False)
    await f.check_in(2, not_reached(), 3 * MONTH)

    tracing = await f.task(K.TRACING)
    view = await f.status()
    assert view.stage == "contact_lost" and view.state.contact_lost
    assert (await f.attributes())[sa.CONTACT_LOST.name] is True
    await f.sleep_to(5 * MONTH)  # no check-in opens while she cannot be reached
    assert not any(t.kind is K.CHECK_IN for t in (await f.status()).state.open_tasks)

    await f.complete(K.TRACING, rm.TracingResult(
        located=True, channel=ContactChannel.VIA_PARTNER, wellbeing_record_id=rec()))
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=3)  # due at check-in 1: paid now
    view = await f.status()
    assert view.stage == "follow_up" and not view.state.contact_lost
    assert view.next_check_in_due == f.arrived_at + 6 * MONTH
    assert (await f.attributes())[sa.CONTACT_LOST.name] is False
    await f.check_in(3, reached(), 6 * MONTH)  # the schedule resumes

    before = [*STARTED, *ASSESSED_AND_PLANNED, PAID, PAID]
    assert await f.types() == [
        *before,
        OPENED, NOT_REACHED, OPENED, NOT_REACHED,
        "reintegration.contact_lost", OPENED,  # the tracing task
        "reintegration.task_overdue",  # tracing took longer than its 14 days
        "reintegration.tracing_completed", "reintegration.contact_restored",
        OPENED, PAID,
        OPENED, REACHED,
    ]
    lost = next(e for e in await f.events() if e.event_type == "reintegration.contact_lost")
    assert lost.payload == {"consecutive_misses": 2}
    opened = [e.payload for e in await f.events() if e.event_type == OPENED]
    assert opened[-3]["task_id"] == str(tracing.task_id)
    assert opened[-3]["kind"] == "tracing"
    await record_history_of(f, "reintegration_contact_lost_and_traced")
    await f.terminate()


async def test_tracing_that_never_finds_her_closes_as_no_longer_reachable(
    workflow_env, worker, task_queue, store
):
    config = ReintegrationConfig(tracing_attempts=2)
    f = await start(workflow_env, task_queue, store, config=config,
                    pre_departure_instalment_paid=True)
    await f.assess_and_plan()
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=1)
    await f.check_in(1, not_reached(), MONTH)
    await f.check_in(2, not_reached(), 3 * MONTH)
    not_located = rm.TracingResult(located=False)
    await f.complete(K.TRACING, not_located)
    view = await f.until(lambda v: v.state.tracing_retry_at is not None, "tracing retry")
    traced = await f.last("reintegration.tracing_completed")
    assert view.state.tracing_retry_at == traced.occurred_at + 30 * DAY  # tries again then
    await f.sleep_until(view.state.tracing_retry_at - timedelta(hours=1))
    assert not any(t.kind is K.TRACING for t in (await f.settled()).state.open_tasks)
    await f.sleep_until(view.state.tracing_retry_at)
    await f.complete(K.TRACING, not_located)
    result = await f.result()
    assert result.closed_reason is ClosureReason.NO_LONGER_REACHABLE
    assert await f.types() == [
        "reintegration.started", OPENED, OPENED,  # one instalment at start
        *ASSESSED_AND_PLANNED, PAID,
        OPENED, NOT_REACHED, OPENED, NOT_REACHED,
        "reintegration.contact_lost", OPENED, "reintegration.tracing_completed",
        OPENED, "reintegration.tracing_completed",  # 30 days later, the last attempt
        "reintegration.grant_cancelled",  # instalment 2 never became due
        "reintegration.closed",
    ]
    assert (await f.last("reintegration.closed")).payload["reason"] == "no_longer_reachable"
    await record_history_of(f, "reintegration_tracing_exhausted")


# --- opting out -----------------------------------------------------------------------


async def test_opting_out_at_month_two_stops_every_task_and_payment(
    workflow_env, worker, task_queue, store
):
    f = await start(workflow_env, task_queue, store)
    await f.assess_and_plan()
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=1)
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=2)
    await f.check_in(1, reached(), MONTH)
    await f.task(K.GRANT_PAYMENT, instalment=3)  # open, not paid yet
    await f.sleep_to(2 * MONTH)

    done = await f.update(ReintegrationWorkflow.record_opt_out,
                          rm.OptOut(organisation_id=RECEIVING, actor_id="u-3001",
                                    form_record_id=rec()))
    # Every open task is cancelled: the third instalment's and the providers' delivery
    # tasks (decision 0064).
    assert done.event_types[0] == "reintegration.opted_out"
    assert set(done.event_types[1:-2]) == {"reintegration.task_cancelled"}
    assert done.event_types[-2:] == ("reintegration.grant_cancelled", "reintegration.closed")
    view = await f.status()
    assert view.stage == "closed" and view.state.open_tasks == ()
    # The rest of the year passes: nothing opens, nothing is paid.
    await f.sleep_to(13 * MONTH)
    after = await f.types()
    assert after == [
        *STARTED, *ASSESSED_AND_PLANNED, PAID, PAID, OPENED, REACHED, OPENED,
        "reintegration.task_overdue",  # the third instalment, a week late
        "reintegration.opted_out", "reintegration.task_cancelled",
        "reintegration.grant_cancelled", "reintegration.closed",
    ]
    closed = (await f.events())[-1].payload
    assert closed == {"reason": "opted_out", "other_code": None}
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await f.handle.execute_update(ReintegrationWorkflow.change_plan, rm.PlanChange(
            organisation_id=RECEIVING, actor_id="u-3001",
            remaining_check_ins_after_arrival=(14 * MONTH,)))
    assert "the case is closed (opted out)" in str(refused.value.cause)
    result = await f.result()
    assert result.closed_reason is ClosureReason.OPTED_OUT
    await record_history_of(f, "reintegration_opted_out")


# --- payments that fail -----------------------------------------------------------------


async def test_a_payment_fails_twice_then_succeeds_on_the_retry_schedule(
    workflow_env, worker, task_queue, store
):
    f = await start(workflow_env, task_queue, store, pre_departure_instalment_paid=True)
    await f.complete(K.GRANT_PAYMENT, failed(), instalment=1)
    view = await f.until(lambda v: v.state.instalment(1).retry_at is not None, "retry")
    # Two days after the workflow scheduled the retry, on its own clock (the event's time).
    retry = await f.last("reintegration.payment_retry_scheduled")
    first_retry = retry.occurred_at + 2 * DAY
    assert view.state.instalment(1).retry_at == first_retry
    assert (retry.payload["next_attempt"], datetime.fromisoformat(retry.payload["not_before"])
            ) == (2, first_retry)
    assert view.payment_failing
    assert (await f.attributes())[sa.BLOCKED_ON.name] == PAYMENT_FAILING
    await f.sleep_until(first_retry - timedelta(hours=1))
    assert not any(t.kind is K.GRANT_PAYMENT for t in (await f.settled()).state.open_tasks)
    await f.sleep_until(first_retry)
    second = await f.task(K.GRANT_PAYMENT, instalment=1)
    assert second.attempt == 2
    assert (await f.last(OPENED)).occurred_at >= first_retry
    await f.complete(K.GRANT_PAYMENT, failed(), instalment=1)
    view = await f.until(lambda v: v.state.instalment(1).status.value == "retry_scheduled",
                         "second retry")
    retry = await f.last("reintegration.payment_retry_scheduled")
    second_retry = retry.occurred_at + 4 * DAY  # 2 days, then 4
    assert view.state.instalment(1).retry_at == second_retry
    assert retry.payload["next_attempt"] == 3
    await f.sleep_until(second_retry)
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=1, attempt=3)

    assert await f.types() == [
        "reintegration.started", OPENED, OPENED,
        "reintegration.grant_payment_failed", "reintegration.payment_retry_scheduled",
        OPENED, "reintegration.grant_payment_failed", "reintegration.payment_retry_scheduled",
        OPENED, PAID,
    ]
    assert not (await f.status()).payment_failing
    assert sa.BLOCKED_ON.name not in await f.attributes()
    await record_history_of(f, "reintegration_payment_retries")
    await f.terminate()


async def test_a_payment_failing_beyond_the_limit_escalates_for_review(
    workflow_env, worker, task_queue, store
):
    f = await start(workflow_env, task_queue, store, pre_departure_instalment_paid=True,
                    config=ReintegrationConfig(payment_attempts=2))
    await f.complete(K.GRANT_PAYMENT, failed(), instalment=1)
    view = await f.until(lambda v: v.state.instalment(1).retry_at is not None, "retry")
    await f.sleep_until(view.state.instalment(1).retry_at)
    await f.complete(K.GRANT_PAYMENT, failed(), instalment=1, attempt=2)
    review = await f.task(K.PAYMENT_REVIEW)
    assert review.instalment == 1
    events = await f.events()
    assert [e.event_type for e in events][-2:] == ["reintegration.escalated", OPENED]
    assert events[-2].payload["reason"] == "payment_failures_limit"
    assert (await f.attributes())[sa.BLOCKED_ON.name] == PAYMENT_FAILING

    await f.complete(K.PAYMENT_REVIEW, rm.PaymentReviewResult(
        resolution=PaymentReviewResolution.RETRY))
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=1, attempt=3)
    assert (await f.types())[-5:] == ["reintegration.escalated", OPENED,
                                      "reintegration.payment_reviewed", OPENED, PAID]
    assert sa.BLOCKED_ON.name not in await f.attributes()
    await f.terminate()


# --- risks --------------------------------------------------------------------------------


async def test_a_re_trafficking_indicator_escalates_at_once(workflow_env, worker, task_queue,
                                                           store):
    f = await start(workflow_env, task_queue, store, pre_departure_instalment_paid=True)
    await f.task(K.NEEDS_ASSESSMENT)
    await f.settled()
    done = await f.update(ReintegrationWorkflow.record_risk, rm.RiskReport(
        organisation_id=RECEIVING, actor_id="u-3001",
        indicator=RiskIndicator.RECRUITER_CONTACT, report_record_id=rec()))
    assert done.event_types == ("reintegration.risk_recorded", "reintegration.escalated")
    events = await f.events()
    assert events[-1].payload["reason"] == "re_trafficking_indicator"
    assert events[-1].author_org == "homeward" and events[-2].author_org == RECEIVING
    assert datetime.fromisoformat(events[-1].payload["since"]) == events[-1].occurred_at
    assert (await f.attributes())[sa.RISK_ESCALATED.name] == "recruiter_contact"

    await f.update(ReintegrationWorkflow.record_risk, rm.RiskReport(
        organisation_id=RECEIVING, actor_id="u-3001", indicator=RiskIndicator.THREATS_RECEIVED))
    assert (await f.events())[-1].payload["reason"] == "threat"
    assert (await f.status()).state.risks == (RiskIndicator.RECRUITER_CONTACT,
                                              RiskIndicator.THREATS_RECEIVED)
    assert await f.types() == [
        "reintegration.started", OPENED, OPENED,
        "reintegration.risk_recorded", "reintegration.escalated",
        "reintegration.risk_recorded", "reintegration.escalated",
    ]
    await record_history_of(f, "reintegration_risk_escalated")
    await f.terminate()


# --- changes mid-flight ---------------------------------------------------------------


async def test_a_plan_change_mid_way_reschedules_the_remaining_check_ins(
    workflow_env, worker, task_queue, store
):
    f = await start(workflow_env, task_queue, store, pre_departure_instalment_paid=True)
    plan = await f.assess_and_plan()
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=1)
    await f.check_in(1, reached(), MONTH)
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=2)

    training = plan[0].model_copy(update={"status": ServiceStatus.IN_PROGRESS})
    housing = ServiceLine(line_id=uuid.uuid4(), service=ServiceKind.HOUSING,
                          provider_org="ngo-housing-md", due_at=f.arrived_at + 4 * MONTH)
    done = await f.update(ReintegrationWorkflow.change_plan, rm.PlanChange(
        organisation_id=RECEIVING, actor_id="u-3001", lines=(training, housing),
        remaining_check_ins_after_arrival=(2 * MONTH, 4 * MONTH, 8 * MONTH)))
    assert done.event_types == ("reintegration.plan_changed",
                                "reintegration.check_in_schedule_changed")
    view = await f.status()
    assert [(ci.number, ci.due_at - f.arrived_at, ci.status.value)
            for ci in view.state.check_ins] == [
        (1, MONTH, "reached"), (2, 2 * MONTH, "scheduled"), (3, 4 * MONTH, "scheduled"),
        (4, 8 * MONTH, "scheduled")]
    assert [line.status for line in view.state.plan] == [
        ServiceStatus.IN_PROGRESS, ServiceStatus.PLANNED, ServiceStatus.DECLINED,
        ServiceStatus.PLANNED]
    assert (await f.attributes())[sa.NEXT_CHECK_IN_DUE.name] == f.arrived_at + 2 * MONTH

    await f.sleep_to(2 * MONTH - DAY)
    assert not any(t.kind is K.CHECK_IN for t in (await f.status()).state.open_tasks)
    await f.sleep_to(2 * MONTH)
    second = await f.task(K.CHECK_IN, check_in=2)  # at the new date, not at month 3
    assert second.due_at == f.arrived_at + 2 * MONTH + 14 * DAY

    # A delivered line does not change any more; a declined one is not penalised.
    delivered = training.model_copy(update={"status": ServiceStatus.DELIVERED})
    await f.update(ReintegrationWorkflow.change_plan, rm.PlanChange(
        organisation_id=RECEIVING, actor_id="u-3001", lines=(delivered,)))
    before = await f.types()
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await f.handle.execute_update(ReintegrationWorkflow.change_plan, rm.PlanChange(
            organisation_id=RECEIVING, actor_id="u-3001",
            lines=(delivered.model_copy(update={"status": ServiceStatus.DROPPED}),)))
    assert "does not change any more" in str(refused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await f.handle.execute_update(ReintegrationWorkflow.change_plan, rm.PlanChange(
            organisation_id=RECEIVING, actor_id="u-3001",
            remaining_check_ins_after_arrival=(MONTH + DAY,)))
    assert "in the future" in str(refused.value.cause)
    assert await f.types() == before == [
        "reintegration.started", OPENED, OPENED, *ASSESSED_AND_PLANNED, PAID,
        OPENED, REACHED, OPENED, PAID,  # check-in 1 and the instalment due at it
        "reintegration.plan_changed", "reintegration.check_in_schedule_changed",
        OPENED,  # check-in 2, at its new date
        "reintegration.plan_changed",  # the training delivered
    ]
    await record_history_of(f, "reintegration_plan_changed")
    await f.terminate()


# --- the wrong organisation -------------------------------------------------------------


async def test_updates_from_the_wrong_organisation_are_rejected_and_write_nothing(
    workflow_env, worker, task_queue, store
):
    f = await start(workflow_env, task_queue, store)
    needs = await f.task(K.NEEDS_ASSESSMENT)
    await f.settled()  # the instalments' payment tasks are recorded too
    before = await f.types()
    assert before == STARTED

    async def rejected(update, payload) -> str:
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await f.handle.execute_update(update, payload)
        return str(failure.value.cause)

    result = rm.NeedsAssessmentResult(assessment_record_id=rec())
    why = await rejected(ReintegrationWorkflow.complete_task, rm.ReintegrationTaskCompletion(
        task_id=needs.task_id, organisation_id=SENDING, actor_id="u-1", result=result))
    assert "cannot change it" in why and SENDING in why
    for update, payload in [
        (ReintegrationWorkflow.change_plan, rm.PlanChange(
            organisation_id="ngo-stranger", actor_id="u-9",
            remaining_check_ins_after_arrival=(2 * MONTH,))),
        (ReintegrationWorkflow.record_risk, rm.RiskReport(
            organisation_id=SENDING, actor_id="u-1", indicator=RiskIndicator.RECRUITER_CONTACT)),
        (ReintegrationWorkflow.record_opt_out, rm.OptOut(organisation_id=SENDING,
                                                         actor_id="u-1")),
        (ReintegrationWorkflow.close, rm.Closure(organisation_id=SENDING, actor_id="u-1",
                                                 reason=ClosureReason.MOVED_AWAY)),
    ]:
        assert "reintegration is run by the receiving mission" in await rejected(update,
                                                                                 payload)
    # Wrong task kind, unknown task, malformed payload (a name where a record id belongs).
    why = await rejected(ReintegrationWorkflow.complete_task, rm.ReintegrationTaskCompletion(
        task_id=needs.task_id, organisation_id=RECEIVING, actor_id="u-1", result=paid()))
    assert "needs_assessment task" in why
    why = await rejected(ReintegrationWorkflow.complete_task, rm.ReintegrationTaskCompletion(
        task_id=uuid.uuid4(), organisation_id=RECEIVING, actor_id="u-1", result=result))
    assert "no such task" in why
    with pytest.raises(WorkflowUpdateFailedError):
        await f.handle.execute_update("complete_task", {
            "task_id": str(needs.task_id), "organisation_id": RECEIVING, "actor_id": "u-1",
            "result": {"kind": "needs_assessment", "assessment_record_id": "Maria Popescu"}})
    with pytest.raises(WorkflowUpdateFailedError):
        await f.handle.execute_update("close", {"organisation_id": RECEIVING,
                                                "actor_id": "u-1", "reason": "other",
                                                "other_code": "she moved to Italy!"})
    why = await rejected(ReintegrationWorkflow.close, rm.Closure(
        organisation_id=RECEIVING, actor_id="u-1", reason=ClosureReason.OTHER))
    assert "needs its code" in why

    assert await f.types() == before
    assert await f.accepted_updates() == 0
    await f.terminate()


# --- closing and reopening --------------------------------------------------------------


REOPENED = "reintegration.reopened"


def reopening(**decision: Any) -> rm.Reopening:
    return rm.Reopening(organisation_id=RECEIVING, actor_id="u-3001",
                        reason=ReopenReason.SAFETY_CONCERN, **decision)


async def closed_at_month_one(f: FollowUp) -> tuple[ServiceLine, ...]:
    """Assessed, planned, the reception instalment paid; closed a day after check-in 1
    opened: its task and the instalment due at it (50 USD) are cancelled with the case."""
    plan = await f.assess_and_plan()
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=1)
    await f.sleep_to(MONTH + DAY)
    await f.task(K.CHECK_IN, check_in=1)
    await f.update(ReintegrationWorkflow.close, rm.Closure(
        organisation_id=RECEIVING, actor_id="u-3001", reason=ClosureReason.OTHER,
        other_code="transferred_to_state_services"))
    assert (await f.attributes())[sa.CLOSED_REASON.name] == "other"
    assert (await f.status()).state.instalment(2).status.value == "cancelled"
    return plan


CLOSED_AT_MONTH_ONE = [
    "reintegration.started", OPENED, OPENED,  # the needs assessment, instalment 1
    *ASSESSED_AND_PLANNED, PAID, OPENED,  # check-in 1
    "reintegration.task_cancelled", "reintegration.grant_cancelled", "reintegration.closed",
]


async def test_a_closed_case_reopened_for_a_safety_concern_owes_her_the_cancelled_instalment(
    workflow_env, worker, task_queue, store
):
    f = await start(workflow_env, task_queue, store, pre_departure_instalment_paid=True)
    plan = await closed_at_month_one(f)
    await f.sleep_to(2 * MONTH)
    done = await f.update(ReintegrationWorkflow.reopen, reopening())
    assert done.event_types == (REOPENED,)
    reopened = await f.last(REOPENED)
    # Nobody decided otherwise: the instalment is owed again, at the first new check-in.
    assert reopened.payload == {
        "reason": "safety_concern", "check_ins": reopened.payload["check_ins"],
        "owed": "restored", "restored_instalments": [{"instalment": 2, "check_in": 5}],
        "kept_cancelled_instalments": [], "not_restored_reason": None,
        "decision_record_id": None}
    assert [(c["number"], datetime.fromisoformat(c["due_at"]) - reopened.occurred_at)
            for c in reopened.payload["check_ins"]] == [(5, MONTH), (6, 3 * MONTH)]
    view = await f.status()
    assert view.stage == "follow_up"
    assert view.next_check_in_due == reopened.occurred_at + MONTH
    assert (view.state.instalment(2).status.value, view.state.instalment(2).check_in) == (
        "waiting", 5)
    assert view.state.plan == plan  # the closure did not touch her service lines
    assert sa.CLOSED_REASON.name not in await f.attributes()

    await f.check_in(5, reached())
    payment = await f.task(K.GRANT_PAYMENT, instalment=2)
    assert (payment.attempt, payment.due_at) == (1, (await f.last(OPENED)).occurred_at
                                                 + 7 * DAY)
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=2)
    assert await f.types() == [
        *CLOSED_AT_MONTH_ONE, REOPENED,
        OPENED, REACHED,  # check-in 5
        OPENED, PAID,  # the 50 USD still owed
    ]
    assert [e.payload["instalment"] for e in await f.events() if e.event_type == PAID] == [
        1, 2]
    await record_history_of(f, "reintegration_reopened")
    await f.terminate()


async def test_at_reopening_the_mission_may_decide_not_to_restore_the_grant_recorded(
    workflow_env, worker, task_queue, store
):
    f = await start(workflow_env, task_queue, store, pre_departure_instalment_paid=True)
    await closed_at_month_one(f)
    await f.sleep_to(2 * MONTH)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await f.update(ReintegrationWorkflow.reopen,
                       reopening(owed=OwedOnReopening.KEPT_CANCELLED))
    assert "needs a reason" in str(refused.value.cause)
    done = await f.update(ReintegrationWorkflow.reopen, reopening(
        owed=OwedOnReopening.KEPT_CANCELLED,
        not_restored_reason=NotRestoredReason.PERSON_DECLINED, decision_record_id=rec()))
    assert done.event_types == (REOPENED,)
    reopened = await f.last(REOPENED)
    assert (reopened.author_org, reopened.actor) == (RECEIVING, "u-3001")
    assert {k: reopened.payload[k] for k in (
        "owed", "restored_instalments", "kept_cancelled_instalments", "not_restored_reason")
    } == {"owed": "kept_cancelled", "restored_instalments": [],
          "kept_cancelled_instalments": [2], "not_restored_reason": "person_declined"}

    await f.check_in(5, reached())
    view = await f.settled()
    assert not any(t.kind is K.GRANT_PAYMENT for t in view.state.open_tasks)
    assert view.state.instalment(2).status.value == "cancelled"
    assert await f.types() == [*CLOSED_AT_MONTH_ONE, REOPENED, OPENED, REACHED]
    await record_history_of(f, "reintegration_reopened_instalment_kept_cancelled")
    await f.terminate()


async def test_reopening_after_she_opted_out_opens_what_was_due_at_once(
    workflow_env, worker, task_queue, store
):
    f = await start(workflow_env, task_queue, store, pre_departure_instalment_paid=True)
    await f.task(K.GRANT_PAYMENT, instalment=1)  # the reception instalment, not paid yet
    await f.update(ReintegrationWorkflow.record_opt_out,
                   rm.OptOut(organisation_id=RECEIVING, actor_id="u-3001"))
    await f.sleep_to(10 * DAY)
    done = await f.update(ReintegrationWorkflow.reopen, rm.Reopening(
        organisation_id=RECEIVING, actor_id="u-3001", reason=ReopenReason.PERSON_REQUESTED))
    # Reopened before her needs assessment: that opens again with the payment still owed.
    assert done.event_types == (REOPENED, OPENED)
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=1)
    await f.complete(K.NEEDS_ASSESSMENT, rm.NeedsAssessmentResult(assessment_record_id=rec()))
    reopened = await f.last(REOPENED)
    assert reopened.payload["restored_instalments"] == [
        {"instalment": 1, "check_in": None}, {"instalment": 2, "check_in": 5}]
    await f.settled()
    assert await f.types() == [
        "reintegration.started", OPENED, OPENED,
        "reintegration.opted_out", "reintegration.task_cancelled",
        "reintegration.task_cancelled", "reintegration.grant_cancelled",
        "reintegration.grant_cancelled", "reintegration.closed",
        REOPENED, OPENED,  # the needs assessment
        OPENED, PAID,  # the reception instalment, due at once
        "reintegration.needs_assessed", OPENED,  # the plan
    ]
    await f.terminate()


async def test_reopening_is_refused_once_a_year_has_passed_since_the_closure(
    workflow_env, worker, task_queue, store
):
    f = await start(workflow_env, task_queue, store, pre_departure_instalment_paid=True)
    await closed_at_month_one(f)
    closed = await f.last("reintegration.closed")
    # The day before the year ends the case still waits, closed, for a reopening.
    await f.sleep_until(closed.occurred_at + 364 * DAY)
    assert (await f.describe_status()) == "RUNNING"
    assert (await f.status()).stage == "closed"
    # ...until the moment the year ends, on the workflow's own clock.
    [(set_for, _)] = (await f.progress()).timers
    assert abs(set_for - (closed.occurred_at + 365 * DAY)) < ROUNDING
    result = await f.result()  # the window ends 365 days after the closure: the run ends
    assert result.closed_reason is ClosureReason.OTHER
    assert await workflow_env.get_current_time() >= closed.occurred_at + 365 * DAY
    assert await f.describe_status() == "COMPLETED"
    # Nothing is left to reopen: the server refuses the Update (the API answers 409).
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await f.handle.execute_update(ReintegrationWorkflow.reopen, reopening())
    assert await f.types() == CLOSED_AT_MONTH_ONE
    await record_history_of(f, "reintegration_reopening_window_ended")


async def test_an_age_assessment_after_the_handoff_makes_her_follow_up_a_childs(
    workflow_env, worker, task_queue, store
):
    from domain.journey import messages as msg
    from domain.kernel import AgeAssessor, AgeCategory

    f = await start(workflow_env, task_queue, store)
    await f.until(lambda v: v.state.started, "the follow-up to start")

    def assessment(result: AgeCategory, org: str = RECEIVING) -> msg.AgeAssessment:
        return msg.AgeAssessment(organisation_id=org, actor_id="u-3001",
                                 assessed_by=AgeAssessor.SOCIAL_WELFARE_CENTRE, result=result,
                                 evidence_record_id=rec())

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await f.update(ReintegrationWorkflow.record_age_assessment,
                       assessment(AgeCategory.AGE_12_TO_17, org=SENDING))
    assert "run by the receiving mission" in str(refused.value.cause)
    recorded = await f.update(ReintegrationWorkflow.record_age_assessment,
                              assessment(AgeCategory.AGE_12_TO_17))
    assert recorded.event_types == ("reintegration.age_assessed",)
    assert (await f.status()).state.minor is True
    from case_driver import search_attributes

    assert (await search_attributes(f.env.client, f.handle.id))[sa.MINOR.name] is True
    # Her safeguards are not removed by one assessment.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await f.update(ReintegrationWorkflow.record_age_assessment,
                       assessment(AgeCategory.AGE_25_TO_34))
    assert "one assessment does not make her an adult" in str(refused.value.cause)
    event = next(e for e in await f.store.read_stream(f.case_id)
                 if e.event_type == "reintegration.age_assessed")
    assert (event.author_org, event.payload["minor"], event.payload["result"]) == (
        RECEIVING, True, "12_17")


# --- a child's follow-up ----------------------------------------------------------------


async def test_a_minors_follow_up_is_a_childs_from_its_start_to_its_closure(
    workflow_env, worker, task_queue, store
):
    """The journey hands a child over (under 18, age unknown or disputed: ``minor``): her
    follow-up is marked a child's (``HomewardMinor``, the state's ``minor``) from its first
    moment until it closes, one assessment finding an adult does not lift it, and she has
    the whole programme (grant, check-ins) like anyone returned."""
    from domain.journey import messages as msg
    from domain.kernel import AgeAssessor, AgeCategory

    f = await start(workflow_env, task_queue, store, minor=True,
                    pre_departure_instalment_paid=True)
    await f.task(K.NEEDS_ASSESSMENT)
    view = await f.settled()
    assert view.state.minor is True
    history = await f.handle.fetch_history()
    first = next(e for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
    fields = first.upsert_workflow_search_attributes_event_attributes.search_attributes
    assert json.loads(fields.indexed_fields[sa.MINOR.name].data) is True  # from the start
    assert [(i.number, i.amount_minor, i.trigger.value) for i in view.state.instalments] == [
        (1, 5000, "at_reception"), (2, 5000, "at_check_in")]
    assert [c.due_at - f.arrived_at for c in view.state.check_ins] == [
        MONTH, 3 * MONTH, 6 * MONTH, 365 * DAY]

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await f.update(ReintegrationWorkflow.record_age_assessment, msg.AgeAssessment(
            organisation_id=RECEIVING, actor_id="u-3001",
            assessed_by=AgeAssessor.SOCIAL_WELFARE_CENTRE, result=AgeCategory.AGE_18_TO_24,
            evidence_record_id=rec()))
    assert refused.value.cause.details[0] == "age_not_lowered"
    await f.update(ReintegrationWorkflow.close, rm.Closure(
        organisation_id=RECEIVING, actor_id="u-3001", reason=ClosureReason.MOVED_AWAY))
    view = await f.status()
    assert (view.stage, view.state.minor) == ("closed", True)
    attributes = await f.attributes()
    assert (attributes[sa.MINOR.name], attributes[sa.CLOSED_REASON.name]) == (
        True, "moved_away")
    assert await f.types() == [
        "reintegration.started", OPENED, OPENED,
        "reintegration.task_cancelled", "reintegration.task_cancelled",
        "reintegration.grant_cancelled", "reintegration.grant_cancelled",
        "reintegration.closed",
    ]
    await record_history_of(f, "reintegration_minor_follow_up")
    await f.terminate()
