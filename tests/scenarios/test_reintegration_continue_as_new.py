"""A year of follow-up in many short runs: continue-as-new carries the case's state (plan,
paid instalments, missed check-ins, schedule), loses and duplicates nothing, and keeps
every run's history under the documented bound (decision 0032)."""

from __future__ import annotations

import uuid

from case_driver import RECEIVING
from temporalio.api.enums.v1 import EventType
from test_reintegration import (  # noqa: F401 - the autouse clean-up fixture
    ASSESSED_AND_PLANNED,
    DAY,
    INDICATORS,
    MONTH,
    NOT_REACHED,
    OPENED,
    PAID,
    REACHED,
    STARTED,
    K,
    _end_what_is_left,
    not_reached,
    paid,
    reached,
    record_history_of,
    start,
)

from domain.reintegration import messages as rm
from domain.reintegration.config import ReintegrationConfig
from domain.reintegration.events import ServiceLine
from domain.reintegration.vocabulary import (
    ClosureReason,
    ContactChannel,
    InstalmentStatus,
    ServiceKind,
)
from workflows.reintegration import ReintegrationWorkflow

THRESHOLD = 40
MARGIN = 40  # one agenda pass plus the Updates already accepted when the run rolls over


async def run_lengths(f) -> list[int]:
    """History length of every run, following the continue-as-new chain from the first."""
    lengths = []
    run_id = f.handle.first_execution_run_id or f.handle.run_id
    while run_id:
        handle = f.env.client.get_workflow_handle(f.handle.id, run_id=run_id)
        history = await handle.fetch_history()
        lengths.append(len(history.events))
        last = history.events[-1]
        run_id = None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes \
                .new_execution_run_id
    return lengths


async def test_state_survives_continue_as_new_and_every_run_stays_small(
    workflow_env, worker, task_queue, store
):
    config = ReintegrationConfig(continue_as_new_after_events=THRESHOLD)
    f = await start(workflow_env, task_queue, store, config=config)
    plan = await f.assess_and_plan()
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=1)
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=2)
    await f.check_in(1, not_reached(), MONTH)
    first_miss_run = (await f.status()).run
    assert first_miss_run > 1
    # The mission adds service lines until the history rolls over (where it does depends
    # on the workflow's steps, not on this test): the first miss and every line must be
    # carried into the next run.
    added: list[ServiceLine] = []
    while (await f.status()).run == first_miss_run:
        assert len(added) < THRESHOLD, "the history never rolled over"
        added.append(ServiceLine(line_id=uuid.uuid4(), service=ServiceKind.EDUCATION,
                                 provider_org="ngo-school-md", due_at=f.arrived_at + 4 * MONTH))
        await f.update(ReintegrationWorkflow.change_plan, rm.PlanChange(
            organisation_id=RECEIVING, actor_id="u-3001", lines=(added[-1],)))

    await f.sleep_to(3 * MONTH)
    await f.task(K.CHECK_IN, check_in=2)
    view = await f.status()
    assert view.run > first_miss_run  # rolled over between the two misses
    s = view.state
    assert s.plan == (*plan, *added)
    assert [i.status for i in s.instalments] == [InstalmentStatus.PAID, InstalmentStatus.PAID,
                                                 InstalmentStatus.WAITING]
    assert s.consecutive_misses == 1
    assert [c.due_at - f.arrived_at for c in s.check_ins] == list(
        config.check_ins_after_arrival)
    await f.complete(K.CHECK_IN, not_reached(), check_in=2)  # the second miss in a row
    await f.complete(K.TRACING, rm.TracingResult(located=True, channel=ContactChannel.PHONE))
    await f.complete(K.GRANT_PAYMENT, paid(), instalment=3)
    await f.check_in(3, reached(), 6 * MONTH)
    await f.check_in(4, reached(), 365 * DAY)
    await f.complete(K.SUSTAINABILITY_ASSESSMENT, rm.SustainabilityResult(indicators=INDICATORS))
    result = await f.result()

    assert result.closed_reason is ClosureReason.SUPPORT_PERIOD_ENDED
    # Nothing lost, nothing written twice across the runs.
    assert await f.types() == [
        *STARTED, *ASSESSED_AND_PLANNED, PAID, PAID,
        OPENED, NOT_REACHED, *["reintegration.plan_changed"] * len(added),
        OPENED, NOT_REACHED,
        "reintegration.contact_lost", OPENED, "reintegration.tracing_completed",
        "reintegration.contact_restored", OPENED, PAID,
        OPENED, REACHED, OPENED, REACHED,
        OPENED, "reintegration.sustainability_assessed", "reintegration.closed",
    ]
    events = await f.events()
    assert len({e.event_id for e in events}) == len(events)
    assert result.events_recorded == len(events)
    first = f.env.client.get_workflow_handle(
        f.handle.id, run_id=f.handle.first_execution_run_id or f.handle.run_id)
    await record_history_of(first, "reintegration_run_ending_in_continue_as_new")
    lengths = await run_lengths(f)
    assert result.runs == len(lengths) >= 4
    assert max(lengths) <= THRESHOLD + MARGIN, lengths
