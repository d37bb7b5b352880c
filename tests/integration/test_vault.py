"""The person vault against a real PostgreSQL: encryption, keys, erasure, access records."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import catalogue
from domain.journey import events as ev
from store.event_store import EventStore
from store.events import NewEvent
from store.keys import Key, Keyring
from store.vault import (
    ALL_GROUPS,
    FIELD_GROUPS,
    IDENTITY_ERASED,
    IDENTITY_FIELD_NAMES,
    IDENTITY_READ,
    IDENTITY_RECORDED,
    Address,
    CaseStillActive,
    ContactDetail,
    ContactKind,
    DocumentKind,
    ErasedPerson,
    ErasureReason,
    FamilyContact,
    FieldGroup,
    IdentityDocument,
    NoteKind,
    PersonErased,
    PersonNotFound,
    PersonRecord,
    PersonVault,
    PersonView,
    Photo,
    PurposeRequired,
    ReadPurpose,
    VaultError,
    VaultIntegrityError,
    VaultKeyError,
    person_fields,
    person_keys,
    person_notes,
    rotate_master_key,
)
from store.verify import verify_chain
from workers.lifecycle import CaseLifecycle

CASE = "case-7f3a9c"
OTHER = "case-b81e02"
ORG = "iom-belgrade"
ACTOR = "u-4821"

FULL = PersonRecord(
    given_names="Marker-Given Ana",
    family_name="Marker-Family Popescu",
    aliases=("Marker-Alias Ani",),
    date_of_birth=date(2003, 2, 14),
    nationality="MD",
    identity_documents=(
        IdentityDocument(
            kind=DocumentKind.PASSPORT, number="MARKER-DOC-1234", issuing_country="MD"
        ),
    ),
    contact_details=(ContactDetail(kind=ContactKind.PHONE, value="+373 555 MARKER"),),
    photos=(
        Photo(content=b"\x89PNG marker photo bytes", media_type="image/png"),
        Photo(reference="rec_photo0001"),
    ),
    family_contacts=(
        FamilyContact(
            relationship="mother",
            name="Marker-Mother Elena",
            contact_details=(ContactDetail(kind=ContactKind.PHONE, value="+373 555 0002"),),
        ),
    ),
    shelter_address=Address(
        lines=("Marker Shelter Street 7",), locality="Belgrade", postal_code="11000", country="RS"
    ),
)


def _active(engine: AsyncEngine):
    """Whether a case's journey is active, read where ``homeward vault erase`` reads it:
    the case's events in the event store (referred, no outcome yet)."""
    return CaseLifecycle(EventStore(engine)).is_journey_active


def _event(event, org: str = "system") -> NewEvent:
    return NewEvent(uuid.uuid4(), event.type, event.schema_version,
                    catalogue.payload_of(event), org, "system:workflow", datetime.now(UTC))


REFERRAL = ev.ReferralRegistered(
    source="police_raid", first_placement="safe_house", risk_level="low",
    age_category="25_34", witness=False, host_country="RS", destination_country="MD",
    sending_mission=ORG, receiving_mission="iom-chisinau", border_partner="ngo-md-border")


async def _referred(engine: AsyncEngine, case_id: str = CASE) -> None:
    await EventStore(engine).append(case_id, None, [_event(REFERRAL, ORG)])


async def _closed(engine: AsyncEngine, case_id: str = CASE) -> None:
    await EventStore(engine).append(case_id, None, [_event(ev.ReturnedOutcome())])


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(Key.generate())


@pytest.fixture
def vault(engine: AsyncEngine, keyring: Keyring) -> PersonVault:
    return PersonVault(engine, keyring)


async def _read(vault: PersonVault, case_id: str = CASE, **kwargs) -> PersonView | ErasedPerson:
    args = dict(purpose=ReadPurpose.CASE_REVIEW, reader_org=ORG, reader_actor=ACTOR)
    return await vault.read(case_id, **{**args, **kwargs})


