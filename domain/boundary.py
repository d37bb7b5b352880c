"""The names at the Temporal boundary: workflow types, workflow ids, handlers, and the
error type of a domain refusal.

One home for the contract between the workflows and everyone who calls them (the API, the
CLI, activities' logs): callers name workflows and handlers by these strings and never
load workflow code; the workflows define themselves with the same strings
(tests/e2e/test_api_contract.py holds them together)."""

from __future__ import annotations

WORKFLOW_TYPE = "ReturnCaseWorkflow"
REINTEGRATION_WORKFLOW_TYPE = "ReintegrationWorkflow"
WORKFLOW_ID_PREFIX = "return-"
REINTEGRATION_ID_PREFIX = "reintegration-"  # the follow-up child workflow of a case

COMPLETE_TASK = "complete_task"  # Update (both workflows)
STATUS = "status"  # query
HANDOFF_CODE = "handoff_code"  # query
REPORT_FACT = "report_fact"  # Update
RECORD_WITHDRAWAL = "record_withdrawal"  # Update
RECORD_AGE_ASSESSMENT = "record_age_assessment"  # Update (both workflows)
REQUEST_TRANSFER = "request_transfer"  # Update: offer a role to another organisation
# The follow-up's Updates (workflows.reintegration)
RECORD_RISK = "record_risk"
RECORD_OPT_OUT = "record_opt_out"
CHANGE_PLAN = "change_plan"
CLOSE = "close"
REOPEN = "reopen"
REFUSED = "Refused"  # the ApplicationError type of a domain refusal, with its details


def workflow_id_for(case_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{case_id}"


def reintegration_workflow_id_for(case_id: str) -> str:
    return f"{REINTEGRATION_ID_PREFIX}{case_id}"


def case_id_of(workflow_id: str) -> str:
    """The case id in a workflow id (``return-<case id>``, ``reintegration-<case id>``);
    any other id is returned as it is."""
    for prefix in (WORKFLOW_ID_PREFIX, REINTEGRATION_ID_PREFIX):
        if workflow_id.startswith(prefix):
            return workflow_id.removeprefix(prefix)
    return workflow_id
