"""The append-only event store: optimistic concurrency, idempotent appends, hash chain.

An append is one INSERT statement in its own implicit transaction (one round trip when
the case's head is known, two when it is read first), with no lock of the store's own
(decision 0051):

- the case's chain: the statement inserts versions head+1… only if the head it hashed
  on (version and hash) is stored, and UNIQUE (case_id, version) lets one successor of a
  version exist. A concurrent writer of the same case waits on that index entry and then
  fails; the store reads the head again and either reports ConcurrencyConflict (the
  caller expected a version) or hashes on the new head (appending at the end).
- idempotency: a stored event id makes the INSERT fail (UNIQUE event_id); the store
  then compares the stored events with the ones sent (same content: the stored events
  are returned; other content: DuplicateEventConflict).
- readers of the whole log never skip a late commit: a row's position is its
  transaction's id << POSITION_SHIFT plus its rank in the transaction (a trigger sets
  it, migration 0006), and read_all returns only positions below the oldest transaction
  still in flight (pg_snapshot_xmin << POSITION_SHIFT). A transaction that commits
  later has an id at or above that horizon, so all its positions are above every
  position already returned.
  https://www.postgresql.org/docs/current/functions-info.html#FUNCTIONS-PG-SNAPSHOT

The hot path speaks asyncpg directly (the engine's pooled driver connection): SQLAlchemy
Core's compilation and its explicit BEGIN/COMMIT would double the round trips.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC
from typing import Any

import asyncpg
from sqlalchemy import exc, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.errors import StoreUnavailable, unavailable
from store.events import (
    Causation,
    ConcurrencyConflict,
    DuplicateEventConflict,
    NewEvent,
    StoredEvent,
    StoreError,
)
from store.hashing import GENESIS_HASH, canonical_json, event_hash
from store.schema import POSITION_SHIFT, events_table

_COLUMNS = [c for c in events_table.c if c.name != "payload_jsonb"]
_SELECT = ", ".join(f"e.{c.name}" for c in _COLUMNS)

_HEAD = "SELECT version, hash FROM events WHERE case_id = $1 ORDER BY version DESC LIMIT 1"

# Rows in batch order (ORDER BY n): positions follow versions within an append. The head
# check is the guard against hashing on a head that is not stored (a stale cache);
# UNIQUE (case_id, version) is the guard against a head that is no longer the last.
_INSERT = """
INSERT INTO events (case_id, version, event_id, event_type, schema_version, payload,
                    author_org, actor, occurred_at, causation_workflow_id,
                    causation_run_id, causation_activity_id, prev_hash, hash)
SELECT $1, $2::int + b.n::int, b.event_id, b.event_type, b.schema_version, b.payload,
       b.author_org, b.actor, b.occurred_at, b.workflow_id, b.run_id, b.activity_id,
       b.prev_hash, b.hash
FROM unnest($4::uuid[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[],
            $10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::text[],
            $15::text[])
     WITH ORDINALITY AS b(event_id, event_type, schema_version, payload, author_org, actor,
                          occurred_at, workflow_id, run_id, activity_id, prev_hash, hash, n)
WHERE $2::int = 0
   OR EXISTS (SELECT 1 FROM events h WHERE h.case_id = $1 AND h.version = $2 AND h.hash = $3)
ORDER BY b.n
RETURNING version, position, recorded_at
"""

_BY_IDS = f"SELECT {_SELECT} FROM events e WHERE e.event_id = ANY($1::uuid[])"

_STREAM = (
    f"SELECT {_SELECT} FROM events e WHERE e.case_id = $1 AND e.version >= $2"
    " ORDER BY e.version LIMIT $3"
)

# Positions below this belong to transactions that have ended: none can still appear.
_READ_ALL = f"""
SELECT {_SELECT} FROM events e
WHERE e.position > $1
  AND e.position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {POSITION_SHIFT})