async def _events(engine: AsyncEngine, case_id: str = CASE) -> list:
    return await EventStore(engine).read_stream(case_id)


async def _raw(engine: AsyncEngine, table) -> list:
    async with engine.connect() as conn:
        return list(await conn.execute(select(table)))


async def test_round_trip_of_every_field_and_notes(vault: PersonVault, engine) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    first = await vault.add_note(
        CASE,
        NoteKind.INTERVIEW_ANSWER,
        "Marker interview: came via Timisoara",
        by_org=ORG,
        by_actor=ACTOR,
    )
    second = await vault.add_note(
        CASE,
        "wellbeing_note",
        "Marker wellbeing: sleeping better",
        by_org="iom-chisinau",
        by_actor="u-77",
    )

    view = await _read(vault)

    assert isinstance(view, PersonView)
    assert view.record == FULL
    assert view.groups == ALL_GROUPS
    assert [(n.note_id, n.kind, n.text) for n in view.notes] == [
        (first, NoteKind.INTERVIEW_ANSWER, "Marker interview: came via Timisoara"),
        (second, NoteKind.WELLBEING_NOTE, "Marker wellbeing: sleeping better"),
    ]
    assert view.notes[1].recorded_by_org == "iom-chisinau"

    # Nothing readable is stored: no marker in any vault byte or any event.
    dump = []
    async with engine.connect() as conn:
        for table in ("person_keys", "person_fields", "person_notes", "events"):
            dump += (await conn.exec_driver_sql(f"SELECT t::text FROM {table} t")).scalars()
    blob = " ".join(d or "" for d in dump).lower()
    for marker in ("marker", "popescu", "timisoara", "2003-02-14", b"marker".hex()):
        assert marker not in blob


async def test_a_write_stores_only_the_fields_set_and_records_their_names(vault, engine) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    moved = Address(lines=("Second Marker Street 1",), country="RS")
    await vault.record(CASE, PersonRecord(shelter_address=moved), by_org=ORG, by_actor=ACTOR)

    view = await _read(vault)
    assert view.record == FULL.model_copy(update={"shelter_address": moved})
    recorded = [e for e in await _events(engine) if e.event_type == IDENTITY_RECORDED]
    assert recorded[0].payload["fields"] == sorted(PersonRecord.model_fields)
    assert recorded[1].payload == {"fields": ["shelter_address"], "notes": []}
    assert (recorded[1].author_org, recorded[1].actor) == (ORG, ACTOR)


async def test_partial_read_discloses_only_the_groups_asked_for(vault, engine) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    await vault.add_note(CASE, NoteKind.WELLBEING_NOTE, "Marker note", by_org=ORG, by_actor=ACTOR)

    view = await _read(
        vault,
        purpose=ReadPurpose.HANDOFF_IDENTIFICATION,
        groups=[FieldGroup.NAMES, FieldGroup.PHOTOS],
    )

    assert view.record == PersonRecord(
        given_names=FULL.given_names,
        family_name=FULL.family_name,
        aliases=FULL.aliases,
        photos=FULL.photos,
    )
    assert view.record.shelter_address is None
    assert view.notes == ()
    [read] = [e for e in await _events(engine) if e.event_type == IDENTITY_READ]
    assert read.payload == {
        "purpose": "handoff_identification",
        "field_groups": ["names", "photos"],
    }


async def test_read_with_purpose_is_recorded_with_org_actor_and_purpose(vault, engine) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    await vault.read(
        CASE,
        purpose="family_tracing",
        reader_org="iom-chisinau",
        reader_actor="u-991",
        groups=[FieldGroup.FAMILY],
    )

    [read] = [e for e in await _events(engine) if e.event_type == IDENTITY_READ]
    assert read.author_org == "iom-chisinau"
    assert read.actor == "u-991"
    assert read.payload == {"purpose": "family_tracing", "field_groups": ["family"]}
    assert read.occurred_at.tzinfo is not None


