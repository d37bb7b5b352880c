"""Projections run in one pass over the log: each page applied exactly once, to every
projection that has not applied it, with its checkpoints in the same transaction; a
failing projection changes nothing and stops alone; a projection rebuilds alone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from store.event_store import EventStore
from store.events import NewEvent
from store.projections import ProjectionRunner


class EventsPerCase:
    """A small read model: how many events each case has, applied a page at a time as the
    read models are (one read and one write per page)."""

    def __init__(self, name: str = "events_per_case", table: str = "t_counts"):
        self.name = name
        self.table = table
        self.pages: list[tuple[int, int]] = []  # (first, last position) of each page

    async def apply_page(self, conn, events):
        self.pages.append((events[0].position, events[-1].position))
        counts: dict[str, int] = {}
        for event in events:
            counts[event.case_id] = counts.get(event.case_id, 0) + 1
        await conn.execute(
            text(f"INSERT INTO {self.table} (case_id, n) SELECT * FROM "
                 "unnest(CAST(:c AS text[]), CAST(:n AS int[])) "
                 f"ON CONFLICT (case_id) DO UPDATE SET n = {self.table}.n + EXCLUDED.n"),
            {"c": list(counts), "n": list(counts.values())},
        )

    async def reset(self, conn):
        await conn.execute(text(f"DELETE FROM {self.table}"))


class FailsOnType(EventsPerCase):
    """Writes its page, then fails on a poison event: the write must not survive."""

    def __init__(self, bad_type: str, name: str = "events_per_case", table: str = "t_counts"):
        super().__init__(name, table)
        self.bad_type = bad_type

    async def apply_page(self, conn, events):
        await super().apply_page(conn, events)
        if any(event.event_type == self.bad_type for event in events):
            raise RuntimeError("projection bug")


def _event(kind: str = "test.happened") -> NewEvent:
    return NewEvent(uuid.uuid4(), kind, 1, {"n": 1}, "mission-rs", "coord.rs",
                    datetime.now(UTC))


@pytest.fixture
async def counts_table(engine):
    async with engine.begin() as conn:
        for table in ("t_counts", "t_other"):
            await conn.execute(text(f"CREATE TABLE {table} (case_id text PRIMARY KEY, n int)"))


async def _positions(store: EventStore) -> list[int]:
    """The positions of the log (not 1, 2, 3…: they may have gaps and start anywhere)."""
    return [e.position for e in await store.read_all(after_position=0, limit=10_000)]


async def _counts(engine, table: str = "t_counts") -> dict[str, int]:
    async with engine.connect() as conn:
        return dict((await conn.execute(text(f"SELECT case_id, n FROM {table}"))).all())


async def test_catch_up_applies_each_event_once(engine, counts_table):
    store = EventStore(engine)
    await store.append("a", 0, [_event(), _event()])
    await store.append("b", 0, [_event()])
    runner = ProjectionRunner(engine, [EventsPerCase()], batch_size=2)
    assert await runner.lag() == 3
    assert await runner.catch_up() == 3
    assert await runner.catch_up() == 0  # nothing new: nothing applied twice
    assert await runner.lag() == 0
    await store.append("a", 2, [_event()])
    assert await runner.lag() == 1
    assert await runner.catch_up() == 1
    assert await _counts(engine) == {"a": 3, "b": 1}
    assert await runner.checkpoint("events_per_case") == (await _positions(store))[-1]


async def test_one_pass_reads_each_page_once_for_every_projection(engine, counts_table):
    """Two projections, one read of each page: both get the same pages and checkpoints."""
    store = EventStore(engine)
    for i in range(7):
        await store.append(f"c{i % 2}", None, [_event()])
    first, second = EventsPerCase(), EventsPerCase("other", "t_other")
    runner = ProjectionRunner(engine, [first, second], batch_size=3)
    reads = []
    read_all = runner._store.read_all

    async def counted(*args, **kwargs):
        reads.append(kwargs)
        return await read_all(*args, **kwargs)

    runner._store.read_all = counted
    assert await runner.catch_up() == 14
    assert len(reads) == 4  # three pages and the empty read that ends the pass
    p = await _positions(store)
    assert first.pages == second.pages == [(p[0], p[2]), (p[3], p[5]), (p[6], p[6])]
    assert await _counts(engine) == await _counts(engine, "t_other") == {"c0": 4, "c1": 3}
    assert {n: await runner.checkpoint(n) for n in runner.names} == {
        "events_per_case": p[-1], "other": p[-1]}


async def test_rebuild_from_zero_gives_the_same_read_model(engine, counts_table):
    store = EventStore(engine)
    for case in "abc":
        await store.append(case, 0, [_event(), _event()])
    other = EventsPerCase("other", "t_other")
    runner = ProjectionRunner(engine, [EventsPerCase(), other])
    await runner.catch_up()
    before = await _counts(engine)
    seen = []
    assert await runner.rebuild("events_per_case", lambda n, p: seen.append((n, p))) == 6
    assert await _counts(engine) == before
    # progress: the rebuilt projection's only
    assert seen == [("events_per_case", (await _positions(store))[-1])]
    assert len(other.pages) == 1  # the other projection is left alone
    with pytest.raises(KeyError, match="no projection"):
        await runner.rebuild("nope")


async def test_projections_at_different_checkpoints_catch_up_in_one_pass(engine, counts_table):
    """After one projection was rebuilt (or added), the pass starts at the slowest
    checkpoint and each projection gets only the events it has not applied."""
    store = EventStore(engine)
    for _ in range(5):
        await store.append("a", None, [_event()])
    await ProjectionRunner(engine, [EventsPerCase()]).catch_up()
    for _ in range(3):
        await store.append("a", None, [_event()])
    first, second = EventsPerCase(), EventsPerCase("other", "t_other")
    assert await ProjectionRunner(engine, [first, second], batch_size=4).catch_up() == 3 + 8
    p = await _positions(store)
    assert first.pages == [(p[5], p[7])]
    assert second.pages == [(p[0], p[3]), (p[4], p[7])]
    assert await _counts(engine) == await _counts(engine, "t_other") == {"a": 8}


async def test_a_failing_batch_changes_nothing_and_is_retried(engine, counts_table):
    """Crash mid-batch: the failing projection's rows and checkpoint are as before the
    batch; a projection beside it goes on; the next run applies the batch once."""
    store = EventStore(engine)
    await store.append("a", 0, [_event(), _event("test.poison"), _event()])
    healthy = EventsPerCase("other", "t_other")
    with pytest.raises(RuntimeError, match="projection bug"):
        await ProjectionRunner(engine, [FailsOnType("test.poison"), healthy]).catch_up()
    assert await _counts(engine) == {}
    assert await _counts(engine, "t_other") == {"a": 3}
    runner = ProjectionRunner(engine, [EventsPerCase(), EventsPerCase("other", "t_other")])
    assert await runner.checkpoint("events_per_case") == 0
    assert await runner.checkpoint("other") == (await _positions(store))[-1]
    assert await runner.catch_up() == 3
    assert await _counts(engine) == await _counts(engine, "t_other") == {"a": 3}


async def test_two_runners_at_once_apply_every_event_exactly_once(engine, counts_table):
    store = EventStore(engine)
    for i in range(40):
        await store.append(f"c{i % 4}", None, [_event()])
    runners = [ProjectionRunner(engine, [EventsPerCase(), EventsPerCase("other", "t_other")],
                                batch_size=3) for _ in range(3)]
    applied = await asyncio.gather(*(r.catch_up() for r in runners))
    assert sum(applied) == 2 * 40  # each event applied once, to each projection
    assert await _counts(engine) == await _counts(engine, "t_other") == {
        f"c{i}": 10 for i in range(4)}


async def test_a_rebuild_beside_a_running_projector_applies_every_event_once(engine,
                                                                             counts_table):
    store = EventStore(engine)
    for i in range(30):
        await store.append(f"c{i % 3}", None, [_event()])
    projector = ProjectionRunner(engine, [EventsPerCase()], batch_size=2)
    await projector.catch_up()
    stop = asyncio.Event()
    loop = asyncio.create_task(projector.run(stop, interval=0.01))
    rebuilt = await ProjectionRunner(engine, [EventsPerCase()], batch_size=2).rebuild(
        "events_per_case")
    stop.set()
    await loop
    assert rebuilt <= 30  # the projector may have applied some of the pages meanwhile
    assert await _counts(engine) == {f"c{i}": 10 for i in range(3)}
    assert await projector.checkpoint("events_per_case") == (await _positions(store))[-1]
