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


# --- exceptions: type and frames, never the message (issue 13) -------------------------

SECRET = "Ana Popescu 1987-03-19"


def _raise_with_data() -> None:
    try:
        raise KeyError(SECRET)
    except KeyError as error:
        raise ValueError(f"row ({SECRET}) violates a constraint") from error


def _logged(log_call) -> None:
    """``log_call()`` while an exception that quotes SECRET (and its cause) is handled."""
    try:
        _raise_with_data()
    except ValueError:
        log_call()


def _last_json(stream: io.StringIO) -> dict:
    return json.loads(stream.getvalue().strip().splitlines()[-1])


def test_a_structlog_exception_is_its_type_and_frames_in_json():
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    import structlog

    _logged(lambda: structlog.get_logger("t").exception("append failed"))
    line = _last_json(stream)
    assert SECRET not in stream.getvalue()
    assert line["error"]["type"] == "builtins.ValueError"
    assert any("_raise_with_data" in frame for frame in line["error"]["frames"])
    assert line["error"]["cause"]["type"] == "builtins.KeyError"


def test_a_standard_library_traceback_is_rendered_not_dropped():
    """JSON lines read "<traceback object at 0x…>" for every record logged with exc_info
    through the standard library (uvicorn, temporalio): the bridge lacked a formatter."""
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    import logging

    _logged(lambda: logging.getLogger("uvicorn.error").exception("Exception in ASGI application"))
    line = _last_json(stream)
    assert "traceback object" not in stream.getvalue()
    assert SECRET not in stream.getvalue()
    assert line["event"] == "Exception in ASGI application"
    assert line["error"]["type"] == "builtins.ValueError"
    assert line["error"]["frames"]


def test_console_lines_show_the_exception_without_its_message():
    stream = io.StringIO()
    configure_logging("console", "INFO", stream=stream)
    import logging

    _logged(lambda: logging.getLogger("temporalio.worker").error("Failed activation",
                                                                 exc_info=True))
    text = stream.getvalue()
    assert "ValueError" in text and "_raise_with_data" in text
    assert SECRET not in text


# --- the access log ------------------------------------------------------------------


async def test_one_access_line_per_request_with_route_template_and_request_id():
    import httpx
    from fastapi import FastAPI

    from api.request_ids import RequestIdMiddleware

    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    app = FastAPI()

    @app.get("/cases/{case_id}")
    async def read(case_id: str) -> dict:
        return {"ok": True}

    app.add_middleware(RequestIdMiddleware)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as http:
        answered = await http.get("/cases/c-0123456789abcdef0123", params={"q": SECRET})
        missing = await http.get("/nowhere/c-0123456789abcdef0123")
    lines = [json.loads(x) for x in stream.getvalue().splitlines()
             if json.loads(x).get("event") == "request"]
    assert [line["request_id"] for line in lines] == [answered.headers["x-request-id"],
                                                      missing.headers["x-request-id"]]
    first, second = lines
    assert (first["method"], first["route"], first["status"]) == ("GET", "/cases/{case_id}", 200)
    assert first["duration_ms"] >= 0
    assert (second["route"], second["status"]) == ("unmatched", 404)
    assert "c-0123456789abcdef0123" not in stream.getvalue()
    assert "Popescu" not in stream.getvalue()


def test_uvicorn_configured_with_its_own_logging_still_goes_through_the_rule():
    """uvicorn's default logging config gives its loggers their own handlers (printing the
    exception text) and stops them propagating; configuring homeward's logging after it
    takes them back."""
    import logging

    import uvicorn

    uvicorn.Config(app=lambda *a: None)  # applies uvicorn.config.LOGGING_CONFIG
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    _logged(lambda: logging.getLogger("uvicorn.error").exception("Exception in ASGI application"))
    assert SECRET not in stream.getvalue()
    assert _last_json(stream)["error"]["type"] == "builtins.ValueError"