@pytest.mark.parametrize("purpose", [None, "", "curiosity"])
async def test_read_without_a_valid_purpose_is_refused_and_records_nothing(
    vault, engine, purpose
) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    before = await _events(engine)

    with pytest.raises(PurposeRequired, match="purpose"):
        await _read(vault, purpose=purpose)

    assert await _events(engine) == before


async def test_wrong_master_key_is_a_clear_error_and_discloses_and_records_nothing(
    vault, engine
) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    before = await _events(engine)
    wrong = Keyring(Key.generate())

    with pytest.raises(VaultKeyError, match="does not match key id") as error:
        await _read(PersonVault(engine, wrong))
    assert wrong.current.key_id in str(error.value)
    assert "Marker" not in str(error.value)

    with pytest.raises(VaultKeyError):
        await PersonVault(engine, wrong).record(
            CASE, PersonRecord(given_names="X"), by_org=ORG, by_actor=ACTOR
        )
    assert await _events(engine) == before
    assert (await _read(vault)).record == FULL  # the write under the wrong key changed nothing


async def test_an_altered_wrapped_key_fails_clearly(vault, engine, keyring) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    async with engine.begin() as conn:
        wrapped = (await conn.execute(select(person_keys.c.wrapped_dek))).scalar_one()
        tampered = wrapped[:-1] + bytes([wrapped[-1] ^ 1])
        await conn.execute(update(person_keys).values(wrapped_dek=tampered))

    with pytest.raises(VaultKeyError, match="does not open"):
        await _read(vault)


async def test_ciphertext_moved_to_another_case_or_field_fails_to_decrypt(vault, engine) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    await vault.record(OTHER, PersonRecord(family_name="Other"), by_org=ORG, by_actor=ACTOR)
    async with engine.begin() as conn:
        moved = (
            await conn.execute(
                select(person_fields).where(
                    person_fields.c.case_id == CASE, person_fields.c.field_name == "family_name"
                )
            )
        ).one()
        # Same field, other case.
        await conn.execute(
            update(person_fields)
            .where(person_fields.c.case_id == OTHER, person_fields.c.field_name == "family_name")
            .values(nonce=moved.nonce, ciphertext=moved.ciphertext)
        )
        # Other field, same case.
        await conn.execute(
            update(person_fields)
            .where(person_fields.c.case_id == CASE, person_fields.c.field_name == "given_names")
            .values(nonce=moved.nonce, ciphertext=moved.ciphertext)
        )
    before = await _events(engine, OTHER)

    with pytest.raises(VaultIntegrityError, match=f"family_name of case {OTHER}"):
        await _read(vault, OTHER)
    with pytest.raises(VaultIntegrityError, match=f"given_names of case {CASE}"):
        await _read(vault, CASE)
    assert await _events(engine, OTHER) == before  # no partial data, no read recorded
    # The untouched field of CASE still reads.
    view = await _read(vault, CASE, groups=[FieldGroup.DOCUMENTS])
    assert view.record.identity_documents == FULL.identity_documents


async def test_a_note_moved_to_another_case_fails_to_decrypt(vault, engine) -> None:
    note = await vault.add_note(
        CASE, NoteKind.INTERVIEW_ANSWER, "Marker", by_org=ORG, by_actor=ACTOR
    )
    await vault.record(OTHER, PersonRecord(family_name="Other"), by_org=ORG, by_actor=ACTOR)
    async with engine.begin() as conn:
        await conn.execute(
            update(person_notes).where(person_notes.c.note_id == note).values(case_id=OTHER)
        )
    with pytest.raises(VaultIntegrityError, match="note"):
        await _read(vault, OTHER)


