"""Log lines are JSON off a terminal, and activity lines carry ids, never personal data."""

from __future__ import annotations

import io
import json

from temporalio import activity
from temporalio.testing import ActivityEnvironment

from activities.log import activity_logger, case_id_of
from workers.logging import configure_logging

CASE_ID = "5b0e8a4e-2f7c-4d39-9a43-0c1f1d2e3a4b"


def test_json_lines_when_not_a_terminal():
    stream = io.StringIO()
    configure_logging("auto", "INFO", stream=stream)
    import structlog

    structlog.get_logger("t").info("stage entered", stage="consent")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "stage entered"
    assert line["stage"] == "consent"
    assert line["level"] == "info"
    assert "timestamp" in line


def test_debug_lines_filtered_at_info_level():
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    import structlog

    structlog.get_logger("t").debug("noise")
    assert stream.getvalue() == ""


async def test_activity_lines_carry_case_workflow_and_activity():
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)

    @activity.defn(name="record_something")
    async def record_something() -> None:
        activity_logger().info("event appended", position=7)

    env = ActivityEnvironment()
    env.info = env.info.__class__(
        **{**env.info.__dict__, "workflow_id": f"return-{CASE_ID}",
           "activity_type": "record_something"}
    )
    await env.run(record_something)
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["case_id"] == CASE_ID
    assert line["workflow_id"] == f"return-{CASE_ID}"
    assert line["activity"] == "record_something"
    assert line["position"] == 7


def test_case_id_from_workflow_ids():
    assert case_id_of(f"return-{CASE_ID}") == CASE_ID
    assert case_id_of(f"reintegration-{CASE_ID}") == CASE_ID


def test_standard_library_records_use_the_same_json_format():
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    import logging

    logging.getLogger("temporalio.worker").info("worker started on %s", "homeward-returns")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "worker started on homeward-returns"
    assert line["logger"] == "temporalio.worker"
    assert line["level"] == "info"
