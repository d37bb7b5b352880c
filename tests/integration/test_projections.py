"""Projections catch up from a checkpoint exactly once and rebuild from zero."""

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
    """A small read model: how many events each case has."""

    name = "events_per_case"

    async def apply(self, conn, event):
        await conn.execute(
            text("INSERT INTO t_counts (case_id, n) VALUES (:c, 1) "
                 "ON CONFLICT (case_id) DO UPDATE SET n = t_counts.n + 1"),
            {"c": event.case_id},
        )

    async def reset(self, conn):
        await conn.execute(text("DELETE FROM t_counts"))


class FailsOnType(EventsPerCase):
    def __init__(self, bad_type: str):
        self.bad_type = bad_type

    async def apply(self, conn, event):
        await super().apply(conn, event)
        if event.event_type == self.bad_type:
            raise RuntimeError("projection bug")


def _event(kind: str = "test.happened") -> NewEvent:
    return NewEvent(uuid.uuid4(), kind, 1, {"n": 1}, "mission-rs", "coord.rs",
                    datetime.now(UTC))


@pytest.fixture
async def counts_table(engine):
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t_counts (case_id text PRIMARY KEY, n int)"))


async def _counts(engine) -> dict[str, int]:
    async with engine.connect() as conn:
        return dict((await conn.execute(text("SELECT case_id, n FROM t_counts"))).all())


async def test_catch_up_applies_each_event_once(engine, counts_table):
    store = EventStore(engine)
    await store.append("a", 0, [_event(), _event()])
    await store.append("b", 0, [_event()])
    runner = ProjectionRunner(engine, [EventsPerCase()], batch_size=2)
    assert await runner.catch_up() == 3
    assert await runner.catch_up() == 0  # nothing new: nothing applied twice
    await store.append("a", 2, [_event()])
    assert await runner.catch_up() == 1
    assert await _counts(engine) == {"a": 3, "b": 1}
    assert await runner.checkpoint("events_per_case") == 4


async def test_rebuild_from_zero_gives_the_same_read_model(engine, counts_table):
    store = EventStore(engine)
    for case in "abc":
        await store.append(case, 0, [_event(), _event()])
    runner = ProjectionRunner(engine, [EventsPerCase()])
    await runner.catch_up()
    before = await _counts(engine)
    seen = []
    assert await runner.rebuild("events_per_case", lambda n, p: seen.append(p)) == 6
    assert await _counts(engine) == before
    assert seen == [6]
    with pytest.raises(KeyError, match="no projection"):
        await runner.rebuild("nope")


async def test_a_failing_batch_changes_nothing_and_is_retried(engine, counts_table):
    store = EventStore(engine)
    await store.append("a", 0, [_event(), _event("test.poison"), _event()])
    with pytest.raises(RuntimeError):
        await ProjectionRunner(engine, [FailsOnType("test.poison")]).catch_up()
    assert await _counts(engine) == {}
    runner = ProjectionRunner(engine, [EventsPerCase()])
    assert await runner.checkpoint("events_per_case") == 0
    assert await runner.catch_up() == 3


async def test_two_runners_at_once_apply_every_event_exactly_once(engine, counts_table):
    store = EventStore(engine)
    for i in range(40):
        await store.append(f"c{i % 4}", None, [_event()])
    runners = [ProjectionRunner(engine, [EventsPerCase()], batch_size=3) for _ in range(2)]
    await asyncio.gather(*(r.catch_up() for r in runners))
    assert await _counts(engine) == {f"c{i}": 10 for i in range(4)}