async def test_rotation_rewraps_keys_only_and_every_record_stays_readable(engine, keyring) -> None:
    vault = PersonVault(engine, keyring)
    cases = [f"case-{i:06d}" for i in range(7)]
    for i, case in enumerate(cases):
        await vault.record(case, PersonRecord(family_name=f"Name {i}"), by_org=ORG, by_actor=ACTOR)
        await vault.add_note(case, NoteKind.WELLBEING_NOTE, f"note {i}", by_org=ORG, by_actor=ACTOR)
    await vault.erase(
        cases[-1], "person_request", by_org=ORG, by_actor=ACTOR, is_case_active=_active(engine)
    )
    fields_before = await _raw(engine, person_fields)
    notes_before = await _raw(engine, person_notes)
    keys_before = {r.case_id: r for r in await _raw(engine, person_keys)}

    new_key = Key.generate()
    progress: list[tuple[int, int]] = []
    report = await rotate_master_key(
        engine, keyring, new_key, lambda done, total: progress.append((done, total)), batch_size=4
    )

    assert (report.rewrapped, report.total) == (6, 6)
    assert progress == [(4, 6), (6, 6)]
    assert await _raw(engine, person_fields) == fields_before  # ciphertexts, byte for byte
    assert await _raw(engine, person_notes) == notes_before
    keys_after = {r.case_id: r for r in await _raw(engine, person_keys)}
    for case in cases[:-1]:
        assert keys_after[case].kek_id == new_key.key_id
        assert keys_after[case].wrapped_dek != keys_before[case].wrapped_dek
    assert keys_after[cases[-1]] == keys_before[cases[-1]]  # erased: nothing to re-wrap

    rotated = PersonVault(engine, Keyring(new_key))
    for i, case in enumerate(cases[:-1]):
        view = await _read(rotated, case)
        assert view.record.family_name == f"Name {i}"
        assert [n.text for n in view.notes] == [f"note {i}"]
    with pytest.raises(VaultKeyError, match="does not match"):
        await _read(PersonVault(engine, keyring), cases[0])

    again = await rotate_master_key(engine, keyring, new_key)
    assert (again.rewrapped, again.total) == (0, 0)


async def test_rotation_with_a_keyring_missing_a_key_stops_and_changes_nothing(
    engine, keyring
) -> None:
    await PersonVault(engine, keyring).record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    keys_before = await _raw(engine, person_keys)

    with pytest.raises(VaultKeyError, match="does not match key id"):
        await rotate_master_key(engine, Keyring(Key.generate()), Key.generate())

    assert await _raw(engine, person_keys) == keys_before


async def test_during_rotation_a_keyring_with_old_and_new_keys_reads_both(engine, keyring) -> None:
    await PersonVault(engine, keyring).record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    new_key = Key.generate()
    both = Keyring(new_key, (keyring.current,))
    await PersonVault(engine, both).record(OTHER, FULL, by_org=ORG, by_actor=ACTOR)

    assert (await _read(PersonVault(engine, both), CASE)).record == FULL
    keys = {r.case_id: r.kek_id for r in await _raw(engine, person_keys)}
    assert keys == {CASE: keyring.current.key_id, OTHER: new_key.key_id}

    # The configured ring (new key first, old after) is all the rotation needs.
    report = await rotate_master_key(engine, both, both.current)
    assert (report.rewrapped, report.total) == (1, 1)
    only_new = PersonVault(engine, Keyring(new_key))
    assert (await _read(only_new, CASE)).record == (await _read(only_new, OTHER)).record == FULL


