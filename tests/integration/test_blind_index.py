"""The vault's blind index (decision 0070): the same person registered again is
recognised, by her name and birth date (written with other accents, case, spacing or
order) or by a document number, and nobody else is; the table holds keyed digests only;
they go with her identity (erasure, a discarded registration) and survive a master key
rotation, before, during and after it."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.blind_index import MatchKind, person_blind_index
from store.keys import Key, Keyring
from store.vault import ErasureReason, PersonRecord, PersonVault, reindex, rotate_master_key

BORN = date(1994, 3, 19)
NAME_AND_BIRTH = (MatchKind.NAME_AND_BIRTH_DATE,)


def _person(given="Ana-Maria", family="Popescu", born=BORN, documents=(), **more):
    return PersonRecord(given_names=given, family_name=family, date_of_birth=born,
                        identity_documents=[{"kind": k, "number": n, "issuing_country": c}
                                            for k, n, c in documents], **more)


async def _record(vault: PersonVault, case_id: str, record: PersonRecord) -> None:
    await vault.record(case_id, record, by_org="mission-rs", by_actor="coord.rs")


async def _matches(vault: PersonVault, case_id: str) -> dict[str, tuple[MatchKind, ...]]:
    return {m.case_id: m.kinds for m in await vault.earlier_cases(case_id)}


async def _rows(engine: AsyncEngine) -> list:
    async with engine.connect() as conn:
        return (await conn.execute(select(person_blind_index))).all()


@pytest.fixture
def vault(engine: AsyncEngine) -> PersonVault:
    return PersonVault(engine, Keyring(Key.generate()))


async def _inactive(_case_id: str) -> bool:
    return False


async def test_the_same_person_written_otherwise_is_recognised(vault, engine):
    await _record(vault, "c-first-case", _person(
        documents=[("passport", "AB 123-456", "MD")], nationality="MD"))
    await _record(vault, "c-again-case", _person(given="  popescu ", family="ANA  MARIA"))
    assert await _matches(vault, "c-again-case") == {"c-first-case": NAME_AND_BIRTH}
    assert await _matches(vault, "c-first-case") == {"c-again-case": NAME_AND_BIRTH}
    # Only digests and ids: 32-byte HMACs, no name, no date.
    rows = await _rows(engine)
    assert {len(r.digest) for r in rows} == {32}
    assert all(b"popescu" not in r.digest.lower() for r in rows)
    assert {r.kind for r in rows} == {"name_and_birth_date", "document"}


async def test_a_document_number_matches_whatever_the_name(vault):
    await _record(vault, "c-first-case", _person(
        documents=[("passport", "AB 123-456", "MD")]))
    await _record(vault, "c-other-name", _person(
        given="Anna", family="Popesco", documents=[("temporary_travel_document",
                                                    "ab123456", "MD")]))
    assert await _matches(vault, "c-other-name") == {"c-first-case": (MatchKind.DOCUMENT,)}


async def test_different_persons_are_not_matched(vault):
    await _record(vault, "c-first-case", _person(documents=[("passport", "AB123456", "MD")]))
    for case_id, record in (
        ("c-other-birth", _person(born=date(1994, 3, 20))),  # same name, another day
        ("c-other-name1", _person(given="Ana", family="Popescu")),  # a name fewer
        ("c-other-name2", _person(given="Ana-Maria", family="Popa")),
        ("c-no-birth-dt", _person(born=None)),  # a name alone is never indexed
        ("c-other-cntry", _person(given="Elena", documents=[("passport", "AB123456", "RO")])),
        ("c-other-docno", _person(given="Irina", documents=[("passport", "AB123457", "MD")])),
    ):
        await _record(vault, case_id, record)
        assert await _matches(vault, case_id) == {}, case_id


async def test_an_update_of_her_identity_renews_the_index(vault):
    await _record(vault, "c-first-case", _person())
    await _record(vault, "c-again-case", _person(born=date(1995, 3, 19)))
    assert await _matches(vault, "c-again-case") == {}
    # The birth date corrected alone: the names kept are indexed with it.
    await _record(vault, "c-again-case", PersonRecord(date_of_birth=BORN))
    assert await _matches(vault, "c-again-case") == {"c-first-case": NAME_AND_BIRTH}


async def test_erasure_and_discard_remove_her_digests(vault, engine):
    await _record(vault, "c-first-case", _person())
    await vault.stage("c-staged-case", _person(), referral={}, by_org="mission-rs",
                      by_actor="coord.rs")
    await _record(vault, "c-again-case", _person())
    assert set(await _matches(vault, "c-again-case")) == {"c-first-case", "c-staged-case"}

    await vault.erase("c-first-case", ErasureReason.PERSON_REQUEST, by_org="mission-rs",
                      by_actor="coord.rs", is_case_active=_inactive)
    assert await vault.discard("c-staged-case")
    assert await _matches(vault, "c-again-case") == {}
    assert {r.case_id for r in await _rows(engine)} == {"c-again-case"}


async def test_matches_survive_a_master_key_rotation(engine):
    old, new = Key.generate(), Key.generate()
    before = PersonVault(engine, Keyring(old))
    await _record(before, "c-first-case", _person(documents=[("passport", "X1", "MD")]))

    # During the rotation every process runs with NEW,OLD: a registration then is indexed
    # under both keys, so it matches cases not re-indexed yet, and those that are.
    during = PersonVault(engine, Keyring(new, (old,)))
    await _record(during, "c-during-case", _person())
    assert await _matches(during, "c-during-case") == {"c-first-case": NAME_AND_BIRTH}

    report = await rotate_master_key(engine, Keyring(new, (old,)), new)
    assert report.reindexed == 2
    assert {r.key_id for r in await _rows(engine)} == {new.key_id}

    after = PersonVault(engine, Keyring(new))  # the old key is gone
    await _record(after, "c-after-case", _person(given="ana maria", documents=[
        ("passport", "x-1", "MD")]))
    assert await _matches(after, "c-after-case") == {
        "c-first-case": (MatchKind.DOCUMENT, MatchKind.NAME_AND_BIRTH_DATE),
        "c-during-case": NAME_AND_BIRTH}


async def test_reindex_indexes_identities_stored_before_the_index(vault, engine):
    await _record(vault, "c-first-case", _person())
    await _record(vault, "c-again-case", _person())
    async with engine.begin() as conn:  # as a database migrated with identities in it
        await conn.execute(person_blind_index.delete())
    assert await _matches(vault, "c-again-case") == {}
    assert await reindex(engine, vault._keyring) == 2
    assert await _matches(vault, "c-again-case") == {"c-first-case": NAME_AND_BIRTH}
