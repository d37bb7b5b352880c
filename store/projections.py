"""Read models kept up to date from the event log.

Each projection remembers the global position it has applied up to. All projections run
in one pass over the log: a page of events is read once, every projection folds it (in
memory, see store/read_models.py), and their writes and new checkpoints commit in one
transaction, so a crash never applies an event twice or skips one. A projection can be
rebuilt alone from position zero at any time. ``EventStore.read_all`` never hands out a
position that a transaction still in flight could precede, so following positions never
misses a late commit (decision 0052).

Every reader of case events (the read models, the access facts, the timeline) asks
``catalogued`` first: a type the catalogue does not hold is skipped there, in one place,
logged on first sight and counted, never folded by guesswork.
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_right
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


LAG_CAP = 10_000
"""``ProjectionRunner.lag`` counts no further: a lag this big reads "at least"."""


class Projection(Protocol):
    name: str

    async def apply_page(self, conn: AsyncConnection, events: Sequence[StoredEvent]) -> None:
        """Apply a page of events, in position order, inside the batch's transaction; ignore
        types it does not read (a read model of case events skips uncatalogued types with
        ``catalogued``). The read models load the rows the page touches in one query per
        table, fold the page in memory and write the changed rows back in one statement
        per table (store/read_models.py)."""

    async def reset(self, conn: AsyncConnection) -> None:
        """Empty the read model (before a rebuild)."""


class ProjectionRunner:
    """Runs projections over the log in one pass: each page of events is read once and
    handed to every projection that has not applied it yet; the projections' writes and
    their new checkpoints commit in one transaction. The checkpoint rows are locked first
    (in name order), so two runners never apply the same page; the one that waited reads
    the checkpoints the other left and goes on from there."""

    def __init__(self, engine: AsyncEngine, projections: Sequence[Projection],
                 batch_size: int = 1000):
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

    async def lag(self, names: Sequence[str] | None = None, cap: int = LAG_CAP) -> int:
        """How many events of the log the slowest of ``names`` (all by default) has not
        applied yet, counted up to ``cap``: 0 when the read models are current."""
        async with self._engine.connect() as conn:
            return (await conn.execute(text(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE position > ("
                "  SELECT COALESCE(min(COALESCE(c.position, 0)), 0) "
                "  FROM unnest(CAST(:names AS text[])) AS n(name) "
                "  LEFT JOIN projection_checkpoints c ON c.name = n.name) "
                "LIMIT :cap) AS behind"),
                {"names": list(names or self.names), "cap": cap})).scalar_one()

    async def catch_up(self, progress: Callable[[str, int], None] | None = None) -> int:
        """Apply every event not yet applied, to every projection, in one pass over the
        log; return how many (an event applied to three projections counts three)."""
        return await self._run(list(self._projections.values()), progress)

    async def run(self, stop: asyncio.Event, interval: float = 0.5) -> int:
        """The projector loop: catch up about every ``interval`` seconds until ``stop`` is
        set; return how many events were applied in all. A failing round is logged and
        retried after a growing pause (the database may be restarting); it never ends the
        loop."""
        applied = 0
        failures = 0
        while not stop.is_set():
            try:
                applied += await self.catch_up()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - logged and retried
                failures += 1
                log.warning("projection round failed", error_type=type(exc).__name__,
                            consecutive_failures=failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval * min(2 ** failures, 20))
        return applied

    async def rebuild(self, name: str, progress: Callable[[str, int], None] | None = None) -> int:
        """Empty one projection and apply the whole log to it alone; the others keep
        their rows and checkpoints."""
        projection = self._projections.get(name)
        if projection is None:
            raise KeyError(f"no projection {name!r}; known: {', '.join(self.names)}")
        async with self._engine.begin() as conn:
            await self._lock_checkpoints(conn, [name])
            await projection.reset(conn)
            await _save_checkpoints(conn, {name: 0})
        return await self._run([projection], progress)

    async def rebuild_all(self, progress: Callable[[str, int], None] | None = None) -> int:
        """Empty every projection and apply the whole log to all of them in one pass."""
        async with self._engine.begin() as conn:
            await self._lock_checkpoints(conn, self.names)
            for projection in self._projections.values():
                await projection.reset(conn)
            await _save_checkpoints(conn, dict.fromkeys(self.names, 0))
        return await self._run(list(self._projections.values()), progress)

    async def _run(self, projections: list[Projection],
                   progress: Callable[[str, int], None] | None) -> int:
        applied = 0
        failure: Exception | None = None
        active = list(projections)
        while active:
            async with self._engine.begin() as conn:
                # Lock the checkpoint rows: two runners never apply the same page.
                positions = await self._lock_checkpoints(conn, [p.name for p in active])
                page = await self._store.read_all(after_position=min(positions.values()),
                                                  limit=self._batch_size)
                if not page:
                    break
                last = page[-1].position
                moved: dict[str, int] = {}
                for projection in list(active):
                    mine = _after(page, positions[projection.name])
                    if not mine:
                        continue
                    try:
                        # A savepoint: a failing projection changes nothing and stops
                        # alone; the others go on (as when each ran its own pass).
                        async with conn.begin_nested():
                            await projection.apply_page(conn, mine)
                    except Exception as exc:  # noqa: BLE001 - logged, raised after the run
                        log.error("projection failed; its page is not applied",
                                  projection=projection.name, error_type=type(exc).__name__,
                                  from_position=mine[0].position, to_position=last)
                        active.remove(projection)
                        failure = failure or exc
                        continue
                    moved[projection.name] = last
                    applied += len(mine)
                await _save_checkpoints(conn, moved)
            if progress is not None:
                for name, position in moved.items():
                    progress(name, position)
        if failure is not None:
            raise failure
        return applied

    async def _lock_checkpoints(self, conn: AsyncConnection, names: list[str]) -> dict[str, int]:
        """The checkpoints of ``names``, created at 0 when missing, locked until commit
        (always in name order, so that two runners cannot deadlock)."""
        ordered = sorted(names)
        await conn.execute(text(
            "INSERT INTO projection_checkpoints (name, position) "
            "SELECT n, 0 FROM unnest(CAST(:names AS text[])) AS n ON CONFLICT (name) DO NOTHING"),
            {"names": ordered})
        rows = await conn.execute(text(
            "SELECT name, position FROM projection_checkpoints WHERE name = ANY(:names) "
            "ORDER BY name FOR UPDATE"), {"names": ordered})
        return {row.name: row.position for row in rows}


def _after(page: Sequence[StoredEvent], position: int) -> Sequence[StoredEvent]:
    """The events of ``page`` (in position order) after ``position``."""
    if not page or page[0].position > position:
        return page
    return page[bisect_right([e.position for e in page], position):]


async def _save_checkpoints(conn: AsyncConnection, positions: dict[str, int]) -> None:
    if not positions:
        return
    await conn.execute(
        text("INSERT INTO projection_checkpoints (name, position) "
             "SELECT * FROM unnest(CAST(:names AS text[]), CAST(:positions AS bigint[])) "
             "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()"),
        {"names": list(positions), "positions": list(positions.values())},
    )
