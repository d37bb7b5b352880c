"""What every use case shares: the clock, an access decision enforced, and a Temporal
call whose failures become the API's errors (4xx or 503 with a sentence, never a 500)."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.access import Decision
from api.errors import ApiError
from domain.boundary import REFUSED

log = structlog.get_logger("homeward.api")
T = TypeVar("T")


def now() -> datetime:
    return datetime.now(UTC)


def require(decision: Decision) -> Decision:
    if not decision.allowed:
        raise ApiError(decision.status, decision.code, decision.reason)
    return decision


def refusal_details(details: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """The workflow's ``Refused`` details (code, expected, allowed_from, stage) as an error
    code and the fields of the error body that are set."""
    code, expected, allowed_from, stage = (*details, None, None, None, None)[:4]
    body = {"expected": expected, "allowed_from": allowed_from, "stage": stage}
    return str(code or "refused"), {k: v for k, v in body.items() if v}


async def temporal_call(call: Awaitable[T], *, what: str) -> T:
    """Await a Temporal call; its failures become 4xx/503 with a sentence, never a 500."""
    try:
        return await call
    except WorkflowUpdateFailedError as failure:
        cause = failure.cause
        reason = getattr(cause, "message", None) or str(cause or failure)
        if isinstance(cause, ApplicationError) and cause.type == REFUSED and cause.details:
            code, details = refusal_details(cause.details)
            raise ApiError(409, code, reason, **details) from None
        raise ApiError(409, "refused", reason) from None
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise ApiError(409, "case_not_running",
                           f"{what}: the case's workflow is no longer running") from None
        if error.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION):
            raise ApiError(409, "refused", f"{what}: {error.message}") from None
        log.warning("temporal call failed", what=what, status=error.status.name)
        raise ApiError(503, "temporal_unavailable",
                       f"{what}: the workflow service did not answer; try again") from None


def first_error(error: ValueError) -> str:
    """The first of a validation error's errors, in one line (where: what)."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(error)
