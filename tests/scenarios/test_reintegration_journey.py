"""The journey starts reintegration at reception; recorded reintegration histories replay
against today's code."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from case_driver import HISTORIES, RECEIVING, CaseDriver, case_input, record_history
from converter import TEST_DATA_CONVERTER
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from test_reintegration import FollowUp, _end_what_is_left  # noqa: F401

from domain.boundary import reintegration_workflow_id_for
from domain.journey.vocabulary import Determination, RiskLevel
from domain.kernel import AgeCategory
from domain.reintegration import messages as rm
from domain.reintegration.config import ReintegrationConfig
from workflows import WORKFLOWS, ReintegrationWorkflow
from workflows import search_attributes as sa


async def test_safe_arrival_starts_the_reintegration_child(workflow_env, worker, task_queue,
                                                           store):
    case = await CaseDriver.start(workflow_env.client, task_queue, store,
                                  case_input(reintegration=ReintegrationConfig()))
    await case.through_consent(datetime.now(UTC))
    await case.documents_and_clearances()
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    await case.reception()
    result = await case.result()
    assert result.outcome == "returned"

    child = workflow_env.client.get_workflow_handle_for(
        ReintegrationWorkflow.run, reintegration_workflow_id_for(case.input.case_id))
    # The journey started the child before it completed: the child exists now.
    f = FollowUp(workflow_env, child, store, case.input.case_id, datetime.now(UTC))
    view = await f.until(lambda v: len(v.state.open_tasks) == 3, "first tasks")
    assert {t.assignee_org for t in view.state.open_tasks} == {RECEIVING}
    types = await case.event_types()
    returned = types.index("outcome.returned")
    assert types[returned:] == ["outcome.returned", "reintegration.started",
                                "reintegration.task_opened", "reintegration.task_opened",
                                "reintegration.task_opened"]

    # The parent recorded the patch marker and started the child with ABANDON.
    history = await case.handle.fetch_history()
    started = next(e for e in history.events if e.event_type
                   == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)
    attributes = started.start_child_workflow_execution_initiated_event_attributes
    assert attributes.workflow_id == f"reintegration-{case.input.case_id}"
    assert attributes.parent_close_policy == 2  # PARENT_CLOSE_POLICY_ABANDON
    payload = (await child.fetch_history()).events[0] \
        .workflow_execution_started_event_attributes.input.payloads[0]
    [parsed] = await TEST_DATA_CONVERTER.decode([payload], [rm.ReintegrationInput])
    assert (parsed.case_id, parsed.receiving_mission, parsed.carried) == (
        case.input.case_id, RECEIVING, None)
    await record_history(case, "reintegration_started_by_journey")
    await f.terminate()


async def test_a_childs_journey_hands_her_to_a_childs_follow_up(workflow_env, worker,
                                                                 task_queue, store):
    """A child escorted to her guardian: the follow-up the journey starts is a child's
    (``minor`` in its input and state, ``HomewardMinor`` on it)."""
    case = await CaseDriver.start(workflow_env.client, task_queue, store, case_input(
        age_category=AgeCategory.UNDER_12, reintegration=ReintegrationConfig()))
    await case.through_consent(datetime.now(UTC))
    await case.minor_safeguards(Determination.RETURN_IN_BEST_INTEREST)
    await case.documents_and_clearances(risk=RiskLevel.HIGH)
    await case.depart_and_arrive(workflow_env.sleep)
    await case.fact("border_cleared")
    await case.reception()
    await case.stage("guardian_handover")
    await case.guardian_handover()
    assert (await case.result()).outcome == "returned"

    child = workflow_env.client.get_workflow_handle_for(
        ReintegrationWorkflow.run, reintegration_workflow_id_for(case.input.case_id))
    f = FollowUp(workflow_env, child, store, case.input.case_id, datetime.now(UTC))
    view = await f.until(lambda v: len(v.state.open_tasks) == 3, "first tasks")
    assert view.state.minor is True
    payload = (await child.fetch_history()).events[0] \
        .workflow_execution_started_event_attributes.input.payloads[0]
    [parsed] = await TEST_DATA_CONVERTER.decode([payload], [rm.ReintegrationInput])
    assert parsed.minor is True
    assert (await f.attributes())[sa.MINOR.name] is True
    types = await case.event_types()
    assert types[types.index("outcome.returned"):][:2] == ["outcome.returned",
                                                            "reintegration.started"]
    await f.terminate()


def reintegration_histories() -> list[Path]:
    return sorted(HISTORIES.glob("reintegration_*.json"))


# Every path of the follow-up has a recorded history, so that a change that would break a
# running case on it fails the replay below. ``reintegration_reopened_before_owed_restored``
# was recorded by the code before decision 0041 (no patch marker): never re-record it.
REINTEGRATION_PATHS = {
    "reintegration_full_year", "reintegration_payment_retries",
    "reintegration_run_ending_in_continue_as_new", "reintegration_started_by_journey",
    "reintegration_opted_out", "reintegration_contact_lost_and_traced",
    "reintegration_tracing_exhausted", "reintegration_risk_escalated",
    "reintegration_plan_changed", "reintegration_reopened",
    "reintegration_reopened_instalment_kept_cancelled",
    "reintegration_reopened_before_owed_restored", "reintegration_reopening_window_ended",
    "reintegration_minor_follow_up",
}


def test_reintegration_histories_are_recorded():
    names = {p.stem for p in reintegration_histories()}
    assert REINTEGRATION_PATHS <= names, (
        f"missing {sorted(REINTEGRATION_PATHS - names)}: record them with "
        "HOMEWARD_RECORD_HISTORIES=1 pytest tests/scenarios/test_reintegration*")


@pytest.mark.parametrize("path", reintegration_histories(), ids=lambda p: p.stem)
async def test_recorded_reintegration_history_replays(path: Path):
    history = WorkflowHistory.from_json(f"replay-{uuid.uuid4()}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=TEST_DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
