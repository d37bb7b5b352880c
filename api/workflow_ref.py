"""How the API names the return workflow and its handlers.

By name, not by importing ``workflows``: the API process never loads workflow code, and
the names are the contract (tests/e2e/test_api_contract.py holds them to the workflow)."""

from __future__ import annotations

WORKFLOW_TYPE = "ReturnCaseWorkflow"
WORKFLOW_ID_PREFIX = "return-"
COMPLETE_TASK = "complete_task"  # Update
STATUS = "status"  # query
HANDOFF_CODE = "handoff_code"  # query
REFUSED = "Refused"  # the ApplicationError type of a domain refusal, with its details
REPORT_FACT = "report_fact"  # Update
RECORD_WITHDRAWAL = "record_withdrawal"  # Update
RECORD_AGE_ASSESSMENT = "record_age_assessment"  # Update


def workflow_id_for(case_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{case_id}"


REINTEGRATION_ID_PREFIX = "reintegration-"  # the follow-up child workflow of a case


def reintegration_workflow_id_for(case_id: str) -> str:
    return f"{REINTEGRATION_ID_PREFIX}{case_id}"
