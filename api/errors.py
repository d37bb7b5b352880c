"""Every refusal is a 4xx with a machine-readable code and a sentence for a person.

Validation errors name the field and the rule, never echo the value sent: a request body
may carry identity data, and error bodies end up in logs and browser consoles.
"""

from __future__ import annotations

import math
import traceback
from pathlib import Path

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from store.errors import StoreUnavailable

log = structlog.get_logger("homeward.api")

_HTTP_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "too_many_requests",
}


class ApiError(Exception):
    """An answer with a machine-readable ``code``. ``retry_after`` (seconds) tells a client
    when trying again can succeed (429, 503): sent as the ``Retry-After`` header."""

    def __init__(self, status: int, code: str, message: str, *,
                 retry_after: float | None = None, **details):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.details = details


def error_response(request: Request, status: int, code: str, message: str, *,
                   retry_after: float | None = None, **details) -> JSONResponse:
    body = {"error": {"code": code, "message": message,
                      "request_id": getattr(request.state, "request_id", None), **details}}
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if retry_after is not None:
        headers["Retry-After"] = str(max(math.ceil(retry_after), 1))
    return JSONResponse(body, status_code=status, headers=headers or None)


RETRY_AFTER_SECONDS = 5
"""What a 503 for a fault that a retry cures asks the client to wait."""


class CompletionPending(Exception):
    """A task completion was sent to its workflow but not confirmed in time (no worker
    took it yet). It is applied exactly once if it arrives; the client learns the outcome
    from ``GET /tasks/{task_id}`` and may send the same completion again (idempotent)."""

    def __init__(self, task_id: object):
        super().__init__(f"completion of task {task_id} pending")
        self.task_id = str(task_id)


def completion_pending(request: Request, exc: CompletionPending) -> JSONResponse:
    check = f"/tasks/{exc.task_id}"
    return JSONResponse(
        {"status": "pending", "task_id": exc.task_id, "check": check,
         "message": "the completion was sent but no worker confirmed it in time; it is "
                    "applied once if it arrives: GET the task to see it completed, or send "
                    "the same completion again later",
         "request_id": getattr(request.state, "request_id", None)},
        status_code=202, headers={"Location": check, "Retry-After": str(RETRY_AFTER_SECONDS)})


def database_unavailable(request: Request) -> JSONResponse:
    return error_response(request, 503, "database_unavailable",
                          "the database cannot be reached now; nothing was lost or written "
                          "by this request; try again", retry_after=RETRY_AFTER_SECONDS)


def _field(loc) -> str:
    return ".".join(str(part) for part in loc if part not in ("body", "query", "path"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CompletionPending)
    async def pending(request: Request, exc: CompletionPending):
        return completion_pending(request, exc)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable):
        return database_unavailable(request)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(request, exc.status, exc.code, exc.message,
                              retry_after=exc.retry_after, **exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = [{"field": _field(e.get("loc", ())) or "body", "rule": e.get("type", ""),
                     "message": e.get("msg", "")} for e in exc.errors()]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        return error_response(request, 422, "invalid_request",
                              f"the request is not valid: {summary}", problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(request, exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log_unexpected(request, exc)
        return internal_error(request)


def log_unexpected(request: Request, exc: BaseException) -> None:
    """The exception text may quote data (a database error quotes values): log its type
    and the frames it was raised through (file, line, function), never its message."""
    frames = traceback.extract_tb(exc.__traceback__)[-_FRAMES:]
    log.error("unhandled error", error_type=type(exc).__name__,
              request_id=getattr(request.state, "request_id", None),
              raised_at=[f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames])


def internal_error(request: Request) -> JSONResponse:
    return error_response(request, 500, "internal_error",
                          "something went wrong on our side; quote the request id")


_FRAMES = 8