async def test_erase_shreds_the_key_keeps_history_verifiable_and_records_who_and_why(
    vault, engine
) -> None:
    await _referred(engine)
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    await vault.add_note(CASE, NoteKind.INTERVIEW_ANSWER, "Marker", by_org=ORG, by_actor=ACTOR)
    await _read(vault)
    await _closed(engine)  # the journey ended: her identity may be erased on request
    history_before = await _events(engine)

    erasure = await vault.erase(
        CASE,
        ErasureReason.PERSON_REQUEST,
        by_org="iom-chisinau",
        by_actor="u-12",
        is_case_active=_active(engine),
    )

    result = await _read(vault)
    assert isinstance(result, ErasedPerson)
    assert result.reason == ErasureReason.PERSON_REQUEST
    assert await vault.is_erased(CASE)
    [key_row] = await _raw(engine, person_keys)
    assert key_row.wrapped_dek is None and key_row.kek_id is None
    assert await _raw(engine, person_fields) == []
    assert await _raw(engine, person_notes) == []

    history = await _events(engine)
    assert history[: len(history_before)] == history_before
    erased = history[-1]
    assert erased == erasure.event
    assert erased.event_type == IDENTITY_ERASED
    assert erased.payload == {"reason": "person_request"}
    assert (erased.author_org, erased.actor) == ("iom-chisinau", "u-12")
    assert (await verify_chain(engine)).ok

    with pytest.raises(PersonErased):
        await vault.record(CASE, PersonRecord(given_names="Again"), by_org=ORG, by_actor=ACTOR)
    with pytest.raises(PersonErased):
        await vault.add_note(CASE, NoteKind.WELLBEING_NOTE, "x", by_org=ORG, by_actor=ACTOR)


async def test_erase_again_records_one_event_only(vault, engine) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    first = await vault.erase(
        CASE, "legal_order", by_org=ORG, by_actor=ACTOR, is_case_active=_active(engine)
    )
    second = await vault.erase(
        CASE, "person_request", by_org="x-org", by_actor="u-2", is_case_active=_active(engine)
    )

    assert second.already_erased and not first.already_erased
    assert second.event == first.event
    assert second.reason == ErasureReason.LEGAL_ORDER
    assert [e.event_type for e in await _events(engine)].count(IDENTITY_ERASED) == 1


async def test_an_erasure_whose_event_failed_is_completed_by_the_retry(engine, keyring) -> None:
    class FailingStore(EventStore):
        async def append(self, case_id, expected_version, events):
            if events[0].event_type == IDENTITY_ERASED:
                raise RuntimeError("database went away")
            return await super().append(case_id, expected_version, events)

    await PersonVault(engine, keyring).record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    with pytest.raises(RuntimeError):
        await PersonVault(engine, keyring, FailingStore(engine)).erase(
            CASE, "person_request", by_org=ORG, by_actor=ACTOR, is_case_active=_active(engine)
        )
    assert await PersonVault(engine, keyring).is_erased(CASE)  # the key is gone regardless

    retry = await PersonVault(engine, keyring).erase(
        CASE, "person_request", by_org=ORG, by_actor=ACTOR, is_case_active=_active(engine)
    )
    assert retry.already_erased
    assert [e.event_type for e in await _events(engine)] == [IDENTITY_RECORDED, IDENTITY_ERASED]


async def test_erase_of_an_active_case_is_refused_and_changes_nothing(vault, engine) -> None:
    await _referred(engine)  # a journey under way: referred, no outcome yet
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    keys_before = await _raw(engine, person_keys)
    fields_before = await _raw(engine, person_fields)
    events_before = await _events(engine)

    with pytest.raises(CaseStillActive, match=f"case {CASE} is still in an active journey"):
        await vault.erase(
            CASE, "person_request", by_org=ORG, by_actor=ACTOR,
            is_case_active=_active(engine),
        )

    assert await _raw(engine, person_keys) == keys_before
    assert await _raw(engine, person_fields) == fields_before
    assert await _events(engine) == events_before
    assert (await _read(vault)).record == FULL

    # Once the journey has its outcome, the same erasure goes through.
    await _closed(engine)
    erasure = await vault.erase(
        CASE, "person_request", by_org=ORG, by_actor=ACTOR, is_case_active=_active(engine)
    )
    assert not erasure.already_erased
    assert isinstance(await _read(vault), ErasedPerson)


