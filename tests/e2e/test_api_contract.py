"""The names the API calls the workflow by are the workflow's own."""

from __future__ import annotations

from api import workflow_ref as wf
from workflows import ReturnCaseWorkflow, workflow_id_for
from workflows.refusals import REFUSED
from workflows.return_case import WORKFLOW_ID_PREFIX


def test_the_api_names_the_workflow_and_its_handlers_as_the_workflow_does():
    definition = ReturnCaseWorkflow.__temporal_workflow_definition
    assert wf.WORKFLOW_TYPE == definition.name
    assert {wf.COMPLETE_TASK, wf.REPORT_FACT, wf.RECORD_WITHDRAWAL,
            wf.RECORD_AGE_ASSESSMENT} <= set(definition.updates)
    assert {wf.STATUS, wf.HANDOFF_CODE} <= set(definition.queries)
    assert wf.WORKFLOW_ID_PREFIX == WORKFLOW_ID_PREFIX
    assert wf.REFUSED == REFUSED
    assert wf.workflow_id_for("c-123456") == workflow_id_for("c-123456")
