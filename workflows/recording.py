"""How both workflows write what they decided: one ``Recorder`` per workflow run builds the
envelopes, applies the author rule and calls the ``append_events`` activity in batches;
``Refused`` tells an Update's caller why nothing was written (decision 0049).

The sequence of commands this produces is part of every recorded history: event ids are
drawn with ``workflow.uuid4()`` in the order of the events, after the caller has decided,
and each batch is one activity with the same name, timeout and retry policy as before.

Imports: the standard library, temporalio and domain/ only (the sandbox rejects the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import ClassVar, Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import catalogue
    from domain.boundary import REFUSED
    from domain.journey.vocabulary import Stage
    from domain.kernel import SYSTEM_ORGANISATION, WORKFLOW_ACTOR, Refusal, Role

# The activity is named, not imported: activities import the database.
APPEND_EVENTS = "append_events"

# Transient failures (database down, provider timeout) retry with backoff, without limit:
# an operator sees the failing activity in the UI. Business failures are non-retryable
# ApplicationErrors, handled by the workflow as decisions. Every activity of both
# workflows runs with these options.
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
ACTIVITY_TIMEOUT = timedelta(seconds=30)

# The most events one append takes: the request's own limit, read from it.
APPEND_BATCH: int = next(
    m.max_length for m in catalogue.AppendEventsRequest.model_fields["events"].metadata
    if getattr(m, "max_length", None) is not None
)


class Refused(ApplicationError):
    """The domain refused: the Update's caller learns why, and nothing was written.

    Details: the refusal's machine code, what would be accepted instead, from when it
    becomes possible, and the stage the case is in (the API turns them into the error
    body)."""

    def __init__(self, refusal: Refusal, stage: Stage | None = None):
        super().__init__(
            refusal.reason,
            refusal.code,
            list(refusal.expected),
            refusal.allowed_from.isoformat() if refusal.allowed_from else None,
            stage.value if stage else None,
            type=REFUSED, non_retryable=True,
        )


def refuse_if(decision: object, stage: Stage | None = None) -> None:
    """An Update validator's answer to a decision: a refusal rejects the Update."""
    if isinstance(decision, Refusal):
        raise Refused(decision, stage)


class Owned(Protocol):
    """An event of either aggregate: its type says which role owns it."""

    owner: ClassVar[Role]


class Recorder:
    """Appends the events a workflow decided for one case.

    ``author_of_role`` names the organisation that writes an event of a role when no
    organisation is named (a workflow step rather than a person's Update)."""

    def __init__(self, case_id: str, author_of_role: Callable[[Role], str]) -> None:
        self._case_id = case_id
        self._author_of_role = author_of_role

    def author(self, event: Owned, author_org: str | None) -> str:
        """System-owned events (tasks, outcomes, schedules) are always the system's, even
        when a person's Update caused them; others are the named organisation's, else the
        organisation playing the owning role."""
        if event.owner is Role.SYSTEM:
            return SYSTEM_ORGANISATION
        return author_org or self._author_of_role(event.owner)

    async def append(self, events: Sequence[Owned], *, author_org: str | None = None,
                     actor: str = WORKFLOW_ACTOR, refuse_on_failure: bool = False) -> int:
        """Append ``events`` at the end of the case's stream; the number appended.

        The workflow is the only writer of its aggregate, but the API and the vault append
        other events to the same case: append at the end (no expected version) and rely on
        event-id idempotency for retries. With ``refuse_on_failure`` (an Update is waiting)
        a failed append becomes ``Refused``, so its caller learns why."""
        now = workflow.now()
        envelopes = tuple(
            catalogue.EventEnvelope(event_id=workflow.uuid4(), occurred_at=now,
                              author_org=self.author(event, author_org), actor=actor,
                              event=event)  # type: ignore[arg-type]
            for event in events
        )
        for start in range(0, len(envelopes), APPEND_BATCH):
            try:
                await workflow.execute_activity(
                    APPEND_EVENTS,
                    catalogue.AppendEventsRequest(case_id=self._case_id,
                                            events=envelopes[start:start + APPEND_BATCH]),
                    result_type=catalogue.AppendEventsResult,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=ACTIVITY_RETRY,
                )
            except ActivityError as error:
                if refuse_on_failure:
                    raise Refused(Refusal(str(error.cause or error))) from error
                raise
        return len(envelopes)

