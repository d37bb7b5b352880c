"""The case lifecycle read from the event store, for erasure and retention."""

from __future__ import annotations

from datetime import datetime

from domain import lifecycle
from store.event_store import EventStore


async def _timeline(store: EventStore, case_id: str) -> list[tuple[str, datetime]]:
    return [(e.event_type, e.occurred_at) for e in await store.read_case(case_id)]


class CaseLifecycle:
    def __init__(self, store: EventStore):
        self._store = store

    async def is_journey_active(self, case_id: str) -> bool:
        return lifecycle.journey_active(t for t, _ in await _timeline(self._store, case_id))

    async def closed_at(self, case_id: str) -> datetime | None:
        return lifecycle.closed_at(await _timeline(self._store, case_id))
