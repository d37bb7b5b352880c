"""What every use case shares: the clock, an access decision enforced, and a Temporal
call with a deadline whose failures become the API's errors (4xx or 503 with a sentence
and ``Retry-After``, never a 500, never a 409 for a fault a retry can cure)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.access import Decision
from api.errors import RETRY_AFTER_SECONDS, ApiError, CompletionPending
from domain.boundary import REFUSED

log = structlog.get_logger("homeward.api")
T = TypeVar("T")

TEMPORAL_DEADLINE_SECONDS = 10.0
"""How long the API waits on one Temporal call before it answers without it: a proxy
or a person gives up after a few seconds more, and waiting longer helps no one."""


class Unconfirmed(ApiError):
    """The call was sent but not answered within its deadline: the workers may be down
    or busy. An Update sent may still be applied later, exactly once; a route that can
    say where to look for its result answers 202 instead of this 503."""

    def __init__(self, what: str, deadline: float = TEMPORAL_DEADLINE_SECONDS):
        super().__init__(503, "worker_unavailable",
                         f"{what}: no worker answered within {deadline:g} s; try again",
                         retry_after=RETRY_AFTER_SECONDS)


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


async def temporal_call(call: Awaitable[T], *, what: str,
                        deadline: float | None = None) -> T:
    """Await a Temporal call for at most ``deadline`` seconds (default
    ``TEMPORAL_DEADLINE_SECONDS``); its failures become 4xx/503 with a sentence, never a
    500. Past the deadline: ``Unconfirmed``."""
    deadline = deadline or TEMPORAL_DEADLINE_SECONDS
    try:
        return await asyncio.wait_for(call, deadline)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The SDK gives up on an Update no worker took before its RPC deadline.
        log.warning("temporal call unconfirmed", what=what)
        raise Unconfirmed(what, deadline) from None
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
        unavailable = _worker_unavailable(error)
        if unavailable is not None:
            log.warning("no worker took the call", what=what, status=error.status.name)
            raise ApiError(503, "worker_unavailable", f"{what}: {unavailable}; try again",
                           retry_after=RETRY_AFTER_SECONDS) from None
        if error.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION):
            raise ApiError(409, "refused", f"{what}: {error.message}") from None
        log.warning("temporal call failed", what=what, status=error.status.name)
        raise ApiError(503, "temporal_unavailable",
                       f"{what}: the workflow service did not answer; try again",
                       retry_after=RETRY_AFTER_SECONDS) from None


def _worker_unavailable(error: RPCError) -> str | None:
    """Why no worker could take a query or Update, or None when the error is something
    else. Temporal answers DEADLINE_EXCEEDED or FAILED_PRECONDITION ("no poller seen for
    task queue recently") when no worker polls, and FAILED_PRECONDITION ("... due to
    Workflow Task in failed state", "... due to unexpected workflow task failure") when
    the call reached the workflow while its workflow task had failed or timed out (its
    worker killed: the task is being retried on another). Nothing of the call is in the
    history either way: a retry goes to the next worker, where a 409 would tell the
    client not to send it again."""
    no_worker = "no worker is running for this case's queue"
    if error.status is RPCStatusCode.DEADLINE_EXCEEDED:
        return no_worker
    if error.status is not RPCStatusCode.FAILED_PRECONDITION:
        return None
    message = (error.message or "").lower()
    if "poller" in message:
        return no_worker
    if "workflow task in failed state" in message or "workflow task failure" in message:
        return "the worker stopped while taking it and nothing was recorded"
    return None


@contextmanager
def pending_if_unconfirmed(task_id: object) -> Iterator[None]:
    """Around a task completion: unconfirmed in time is ``CompletionPending`` (202, where
    to look), not a 503 that a client would retry blindly."""
    try:
        yield
    except Unconfirmed:
        raise CompletionPending(task_id) from None


def first_error(error: ValueError) -> str:
    """The first of a validation error's errors, in one line (where: what)."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(error)
