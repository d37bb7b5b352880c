"""Logger for activities: every line carries case id, workflow id and activity name."""

from __future__ import annotations

import structlog
from temporalio import activity

from domain.boundary import case_id_of


def activity_logger() -> structlog.stdlib.BoundLogger:
    info = activity.info()
    return structlog.get_logger("homeward.activity").bind(
        case_id=case_id_of(info.workflow_id),
        workflow_id=info.workflow_id,
        activity=info.activity_type,
    )
