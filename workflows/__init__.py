"""Temporal workflows. ``WORKFLOWS`` is what a worker registers."""

from workflows.reintegration import ReintegrationWorkflow, reintegration_id_for
from workflows.return_case import ReturnCaseWorkflow, workflow_id_for

WORKFLOWS: list[type] = [ReturnCaseWorkflow, ReintegrationWorkflow]

__all__ = ["WORKFLOWS", "ReintegrationWorkflow", "ReturnCaseWorkflow", "reintegration_id_for",
           "workflow_id_for"]
