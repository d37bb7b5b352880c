"""The append-only event store: optimistic concurrency, idempotent appends, hash chain."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import exc, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.events import (
    Causation,
    ConcurrencyConflict,
    DuplicateEventConflict,
    NewEvent,
    StoredEvent,
    StoreError,
)
from store.hashing import GENESIS_HASH, canonical_json, event_hash
from store.schema import APPEND_LOCK_KEY, events_table

_COLUMNS = [c for c in events_table.c if c.name != "payload_jsonb"]


def row_to_event(row: Any) -> StoredEvent:
    return StoredEvent(
        position=row.position,
        case_id=row.case_id,
        version=row.version,
        event_id=row.event_id,
        event_type=row.event_type,
        schema_version=row.schema_version,
        payload=json.loads(row.payload),
        author_org=row.author_org,
        actor=row.actor,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        causation=Causation(
            row.causation_workflow_id, row.causation_run_id, row.causation_activity_id
        ),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class EventStore:
    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def append(
        self, case_id: str, expected_version: int | None, events: Sequence[NewEvent]
    ) -> list[StoredEvent]:
        """Append ``events`` to the case, all or nothing.

        ``expected_version`` is the case version the caller decided on (0: new case);
        None appends at the end without a check. Re-appending events already stored
        (same ids, same content) writes nothing and returns the stored events.
        """
        if not events:
            return []
        ids = [e.event_id for e in events]
        if len(set(ids)) != len(ids):
            raise ValueError("the same event id appears twice in one append")
        try:
            async with self._engine.begin() as conn:
                # Appends are serialised by a transaction-scoped advisory lock, held until
                # commit. Identity (sequence) values are handed out at INSERT time, not at
                # commit, so without it a reader following positions could see position 11
                # of a fast transaction and move past position 10 of a slow one that
                # commits later. With it, commit order equals position order.
                # https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
                # https://www.postgresql.org/docs/current/functions-sequence.html
                # Taken before reading the case, this also makes the version check and
                # prev_hash exact; UNIQUE (case_id, version) remains the backstop.
                await conn.execute(select(func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))
                already = await self._stored_with_ids(conn, ids)
                if already:
                    return _replayed(case_id, events, already)
                return await self._insert(conn, case_id, expected_version, events)
        except exc.IntegrityError as error:
            raise _translate_integrity_error(error, case_id, expected_version) from error
        except exc.SQLAlchemyError as error:
            raise StoreError(f"append to case {case_id!r} failed: {error}") from error

    async def current_version(self, case_id: str) -> int:
        query = select(func.coalesce(func.max(events_table.c.version), 0)).where(
            events_table.c.case_id == case_id
        )
        async with self._connect() as conn:
            return (await conn.execute(query)).scalar_one()

    async def read_stream(
        self, case_id: str, from_version: int = 1, limit: int = 500
    ) -> list[StoredEvent]:
        query = (
            select(*_COLUMNS)
            .where(events_table.c.case_id == case_id, events_table.c.version >= from_version)
            .order_by(events_table.c.version)
            .limit(limit)
        )
        async with self._connect() as conn:
            return [row_to_event(row) for row in await conn.execute(query)]

    async def read_case(self, case_id: str, page_size: int = 500) -> list[StoredEvent]:
        """The whole stream of a case, read page by page."""
        events: list[StoredEvent] = []
        while True:
            page = await self.read_stream(case_id, from_version=len(events) + 1,
                                          limit=page_size)
            events.extend(page)
            if len(page) < page_size:
                return events

    async def read_all(self, after_position: int = 0, limit: int = 500) -> list[StoredEvent]:
        """Events in global position order. Positions have gaps (rolled-back appends):
        continue from the last position returned, never from after_position + limit."""
        query = (
            select(*_COLUMNS)
            .where(events_table.c.position > after_position)
            .order_by(events_table.c.position)
            .limit(limit)
        )
        async with self._connect() as conn:
            return [row_to_event(row) for row in await conn.execute(query)]

    async def case_ids(self, after: str | None = None, limit: int = 1000) -> list[str]:
        """Distinct case ids in ascending order, paged by the last id returned."""
        query = (
            select(events_table.c.case_id).distinct().order_by(events_table.c.case_id).limit(limit)
        )
        if after is not None:
            query = query.where(events_table.c.case_id > after)
        async with self._connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def count_cases(self) -> int:
        query = select(func.count(events_table.c.case_id.distinct()))
        async with self._connect() as conn:
            return (await conn.execute(query)).scalar_one()

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.connect() as conn:
                yield conn
        except exc.SQLAlchemyError as error:
            raise StoreError(f"event store query failed: {error}") from error

    @staticmethod
    async def _stored_with_ids(
        conn: AsyncConnection, ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, StoredEvent]:
        rows = await conn.execute(select(*_COLUMNS).where(events_table.c.event_id.in_(ids)))
        return {row.event_id: row_to_event(row) for row in rows}

    @staticmethod
    async def _insert(
        conn: AsyncConnection,
        case_id: str,
        expected_version: int | None,
        events: Sequence[NewEvent],
    ) -> list[StoredEvent]:
        last = (
            await conn.execute(
                select(events_table.c.version, events_table.c.hash)
                .where(events_table.c.case_id == case_id)
                .order_by(events_table.c.version.desc())
                .limit(1)
            )
        ).first()
        version, prev_hash = (last.version, last.hash) if last else (0, GENESIS_HASH)
        if expected_version is not None and expected_version != version:
            raise ConcurrencyConflict(case_id, expected_version, version)

        stored = []
        for event in events:
            version += 1
            payload_json = canonical_json(event.payload)
            hash_ = event_hash(
                prev_hash,
                case_id=case_id,
                version=version,
                event_id=event.event_id,
                event_type=event.event_type,
                schema_version=event.schema_version,
                payload_json=payload_json,
                author_org=event.author_org,
                actor=event.actor,
                occurred_at=event.occurred_at,
                causation=event.causation,
            )
            # One row per statement: positions are then assigned in version order.
            row = (
                await conn.execute(
                    insert(events_table)
                    .values(
                        case_id=case_id,
                        version=version,
                        event_id=event.event_id,
                        event_type=event.event_type,
                        schema_version=event.schema_version,
                        payload=payload_json,
                        author_org=event.author_org,
                        actor=event.actor,
                        occurred_at=event.occurred_at,
                        causation_workflow_id=event.causation.workflow_id,
                        causation_run_id=event.causation.run_id,
                        causation_activity_id=event.causation.activity_id,
                        prev_hash=prev_hash,
                        hash=hash_,
                    )
                    .returning(*_COLUMNS)
                )
            ).one()
            stored.append(row_to_event(row))
            prev_hash = hash_
        return stored


def _replayed(
    case_id: str, events: Sequence[NewEvent], already: dict[uuid.UUID, StoredEvent]
) -> list[StoredEvent]:
    """The result of an append that was already done, or DuplicateEventConflict."""
    if len(already) != len(events):
        stored_id = next(e.event_id for e in events if e.event_id in already)
        raise DuplicateEventConflict(stored_id, "stored already, but appended with new events")
    result = [already[e.event_id] for e in events]
    for event, stored in zip(events, result, strict=True):
        if stored.case_id != case_id:
            raise DuplicateEventConflict(
                event.event_id, f"already stored in case {stored.case_id!r}, not {case_id!r}"
            )
        if not _same_content(event, stored):
            raise DuplicateEventConflict(event.event_id, "already stored with other content")
    versions = [s.version for s in result]
    if versions != list(range(versions[0], versions[0] + len(versions))):
        raise DuplicateEventConflict(
            events[0].event_id, f"already stored in another order (versions {versions})"
        )
    return result


def _same_content(event: NewEvent, stored: StoredEvent) -> bool:
    return (
        event.event_type == stored.event_type
        and event.schema_version == stored.schema_version
        and canonical_json(event.payload) == canonical_json(stored.payload)
        and event.author_org == stored.author_org
        and event.actor == stored.actor
        and event.occurred_at == stored.occurred_at
        and event.causation == stored.causation
    )


def _translate_integrity_error(
    error: exc.IntegrityError, case_id: str, expected_version: int | None
) -> StoreError:
    # The append lock makes these unreachable for appends through EventStore; they catch
    # writers that bypass it.
    constraint = getattr(error.orig.__cause__, "constraint_name", None)
    if constraint == "events_case_id_version_key":
        return ConcurrencyConflict(case_id, expected_version, None)
    if constraint == "events_event_id_key":
        return DuplicateEventConflict(None, "event id stored concurrently")
    return StoreError(f"append to case {case_id!r} violated {constraint}: {error.orig}")
