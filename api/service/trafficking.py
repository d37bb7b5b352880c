"""How trafficking occurred: the sending mission's account, decided on the case's events
(``domain.trafficking``) and appended by the API, like sharing, never through the
workflow: nothing the journey decides depends on it, and it may come after the journey's
workflow has ended (decision 0066)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from api.errors import ApiError
from api.service.calls import now
from domain import catalogue
from domain.kernel import Refusal
from domain.trafficking import (
    FOLDED_TYPES,
    Context,
    RecordTraffickingAccount,
    TraffickingAccount,
    TraffickingAccountRecorded,
    TraffickingAccountState,
    decide,
    fold,
)
from store.accounts import Principal
from store.event_store import EventStore
from store.events import ConcurrencyConflict, NewEvent, StoredEvent

APPEND_ATTEMPTS = 5
"""The workflow appends to the same stream: a lost race is decided again on the new
events, a few times at most."""


@dataclass(frozen=True)
class Account:
    """The case's account now, and whether this request recorded it."""

    account: TraffickingAccount
    recorded_at: datetime | None
    recorded: bool = False


def current(events: list[StoredEvent]) -> Account:
    """The latest account of the case's events (every question unanswered: none yet)."""
    last = next((e for e in reversed(events)
                 if e.event_type == TraffickingAccountRecorded.TYPE), None)
    if last is None:
        return Account(TraffickingAccount(), None)
    event = catalogue.parse_event(last.event_type, last.schema_version, last.payload)
    return Account(event.answers(), last.occurred_at)


def state_of(events: list[StoredEvent]) -> TraffickingAccountState:
    return fold(TraffickingAccountState(), (
        catalogue.parse_event(e.event_type, e.schema_version, e.payload)
        for e in events if e.event_type in FOLDED_TYPES))


class TraffickingService:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def record(self, caller: Principal, case_id: str, events: list[StoredEvent],
                     account: TraffickingAccount) -> Account:
        """Replace the case's account; the same account again writes nothing."""
        for _ in range(APPEND_ATTEMPTS):
            decision = decide(state_of(events), RecordTraffickingAccount(account),
                              Context(now=now()))
            if isinstance(decision, Refusal):
                raise ApiError(409, decision.code, decision.reason)
            if not decision:
                return current(events)
            at = now()
            new = [NewEvent(uuid.uuid4(), e.TYPE, e.schema_version, catalogue.payload_of(e),
                            caller.org_id, caller.user_id, at) for e in decision]
            try:
                await self.store.append(case_id, events[-1].version, new)
            except ConcurrencyConflict:
                events = await self.store.read_case(case_id)
                continue
            return Account(account.answers(), at, recorded=True)
        raise ApiError(503, "case_busy", "the case changed on every attempt to record the "
                       "account: send it again", retry_after=1)
