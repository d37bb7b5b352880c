"""Temporal workflows. ``WORKFLOWS`` is what a worker registers; their names and ids are
in ``domain.boundary``."""

from workflows.reintegration import ReintegrationWorkflow
from workflows.return_case import ReturnCaseWorkflow

WORKFLOWS: list[type] = [ReturnCaseWorkflow, ReintegrationWorkflow]

__all__ = ["WORKFLOWS", "ReintegrationWorkflow", "ReturnCaseWorkflow"]
