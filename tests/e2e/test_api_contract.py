"""The names the API calls the workflow by are the workflow's own."""

from __future__ import annotations

from domain import boundary as wf
from domain.kernel import Refusal
from workflows import ReintegrationWorkflow, ReturnCaseWorkflow
from workflows.recording import Refused


def test_the_boundary_names_the_workflows_and_their_handlers_as_they_do():
    definition = ReturnCaseWorkflow.__temporal_workflow_definition
    assert wf.WORKFLOW_TYPE == definition.name
    assert {wf.COMPLETE_TASK, wf.REPORT_FACT, wf.RECORD_WITHDRAWAL,
            wf.RECORD_AGE_ASSESSMENT} <= set(definition.updates)
    assert {wf.STATUS, wf.HANDOFF_CODE} <= set(definition.queries)
    follow_up = ReintegrationWorkflow.__temporal_workflow_definition
    assert wf.REINTEGRATION_WORKFLOW_TYPE == follow_up.name
    assert wf.COMPLETE_TASK in follow_up.updates
    # The error a workflow raises for a domain refusal is the one the API reads.
    assert Refused(Refusal("not now", code="x")).type == wf.REFUSED


def test_a_workflow_id_gives_back_its_case_id():
    for workflow_id in (wf.workflow_id_for("c-1234-56"), wf.reintegration_workflow_id_for(
            "c-1234-56")):
        assert wf.case_id_of(workflow_id) == "c-1234-56"
    assert wf.case_id_of("stack-check-1") == "stack-check-1"
