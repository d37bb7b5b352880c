"""A request id on every response and every log line written while serving it, and one
access log line per request.

Always made here: a client-chosen id could carry anything (a name, a birth date) into
logs and the append-only audit log, where erasure cannot reach it. The access line names
the route template (``/cases/{case_id}``), never the raw URL: a query string or a path
could carry what a log must not (uvicorn's own access log is turned off for that).
"""

from __future__ import annotations

import time
import uuid

import structlog
from opentelemetry import trace
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request

HEADER = "X-Request-ID"
SPAN_ATTRIBUTE = "homeward.request_id"  # on the request's server span (decision 0061)

access_log = structlog.get_logger("homeward.access")


def route_of(request: Request) -> str:
    """The matched route's template, or a fixed word for a request no route matched."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestIdMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):
        request_id = uuid.uuid4().hex
        request.state.request_id = request_id
        trace.get_current_span().set_attribute(SPAN_ATTRIBUTE, request_id)
        started = time.perf_counter()
        status = 500
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                response = await call_next(request)
                status = response.status_code
            finally:
                access_log.info("request", method=request.method, route=route_of(request),
                                status=status,
                                duration_ms=round((time.perf_counter() - started) * 1000, 1))
        response.headers[HEADER] = request_id
        return response
