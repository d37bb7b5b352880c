"""Retention: identities of cases closed longer ago than the period are listed, then erased
on confirmation; recently closed and active cases never are."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from store.event_store import EventStore
from store.keys import Key, Keyring
from store.retention import (
    RETENTION_ACTOR,
    ExpiredCase,
    erase_expired,
    expired_cases,
    years_after,
)
from store.vault import (
    IDENTITY_ERASED,
    ErasedPerson,
    PersonRecord,
    PersonVault,
    PersonView,
    ReadPurpose,
)
from store.verify import verify_chain

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CLOSED = {
    "case-closed-6y": datetime(2020, 11, 1, tzinfo=UTC),
    "case-closed-1y": datetime(2025, 11, 1, tzinfo=UTC),
    "case-closed-5y": datetime(2021, 11, 28, 12, 0, tzinfo=UTC),  # exactly 5 years: expired
    "case-active": None,
}
ORG = "homeward"


async def closed_at(case_id: str) -> datetime | None:
    return CLOSED[case_id]


@pytest.fixture
async def vault(engine: AsyncEngine) -> PersonVault:
    vault = PersonVault(engine, Keyring(Key.generate()))
    for case_id in CLOSED:
        await vault.record(case_id, PersonRecord(family_name="Marker"), by_org=ORG, by_actor="u-1")
    return vault


async def test_lists_only_cases_closed_longer_than_the_period(vault: PersonVault) -> None:
    expired = await expired_cases(vault, closed_at, retention_years=5, now=NOW)

    assert expired == [
        ExpiredCase(
            "case-closed-5y", CLOSED["case-closed-5y"], datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
        ),
        ExpiredCase("case-closed-6y", CLOSED["case-closed-6y"], datetime(2025, 11, 1, tzinfo=UTC)),
    ]
    assert [
        c.case_id for c in await expired_cases(vault, closed_at, retention_years=0, now=NOW)
    ] == [
        "case-closed-1y",
        "case-closed-5y",
        "case-closed-6y",
    ]  # active cases never, whatever the period


async def test_erases_the_confirmed_cases_with_progress_and_leaves_the_others(
    vault: PersonVault, engine: AsyncEngine
) -> None:
    expired = await expired_cases(vault, closed_at, now=NOW)
    progress: list[tuple[int, int, str]] = []

    run = await erase_expired(
        vault,
        expired,
        closed_at,
        by_org=ORG,
        now=NOW,
        progress=lambda done, total, case_id: progress.append((done, total, case_id)),
    )

    assert [e.case_id for e in run.erased] == ["case-closed-5y", "case-closed-6y"]
    assert run.skipped == []
    assert progress == [(1, 2, "case-closed-5y"), (2, 2, "case-closed-6y")]
    for case_id in ("case-closed-5y", "case-closed-6y"):
        assert await vault.is_erased(case_id)
        [*_, event] = await EventStore(engine).read_stream(case_id)
        assert event.event_type == IDENTITY_ERASED
        assert event.payload == {"reason": "retention_expired"}
        assert (event.author_org, event.actor) == (ORG, RETENTION_ACTOR)
    for case_id in ("case-closed-1y", "case-active"):
        view = await vault.read(
            case_id, purpose=ReadPurpose.CASE_REVIEW, reader_org=ORG, reader_actor="u-1"
        )
        assert isinstance(view, PersonView) and view.record.family_name == "Marker"
    assert (await verify_chain(engine)).ok
    assert await expired_cases(vault, closed_at, now=NOW) == []


async def test_a_listed_case_that_reopened_or_moved_is_skipped_not_erased(vault) -> None:
    expired = await expired_cases(vault, closed_at, now=NOW)
    changed = {**CLOSED, "case-closed-6y": None, "case-closed-5y": datetime(2024, 1, 1, tzinfo=UTC)}

    async def changed_closed_at(case_id: str) -> datetime | None:
        return changed[case_id]

    run = await erase_expired(vault, expired, changed_closed_at, by_org=ORG, now=NOW)

    assert run.erased == [] and run.skipped == ["case-closed-5y", "case-closed-6y"]
    assert not await vault.is_erased("case-closed-6y")
    assert not await vault.is_erased("case-closed-5y")


async def test_an_already_erased_case_is_not_listed(vault) -> None:
    async def never_active(case_id: str) -> bool:
        return False

    await vault.erase(
        "case-closed-6y", "person_request", by_org=ORG, by_actor="u-1", is_case_active=never_active
    )
    result = await vault.read(
        "case-closed-6y", purpose="case_review", reader_org=ORG, reader_actor="u-1"
    )
    assert isinstance(result, ErasedPerson)
    assert [c.case_id for c in await expired_cases(vault, closed_at, now=NOW)] == ["case-closed-5y"]


def test_years_after_handles_29_february() -> None:
    assert years_after(datetime(2024, 2, 29, tzinfo=UTC), 5) == datetime(2029, 2, 28, tzinfo=UTC)
    assert years_after(datetime(2024, 2, 29, tzinfo=UTC), 4) == datetime(2028, 2, 29, tzinfo=UTC)


async def test_a_negative_period_is_refused(vault) -> None:
    with pytest.raises(ValueError, match="negative"):
        await expired_cases(vault, closed_at, retention_years=-1)