async def test_erase_refuses_free_text_reasons_and_unknown_cases(vault, engine) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    with pytest.raises(VaultError, match="not a valid erasure reason") as error:
        await vault.erase(
            CASE,
            "she told me her name is Ana",
            by_org=ORG,
            by_actor=ACTOR,
            is_case_active=_active(engine),
        )
    assert "Ana" not in str(error.value)
    with pytest.raises(PersonNotFound):
        await vault.erase(
            "case-unknown",
            "person_request",
            by_org=ORG,
            by_actor=ACTOR,
            is_case_active=_active(engine),
        )
    assert not await vault.is_erased(CASE)


async def test_an_erased_key_row_cannot_be_given_a_key_again(vault, engine, keyring) -> None:
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)
    await vault.erase(
        CASE, "person_request", by_org=ORG, by_actor=ACTOR, is_case_active=_active(engine)
    )
    with pytest.raises(Exception, match="was erased"):
        async with engine.begin() as conn:
            await conn.execute(
                update(person_keys).values(kek_id=keyring.current.key_id, wrapped_dek=b"x" * 60)
            )


async def test_unknown_case_and_empty_writes(vault) -> None:
    with pytest.raises(PersonNotFound):
        await _read(vault, "case-nobody")
    with pytest.raises(VaultError, match="sets no field"):
        await vault.record(CASE, PersonRecord(), by_org=ORG, by_actor=ACTOR)
    with pytest.raises(VaultError, match="reader_org"):
        await _read(vault, reader_org="")


def test_identity_field_names_cover_every_record_field_and_note_kind() -> None:
    grouped = [f for fields in FIELD_GROUPS.values() for f in fields]
    assert sorted(grouped) == sorted(PersonRecord.model_fields)  # each field in one group
    assert set(PersonRecord.model_fields) <= IDENTITY_FIELD_NAMES
    assert {k.value for k in NoteKind} <= IDENTITY_FIELD_NAMES
    assert all(isinstance(name, str) for name in IDENTITY_FIELD_NAMES)


def test_validation_errors_do_not_echo_identity_values() -> None:
    with pytest.raises(ValueError) as error:
        PersonRecord(nationality="Marker-Moldova")
    assert "Marker" not in str(error.value)
    with pytest.raises(ValueError) as error:
        IdentityDocument(kind="Marker-passport", number="MARKER-1", issuing_country="MD")
    assert "Marker" not in str(error.value) and "MARKER" not in str(error.value)


def test_a_photo_has_content_or_a_reference() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Photo()
    with pytest.raises(ValueError, match="exactly one"):
        Photo(content=b"x", reference="rec_12345678")


async def test_no_data_is_returned_when_the_read_cannot_be_recorded(engine, keyring) -> None:
    class FailingStore(EventStore):
        async def append(self, case_id, expected_version, events):
            if events[0].event_type == IDENTITY_READ:
                raise RuntimeError("database went away")
            return await super().append(case_id, expected_version, events)

    vault = PersonVault(engine, keyring, FailingStore(engine))
    await vault.record(CASE, FULL, by_org=ORG, by_actor=ACTOR)

    with pytest.raises(RuntimeError, match="went away"):
        await _read(vault)


async def test_concurrent_first_writes_share_one_data_key(vault, engine) -> None:
    records = [
        PersonRecord(given_names="A"),
        PersonRecord(family_name="B"),
        PersonRecord(nationality="MD"),
        PersonRecord(aliases=("C",)),
    ]
    await asyncio.gather(*(vault.record(CASE, r, by_org=ORG, by_actor=ACTOR) for r in records))
    await asyncio.gather(
        *(
            vault.add_note(CASE, NoteKind.WELLBEING_NOTE, f"n{i}", by_org=ORG, by_actor=ACTOR)
            for i in range(4)
        )
    )

    view = await _read(vault)
    assert view.record == PersonRecord(
        given_names="A", family_name="B", nationality="MD", aliases=("C",)
    )
    assert sorted(n.text for n in view.notes) == ["n0", "n1", "n2", "n3"]
    assert len(await _raw(engine, person_keys)) == 1
