"""Event store value types and errors (no I/O)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Causation:
    """What caused an event: the Temporal workflow run and activity that appended it."""

    workflow_id: str | None = None
    run_id: str | None = None
    activity_id: str | None = None


@dataclass(frozen=True)
class NewEvent:
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    payload: dict[str, Any]  # JSON-able
    author_org: str
    actor: str  # user id or "system:<component>"
    occurred_at: datetime  # tz-aware
    causation: Causation = Causation()

    def __post_init__(self) -> None:
        if self.occurred_at.utcoffset() is None:
            raise ValueError(f"occurred_at must be timezone-aware: {self.occurred_at!r}")
        if self.schema_version < 1:
            raise ValueError(f"schema_version must be >= 1: {self.schema_version}")
        if not isinstance(self.payload, dict):
            raise TypeError(f"payload must be a dict, got {type(self.payload).__name__}")


@dataclass(frozen=True)
class StoredEvent:
    # Global, unique, with gaps: (transaction id << 16) + rank in the transaction. A
    # transaction that commits later than a reader's read has only positions above
    # those the reader got (EventStore.read_all).
    position: int
    case_id: str
    version: int  # 1, 2, 3... within the case, no gaps
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    payload: dict[str, Any]
    author_org: str
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    causation: Causation
    prev_hash: str
    hash: str


class StoreError(Exception):
    """Any failure of the event store (database errors are translated into this)."""


class ConcurrencyConflict(StoreError):
    """The case moved on since the caller read it: reload and decide again."""

    def __init__(self, case_id: str, expected: int | None, actual: int | None):
        self.case_id = case_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"case {case_id!r}: expected version {expected}, actual version {actual}")


class DuplicateEventConflict(StoreError):
    """An event id is already stored with other content, under another case or version."""

    def __init__(self, event_id: uuid.UUID | None, reason: str):
        self.event_id = event_id
        self.reason = reason
        super().__init__(f"event {event_id}: {reason}")
