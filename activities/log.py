"""Logger for activities: every line carries case id, workflow id and activity name."""

from __future__ import annotations

import structlog
from temporalio import activity

WORKFLOW_ID_PREFIX = "return-"


def case_id_of(workflow_id: str) -> str:
    """Case id from a workflow id such as ``return-<case id>`` or ``reintegration-<case id>``."""
    return workflow_id.split("-", 1)[1] if "-" in workflow_id else workflow_id


def activity_logger() -> structlog.stdlib.BoundLogger:
    info = activity.info()
    return structlog.get_logger("homeward.activity").bind(
        case_id=case_id_of(info.workflow_id),
        workflow_id=info.workflow_id,
        activity=info.activity_type,
    )
