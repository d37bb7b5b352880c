"""Every refusal is a 4xx with a machine-readable code and a sentence for a person, as an
RFC 9457 problem (``application/problem+json``, decision 0057):

    {"type": "https://homeward.example/problems/<code>", "title": "<Code in words>",
     "status": 409, "detail": "<the sentence>", "code": "<code>", "request_id": "...",
     ...details}

``code`` is the machine-readable key clients switch on (``type`` says the same as a URI);
``request_id`` finds the request in the logs and the audit; details (``problems``,
``expected``, ``stage``, ...) are extension members and never override the standard ones.

Validation errors name the field and the rule, never echo the value sent: a request body
may carry identity data, and error bodies end up in logs and browser consoles.
"""

from __future__ import annotations

import json
import math
import traceback
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from store.errors import StoreUnavailable

log = structlog.get_logger("homeward.api")

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPES = "https://homeward.example/problems/"
"""Problem type URIs: identifiers, not links (RFC 9457 3.1.1); ``<code>`` is appended."""

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


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(status: int, code: str, detail: str, request_id: str | None,
            **details: Any) -> dict[str, Any]:
    """The body of an error answer: the RFC 9457 members, then ``code`` and
    ``request_id``, then the details (none of which may replace a member before)."""
    body: dict[str, Any] = {"type": PROBLEM_TYPES + code, "title": title_of(code),
                            "status": status, "detail": detail, "code": code,
                            "request_id": request_id}
    body.update({k: v for k, v in details.items() if k not in body})
    return body


def title_of(code: str) -> str:
    """The problem type's title: the same for every occurrence of a code."""
    return code.replace("_", " ").capitalize()


def _headers(status: int, retry_after: float | None) -> dict[str, str]:
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if retry_after is not None:
        headers["Retry-After"] = str(max(math.ceil(retry_after), 1))
    return headers


def error_response(request: Request, status: int, code: str, message: str, *,
                   retry_after: float | None = None, headers: dict[str, str] | None = None,
                   **details) -> ProblemResponse:
    body = problem(status, code, message, getattr(request.state, "request_id", None),
                   **details)
    return ProblemResponse(body, status_code=status,
                           headers={**_headers(status, retry_after), **(headers or {})})


async def send_problem(scope: Scope, send: Send, status: int, code: str, message: str, *,
                       retry_after: float | None = None) -> None:
    """The same answer from a plain ASGI middleware, before the app (and its exception
    handlers) has seen the request: load shedding, the body size limit."""
    request_id = scope.get("state", {}).get("request_id")
    body = json.dumps(problem(status, code, message, request_id)).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode())
                for k, v in _headers(status, retry_after).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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


def database_unavailable(request: Request) -> ProblemResponse:
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
        return error_response(request, exc.status_code, code, message,
                              headers=getattr(exc, "headers", None))

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


def internal_error(request: Request) -> ProblemResponse:
    return error_response(request, 500, "internal_error",
                          "something went wrong on our side; quote the request id")


_FRAMES = 8
