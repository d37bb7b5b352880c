"""Temporal workflows. ``WORKFLOWS`` is what a worker registers."""

from workflows.return_case import ReturnCaseWorkflow, workflow_id_for

WORKFLOWS: list[type] = [ReturnCaseWorkflow]

__all__ = ["WORKFLOWS", "ReturnCaseWorkflow", "workflow_id_for"]