ORDER BY e.position
LIMIT $2
"""

_HEADS_REMEMBERED = 10_000
_MAX_ATTEMPTS = 100


def row_to_event(row: Any) -> StoredEvent:
    return StoredEvent(
        position=row["position"],
        case_id=row["case_id"],
        version=row["version"],
        event_id=uuid.UUID(bytes=row["event_id"].bytes),
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        payload=json.loads(row["payload"]),
        author_org=row["author_org"],
        actor=row["actor"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        causation=Causation(
            row["causation_workflow_id"], row["causation_run_id"],
            row["causation_activity_id"]
        ),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class EventStore:
    def __init__(self, engine: AsyncEngine):
        self._engine = engine
        # case id → (version, hash) of the last event this store wrote or saw at the end
        # of the case: an append at that version then skips reading the head. Only a
        # hint: the INSERT checks it (see _INSERT).
        self._heads: OrderedDict[str, tuple[int, str]] = OrderedDict()

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
        payloads = [canonical_json(e.payload) for e in events]
        async with self._driver() as pg:
            return await self._append(pg, case_id, expected_version, events, ids, payloads)

    async def _append(
        self,
        pg: asyncpg.Connection,
        case_id: str,
        expected_version: int | None,
        events: Sequence[NewEvent],
        ids: list[uuid.UUID],
        payloads: list[str],
    ) -> list[StoredEvent]:
        head = self._heads.get(case_id)
        if head is not None and expected_version not in (None, head[0]):
            head = None  # the caller knows of another version: ask the database
        for _ in range(_MAX_ATTEMPTS):
            if head is None:
                row = await pg.fetchrow(_HEAD, case_id)
                head = (row["version"], row["hash"]) if row else (0, GENESIS_HASH)
                if expected_version is not None and expected_version != head[0]:
                    already = await _stored_with_ids(pg, ids)
                    if already:
                        return _replayed(case_id, events, already)
                    raise ConcurrencyConflict(case_id, expected_version, head[0])
            chained = _chain(case_id, head, events, payloads)
            try:
                rows = await pg.fetch(_INSERT, case_id, head[0], head[1], *_arrays(chained))
            except asyncpg.UniqueViolationError as error:
                already = await _stored_with_ids(pg, ids)
                if already:
                    return _replayed(case_id, events, already)
                if error.constraint_name != "events_case_id_version_key":
                    raise StoreError(
                        f"append to case {case_id!r} violated {error.constraint_name}"
                    ) from error
                head = None  # another append took the next version: read the head again
                continue
            if not rows:
                head = None  # the remembered head is not stored (another database?)
                self._heads.pop(case_id, None)
                continue
            rows = sorted(rows, key=lambda r: r["version"])
            result = [
                StoredEvent(position=row["position"], recorded_at=row["recorded_at"], **r.fields)
                for row, r in zip(rows, chained, strict=True)
            ]
            self._remember(case_id, result[-1].version, result[-1].hash)
            return result
        raise StoreError(f"append to case {case_id!r}: the case kept moving on; gave up")

    def _remember(self, case_id: str, version: int, hash_: str) -> None:
        self._heads[case_id] = (version, hash_)
        self._heads.move_to_end(case_id)
        if len(self._heads) > _HEADS_REMEMBERED:
            self._heads.popitem(last=False)

    async def current_version(self, case_id: str) -> int:
        async with self._driver() as pg:
            row = await pg.fetchrow(_HEAD, case_id)
        return row["version"] if row else 0

    async def read_stream(
        self, case_id: str, from_version: int = 1, limit: int = 500
    ) -> list[StoredEvent]:
        async with self._driver() as pg:
            rows = await pg.fetch(_STREAM, case_id, from_version, limit)
        return [row_to_event(row) for row in rows]

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
        """Events in global position order, after ``after_position``.

        Only positions of transactions that have ended are returned: an append still in
        flight holds back every position after its own, so a reader that continues from
        the last position returned never skips a late commit. Positions have gaps
        (rolled-back appends, and the transaction-id encoding): continue from the last
        position returned, never from after_position + limit. One long write
        transaction anywhere in the PostgreSQL cluster holds the readers back until it
        ends.
        """
        async with self._driver() as pg:
            rows = await pg.fetch(_READ_ALL, after_position, limit)
        return [row_to_event(row) for row in rows]

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
            raise _failed(error) from error

    @asynccontextmanager
    async def _driver(self) -> AsyncIterator[asyncpg.Connection]:
        """The pooled connection's asyncpg connection, outside any transaction: each
        statement commits on its own."""
        try:
            async with self._engine.connect() as conn:
                raw = await conn.get_raw_connection()
                try:
                    yield raw.driver_connection
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
                    if not isinstance(error, asyncpg.PostgresError):
                        await conn.invalidate()  # the connection itself failed
                    raise _failed(error) from error
        except exc.SQLAlchemyError as error:
            raise _failed(error) from error
        except OSError as error:  # asyncpg cannot connect: a plain ConnectionRefusedError
            raise _failed(error) from error


def _failed(error: BaseException) -> StoreError:
    """The store's error for a driver failure: ``StoreUnavailable`` when a retry can cure
    it (store/errors.py), else a ``StoreError`` naming the failure's type only (a driver's
    message may quote the values of the row it refused)."""
    if unavailable(error):
        return StoreUnavailable("event store")
    return StoreError(f"event store query failed: {type(error).__name__}")


class _Row:
    """One event of an append, chained: what the INSERT sends and the store returns."""

    __slots__ = ("fields", "payload_json")

    def __init__(self, fields: dict[str, Any], payload_json: str):
        self.fields = fields
        self.payload_json = payload_json


def _chain(
    case_id: str, head: tuple[int, str], events: Sequence[NewEvent], payloads: list[str]
) -> list[_Row]:
    """``events`` appended after ``head``, hashes chained."""
    version, prev_hash = head
    chained = []
    for event, payload_json in zip(events, payloads, strict=True):
        version += 1
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
        fields = dict(
            case_id=case_id,
            version=version,
            event_id=event.event_id,
            event_type=event.event_type,
            schema_version=event.schema_version,
            payload=json.loads(payload_json),  # as a reader gets it back
            author_org=event.author_org,
            actor=event.actor,
            occurred_at=event.occurred_at.astimezone(UTC),
            causation=event.causation,
            prev_hash=prev_hash,
            hash=hash_,
        )
        chained.append(_Row(fields, payload_json))
        prev_hash = hash_
    return chained


def _arrays(chained: list[_Row]) -> list[list[Any]]:
    """The INSERT's parameters $4…$15: one array per column."""
    f = [r.fields for r in chained]
    return [
        [x["event_id"] for x in f],
        [x["event_type"] for x in f],
        [x["schema_version"] for x in f],
        [r.payload_json for r in chained],
        [x["author_org"] for x in f],
        [x["actor"] for x in f],
        [x["occurred_at"] for x in f],
        [x["causation"].workflow_id for x in f],
        [x["causation"].run_id for x in f],
        [x["causation"].activity_id for x in f],
        [x["prev_hash"] for x in f],
        [x["hash"] for x in f],
    ]


async def _stored_with_ids(
    pg: asyncpg.Connection, ids: list[uuid.UUID]
) -> dict[uuid.UUID, StoredEvent]:
    rows = await pg.fetch(_BY_IDS, ids)
    return {event.event_id: event for event in map(row_to_event, rows)}


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
