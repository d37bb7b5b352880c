"""verify_chain finds the first broken link of the per-case hash chains."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from store.event_store import EventStore
from store.events import NewEvent
from store.verify import BrokenLink, main_verify, run_verify, verify_chain


def new_event(n: int) -> NewEvent:
    return NewEvent(
        event_id=uuid.uuid4(),
        event_type="step_recorded",
        schema_version=1,
        payload={"step": n},
        author_org="org-sending",
        actor="user-1",
        occurred_at=datetime(2025, 3, 1, 9, n % 60, tzinfo=UTC),
    )


@pytest.fixture
async def three_cases(engine: AsyncEngine) -> EventStore:
    store = EventStore(engine)
    for case_id in ("case-a", "case-b", "case-c"):
        await store.append(case_id, 0, [new_event(n) for n in range(4)])
    return store


async def tamper(engine: AsyncEngine, statement: str) -> None:
    """What a superuser (or the table owner) can still do: switch the guard off."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await conn.exec_driver_sql(statement)
        await conn.exec_driver_sql("ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only")


async def test_intact_chains_verify(engine: AsyncEngine, three_cases: EventStore) -> None:
    calls: list[tuple[int, int]] = []

    report = await verify_chain(engine, progress=lambda done, total: calls.append((done, total)))

    assert report.ok
    assert (report.cases_checked, report.events_checked) == (3, 12)
    assert calls == [(1, 3), (2, 3), (3, 3)]


async def test_empty_store_verifies(engine: AsyncEngine) -> None:
    report = await verify_chain(engine)
    assert report.ok and report.cases_checked == 0 and report.events_checked == 0


async def test_printing_helper_reports_progress_and_success(
    engine: AsyncEngine, three_cases: EventStore
) -> None:
    out = io.StringIO()

    assert await run_verify(engine, out, progress_every=2) == 0

    lines = out.getvalue().splitlines()
    assert lines == ["verified 2/3 cases", "OK: hash chains intact (3 cases, 12 events)"]


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("UPDATE events SET payload = '{\"step\":99}'", "hash mismatch"),
        ("UPDATE events SET payload = '{\"step\": 2}'", "hash mismatch"),  # same JSON value
        ("UPDATE events SET actor = 'someone-else'", "hash mismatch"),
        ("UPDATE events SET occurred_at = occurred_at + interval '1 microsecond'", "hash mismatch"),
        ("UPDATE events SET prev_hash = repeat('1', 64)", "prev_hash"),
        ("DELETE FROM events", "version gap"),
    ],
)
async def test_tampered_event_is_found(
    engine: AsyncEngine, three_cases: EventStore, statement: str, reason: str
) -> None:
    await tamper(engine, f"{statement} WHERE case_id = 'case-b' AND version = 3")

    report = await verify_chain(engine)

    assert not report.ok
    assert report.broken is not None
    assert (report.broken.case_id, report.broken.version) == (
        "case-b",
        4 if "DELETE" in statement else 3,
    )
    assert reason in report.broken.reason
    assert report.cases_checked == 2


async def test_rewritten_payload_and_hash_breaks_the_next_link(
    engine: AsyncEngine, three_cases: EventStore
) -> None:
    await tamper(
        engine,
        "UPDATE events SET payload = '{}', hash = repeat('f', 64)"
        " WHERE case_id = 'case-c' AND version = 2",
    )
    report = await verify_chain(engine)
    assert report.broken == BrokenLink("case-c", 2, report.broken.reason)
    assert "hash mismatch" in report.broken.reason


async def test_printing_helper_and_cli_entry_exit_1_when_tampered(
    engine: AsyncEngine, database_url: str, three_cases: EventStore
) -> None:
    await tamper(
        engine, "UPDATE events SET payload = '{}' WHERE case_id = 'case-a' AND version = 1"
    )
    out = io.StringIO()

    assert await run_verify(engine, out) == 1
    # The synchronous CLI entry runs its own event loop, hence the thread.
    cli_out = io.StringIO()
    assert await asyncio.to_thread(main_verify, database_url, cli_out) == 1

    for printed in (out.getvalue(), cli_out.getvalue()):
        assert printed.startswith("TAMPERED: case 'case-a' version 1: hash mismatch")
