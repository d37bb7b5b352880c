"""A registration's identity staged before its case begins (decision 0054): stored without
touching the stream, recorded once by ``confirm`` however often it runs, never written
over by a retry, destroyed by ``discard`` only while unconfirmed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.event_store import EventStore
from store.keys import Key, Keyring
from store.vault import (
    IDENTITY_RECORDED,
    PersonNotFound,
    PersonRecord,
    PersonVault,
    PersonView,
    ReadPurpose,
    Staged,
    person_fields,
    person_keys,
)

CASE = "c-0123456789abcdef0123"
ORG = "mission-rs"
ACTOR = "coord.rs"
REFERRAL = {"sending_mission": ORG, "receiving_mission": "mission-md",
            "border_partner": "ngo-md-border", "host_country": "RS",
            "destination_country": "MD", "age_category": "18_24", "witness": False}
HERS = PersonRecord(given_names="Marker-Given Ana", nationality="MD")
OTHER = PersonRecord(given_names="Marker-Someone Else", family_name="Marker-Else")


@pytest.fixture
def vault(engine: AsyncEngine) -> PersonVault:
    return PersonVault(engine, Keyring(Key.generate()))


async def _stage(vault: PersonVault, record: PersonRecord = HERS, case_id: str = CASE):
    return await vault.stage(case_id, record, referral=REFERRAL, by_org=ORG, by_actor=ACTOR)


async def _types(engine: AsyncEngine, case_id: str = CASE) -> list[str]:
    return [e.event_type for e in await EventStore(engine).read_stream(case_id)]


async def _given_names(vault: PersonVault, case_id: str = CASE) -> str | None:
    view = await vault.read(case_id, purpose=ReadPurpose.CASE_REVIEW, reader_org=ORG,
                            reader_actor=ACTOR, groups=["names"])
    assert isinstance(view, PersonView)
    return view.record.given_names


async def _rows(engine: AsyncEngine, table, case_id: str = CASE) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(
            table.c.case_id == case_id))).scalar_one()


async def test_staging_stores_the_identity_without_touching_the_stream(engine, vault):
    staged = await _stage(vault)
    assert staged.outcome is Staged.NEW
    assert staged.registration is not None and not staged.registration.confirmed
    assert dict(staged.registration.referral) == REFERRAL
    assert await _types(engine) == []  # the case has not begun: no event yet
    assert await _rows(engine, person_fields) == 2


async def test_confirm_appends_identity_recorded_once_however_often_it_runs(engine, vault):
    await _stage(vault)
    assert all(await asyncio.gather(*(vault.confirm(CASE) for _ in range(5))))
    assert await vault.confirm(CASE)
    assert await _types(engine) == [IDENTITY_RECORDED]
    [event] = await EventStore(engine).read_stream(CASE)
    assert event.payload == {"fields": ["given_names", "nationality"], "notes": []}
    assert (event.author_org, event.actor) == (ORG, ACTOR)
    registration = await vault.registration(CASE)
    assert registration is not None and registration.confirmed


async def test_a_retry_finds_the_staged_identity_and_never_writes_over_it(engine, vault):
    await _stage(vault)
    again = await _stage(vault, OTHER)
    assert again.outcome is Staged.PENDING
    await vault.confirm(CASE)
    after = await _stage(vault, OTHER)  # a retry after the registration was answered
    assert after.outcome is Staged.PENDING and after.registration.confirmed
    assert await _given_names(vault) == HERS.given_names
    assert (await _types(engine)).count(IDENTITY_RECORDED) == 1


async def test_concurrent_attempts_stage_one_identity(engine, vault):
    outcomes = await asyncio.gather(*(_stage(vault, r) for r in [HERS, OTHER] * 5))
    assert sorted(o.outcome.value for o in outcomes) == ["new"] + ["pending"] * 9
    winner = next(o for o in outcomes if o.outcome is Staged.NEW)
    assert winner.registration is not None
    await vault.confirm(CASE)
    assert (await _types(engine)).count(IDENTITY_RECORDED) == 1


async def test_an_identity_the_vault_held_already_is_left_alone(engine, vault):
    await vault.record(CASE, HERS, by_org=ORG, by_actor=ACTOR)  # e.g. PUT after a case
    staged = await _stage(vault, OTHER)
    assert staged.outcome is Staged.HELD and staged.registration is None
    assert await vault.registration(CASE) is None
    assert await _given_names(vault) == HERS.given_names


async def test_discard_destroys_an_unconfirmed_identity_only(engine, vault):
    await _stage(vault)
    await _stage(vault, case_id="c-other")
    await vault.confirm("c-other")
    assert await vault.discard(CASE)
    assert not await vault.discard("c-other")  # confirmed: its case began
    assert await vault.registration(CASE) is None
    assert (await _rows(engine, person_keys), await _rows(engine, person_fields)) == (0, 0)
    with pytest.raises(PersonNotFound):
        await _given_names(vault)
    assert not await vault.confirm(CASE)  # nothing staged any more
    assert await _types(engine) == []
    assert await _given_names(vault, "c-other") == HERS.given_names
    # A retry after the discard stages it anew.
    assert (await _stage(vault)).outcome is Staged.NEW


async def test_unconfirmed_lists_only_idle_unconfirmed_registrations(engine, vault):
    await _stage(vault)
    await _stage(vault, case_id="c-confirmed")
    await vault.confirm("c-confirmed")
    assert [r.case_id for r in await vault.unconfirmed(timedelta(0))] == [CASE]
    assert await vault.unconfirmed(timedelta(minutes=5)) == []
    # An attempt touching it makes it busy again; discard with a grace leaves it alone.
    assert not await vault.discard(CASE, idle_for=timedelta(minutes=5))
    assert await vault.discard(CASE, idle_for=timedelta(0))


async def test_an_identity_erased_before_its_confirmation_is_not_recorded(engine, vault):
    async def inactive(_case_id: str) -> bool:
        return False

    await _stage(vault)
    await vault.erase(CASE, "recorded_in_error", by_org=ORG, by_actor=ACTOR,
                      is_case_active=inactive)
    assert await vault.confirm(CASE)
    assert IDENTITY_RECORDED not in await _types(engine)
