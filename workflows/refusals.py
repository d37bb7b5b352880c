"""How a workflow tells an Update's caller that the domain refused: one ApplicationError
type for both workflows, whose details the API turns into the error body.

Imports: temporalio and domain/ only (the workflow sandbox rejects the rest).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.policies import Refusal
    from domain.vocabulary import Stage

REFUSED = "Refused"


class Refused(ApplicationError):
    """Details: the refusal's machine code, what would be accepted instead, from when it
    becomes possible, and the stage the case is in."""

    def __init__(self, refusal: Refusal, stage: Stage | None = None):
        super().__init__(
            refusal.reason,
            refusal.code,
            list(refusal.expected),
            refusal.allowed_from.isoformat() if refusal.allowed_from else None,
            stage.value if stage else None,
            type=REFUSED, non_retryable=True,
        )
