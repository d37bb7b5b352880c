"""Read models kept up to date from the event log.

Each projection remembers the global position it has applied up to. A batch of events
and the new checkpoint commit in one transaction, so a crash never applies an event
twice or skips one, and a projection can be rebuilt from position zero at any time.
Appends commit in position order (see event_store.append), so following positions
never misses a late commit.

Every reader of case events (the read models, the access facts, the timeline) asks
``catalogued`` first: a type the catalogue does not hold is skipped there, in one place,
logged on first sight and counted, never folded by guesswork.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.catalogue import is_catalogued
from store.event_store import EventStore
from store.events import StoredEvent

log = structlog.get_logger("homeward.projections")

SKIPPED_UNKNOWN: Counter[tuple[str, str]] = Counter()
"""(reader, event type) → how many events of a type the catalogue does not hold it skipped."""


def catalogued(event: StoredEvent, reader: str) -> bool:
    """Whether ``reader`` folds this event: False, logged once per reader and type and
    counted, for a type the catalogue does not hold (written by a newer version, or an
    event renamed without its history)."""
    if is_catalogued(event.event_type):
        return True
    key = (reader, event.event_type)
    if key not in SKIPPED_UNKNOWN:
        log.warning("unknown event type skipped", reader=reader, event_type=event.event_type,
                    case_id=event.case_id, position=event.position)
    SKIPPED_UNKNOWN[key] += 1
    return False


class Projection(Protocol):
    name: str

    async def apply(self, conn: AsyncConnection, event: StoredEvent) -> None:
        """Apply one event inside the batch's transaction; ignore types it does not read
        (a read model of case events skips uncatalogued types with ``catalogued``)."""

    async def reset(self, conn: AsyncConnection) -> None:
        """Empty the read model (before a rebuild)."""


class ProjectionRunner:
    def __init__(self, engine: AsyncEngine, projections: Sequence[Projection],
                 batch_size: int = 500):
        self._engine = engine
        self._store = EventStore(engine)
        self._projections = {p.name: p for p in projections}
        self._batch_size = batch_size

    @property
    def names(self) -> list[str]:
        return list(self._projections)

    async def checkpoint(self, name: str) -> int:
        async with self._engine.connect() as conn:
            value = (await conn.execute(
                text("SELECT position FROM projection_checkpoints WHERE name = :n"), {"n": name}
            )).scalar()
        return value or 0

    async def catch_up(self, progress: Callable[[str, int], None] | None = None) -> int:
        """Apply every event not yet applied, for every projection; return how many."""
        applied = 0
        for projection in self._projections.values():
            applied += await self._catch_up_one(projection, progress)
        return applied

    async def rebuild(self, name: str, progress: Callable[[str, int], None] | None = None) -> int:
        projection = self._projections.get(name)
        if projection is None:
            raise KeyError(f"no projection {name!r}; known: {', '.join(self.names)}")
        async with self._engine.begin() as conn:
            await projection.reset(conn)
            await _save_checkpoint(conn, name, 0)
        return await self._catch_up_one(projection, progress)

    async def _catch_up_one(self, projection: Projection,
                            progress: Callable[[str, int], None] | None) -> int:
        applied = 0
        async with self._engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO projection_checkpoints (name, position) VALUES (:n, 0) "
                     "ON CONFLICT (name) DO NOTHING"), {"n": projection.name},
            )
        position = await self.checkpoint(projection.name)
        while True:
            batch = await self._store.read_all(after_position=position, limit=self._batch_size)
            if not batch:
                return applied
            async with self._engine.begin() as conn:
                # Lock the checkpoint row: two runners never apply the same batch.
                current = (await conn.execute(
                    text("SELECT position FROM projection_checkpoints WHERE name = :n "
                         "FOR UPDATE"), {"n": projection.name}
                )).scalar() or 0
                if current != position:  # another runner moved on; continue from there
                    position = current
                    continue
                for event in batch:
                    await projection.apply(conn, event)
                position = batch[-1].position
                await _save_checkpoint(conn, projection.name, position)
            applied += len(batch)
            if progress is not None:
                progress(projection.name, position)


async def _save_checkpoint(conn: AsyncConnection, name: str, position: int) -> None:
    await conn.execute(
        text("INSERT INTO projection_checkpoints (name, position) VALUES (:n, :p) "
             "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()"),
        {"n": name, "p": position},
    )
