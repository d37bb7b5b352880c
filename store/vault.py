"""The person vault: the only place identity data lives, field-encrypted.

Each person (case) has a random data key (DEK); every field and note is encrypted with
AES-GCM under it, with associated data binding the ciphertext to its case and field, so a
ciphertext copied to another case or field fails to decrypt. The DEK is stored wrapped
(AES-GCM) by the master key (KEK) and labelled with the KEK's id: rotating the master key
re-wraps DEKs and never touches the data. Erasure destroys the DEK (crypto-shredding).

Every write appends ``identity.recorded`` (field names, never values), every disclosure
``identity.read`` (purpose and field groups; who and when are the event's author and
time), every erasure ``identity.erased``, to the case's stream. Event ids are uuid4 made
here: the API is the only caller, never a retried Temporal activity.

A registration's identity is staged before its case begins (decision 0054): ``stage``
writes the ciphertexts and a ``person_registrations`` row (the event to append, the
referral's codes) without touching the stream; once the case's workflow is started,
``confirm`` appends that row's ``identity.recorded``, the same event however often it is
tried; ``discard`` destroys a staged identity whose case never began. A registration
under an idempotency key leaves a keyed digest of its whole request (``remember_request``,
decision 0058), so that a retry with another body is told apart from the same one.
Every write of her name, birth date or documents renews the case's blind-index digests
(``store.blind_index``, decision 0070), by which a later registration of the same person
is recognised (``earlier_cases``); they go with her identity.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from sqlalchemy import (
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    delete,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.catalogue import IDENTITY_TYPES
from domain.outside_events import IdentityErased, IdentityRead, IdentityRecorded
from store import blind_index
from store.event_store import EventStore
from store.events import NewEvent, StoredEvent
from store.keys import Key, Keyring, UnknownKeyError

# The vault's events are defined in the catalogue (domain.outside_events).
IDENTITY_RECORDED = IdentityRecorded.TYPE
IDENTITY_READ = IdentityRead.TYPE
IDENTITY_ERASED = IdentityErased.TYPE
IDENTITY_EVENT_TYPES = IDENTITY_TYPES

_NONCE_BYTES = 12

# --- the identity record ---------------------------------------------------------------

Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]  # ISO 3166-1 alpha-2
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        ser_json_bytes="base64",
        val_json_bytes="base64",
        hide_input_in_errors=True,  # a validation error must not carry a name into a log
    )


class DocumentKind(StrEnum):
    PASSPORT = "passport"
    NATIONAL_ID = "national_id"
    BIRTH_CERTIFICATE = "birth_certificate"
    TEMPORARY_TRAVEL_DOCUMENT = "temporary_travel_document"
    RESIDENCE_PERMIT = "residence_permit"
    OTHER = "other"


class IdentityDocument(_Model):
    kind: DocumentKind
    number: NonEmpty
    issuing_country: Country


class ContactKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    MESSENGER = "messenger"
    POSTAL_ADDRESS = "postal_address"
    OTHER = "other"


class ContactDetail(_Model):
    kind: ContactKind
    value: NonEmpty


class Photo(_Model):
    """The image itself, or a reference to where it is kept (exactly one of them)."""

    media_type: str = "image/jpeg"
    content: bytes | None = None
    reference: NonEmpty | None = None

    @model_validator(mode="after")
    def _content_or_reference(self) -> Photo:
        if (self.content is None) == (self.reference is None):
            raise ValueError("a photo has either content or a reference, exactly one")
        return self


class FamilyContact(_Model):
    relationship: NonEmpty
    name: NonEmpty
    contact_details: tuple[ContactDetail, ...] = ()


class Address(_Model):
    lines: tuple[NonEmpty, ...]
    locality: NonEmpty | None = None
    postal_code: NonEmpty | None = None
    country: Country


class PersonRecord(_Model):
    """Who the person is. Any field may be unknown (8% of the programme's cases had no
    age recorded). A write stores exactly the fields that were set on the model."""

    given_names: NonEmpty | None = None
    family_name: NonEmpty | None = None
    aliases: tuple[NonEmpty, ...] = ()
    date_of_birth: date | None = None
    nationality: Country | None = None
    identity_documents: tuple[IdentityDocument, ...] = ()
    contact_details: tuple[ContactDetail, ...] = ()
    photos: tuple[Photo, ...] = ()
    family_contacts: tuple[FamilyContact, ...] = ()
    shelter_address: Address | None = None


class NoteKind(StrEnum):
    INTERVIEW_ANSWER = "interview_answer"
    WELLBEING_NOTE = "wellbeing_note"
    ASSESSMENT_NOTE = "assessment_note"
    FOLLOW_UP_NOTE = "follow_up_note"


RECORD_ID_PREFIX = "rec_"


def record_id_of(note_id: uuid.UUID) -> str:
    """The record id a note is known by outside the vault: ``rec_`` and the 32 hex digits
    of its random note id. Events and workflows carry this, never the note."""
    return f"{RECORD_ID_PREFIX}{note_id.hex}"


def note_id_of(record_id: str) -> uuid.UUID | None:
    """The note a record id names, or None when the vault cannot have made it: only the
    exact form ``record_id_of`` gives is one (not upper-case hex, not any other text)."""
    if not isinstance(record_id, str) or not record_id.startswith(RECORD_ID_PREFIX):
        return None
    try:
        note_id = uuid.UUID(hex=record_id.removeprefix(RECORD_ID_PREFIX))
    except ValueError:
        return None
    return note_id if record_id_of(note_id) == record_id else None


@dataclass(frozen=True)
class Note:
    note_id: uuid.UUID
    kind: NoteKind
    text: str
    recorded_at: datetime
    recorded_by_org: str
    recorded_by_actor: str


class FieldGroup(StrEnum):
    """What a reader asks for; recorded in ``identity.read``. Read only what the purpose
    needs: a handoff needs names and photos, not the shelter address."""

    NAMES = "names"
    BIRTH_AND_NATIONALITY = "birth_and_nationality"
    DOCUMENTS = "documents"
    CONTACT = "contact"
    PHOTOS = "photos"
    FAMILY = "family"
    SHELTER = "shelter"
    NOTES = "notes"


FIELD_GROUPS: Mapping[FieldGroup, tuple[str, ...]] = {
    FieldGroup.NAMES: ("given_names", "family_name", "aliases"),
    FieldGroup.BIRTH_AND_NATIONALITY: ("date_of_birth", "nationality"),
    FieldGroup.DOCUMENTS: ("identity_documents",),
    FieldGroup.CONTACT: ("contact_details",),
    FieldGroup.PHOTOS: ("photos",),
    FieldGroup.FAMILY: ("family_contacts",),
    FieldGroup.SHELTER: ("shelter_address",),
    FieldGroup.NOTES: (),
}
ALL_GROUPS = frozenset(FieldGroup)

IDENTITY_FIELD_NAMES: frozenset[str] = frozenset(PersonRecord.model_fields) | {
    kind.value for kind in NoteKind
}
"""Names that must never be a field of any model that goes to Temporal."""


class ReadPurpose(StrEnum):
    HANDOFF_IDENTIFICATION = "handoff_identification"
    TRAVEL_DOCUMENTS = "travel_documents"
    FAMILY_TRACING = "family_tracing"
    LEGAL_PROCEEDINGS = "legal_proceedings"
    MEDICAL_CARE = "medical_care"
    CASE_REVIEW = "case_review"
    PERSON_REQUEST = "person_request"  # the person asked to see her own data


PACKAGE_PURPOSE = "case_package"
"""The purpose ``identity.read`` records for a case package (``read_for_package``)."""


class ErasureReason(StrEnum):
    PERSON_REQUEST = "person_request"
    RETENTION_EXPIRED = "retention_expired"
    RECORDED_IN_ERROR = "recorded_in_error"
    LEGAL_ORDER = "legal_order"


# --- results and errors ----------------------------------------------------------------


@dataclass(frozen=True)
class PersonView:
    """A disclosure: only the fields of ``groups`` are filled, the rest are defaults."""

    case_id: str
    groups: frozenset[FieldGroup]
    record: PersonRecord
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class ErasedPerson:
    case_id: str
    erased_at: datetime
    reason: ErasureReason


@dataclass(frozen=True)
class Erasure:
    case_id: str
    erased_at: datetime
    reason: ErasureReason
    event: StoredEvent
    already_erased: bool  # an earlier call erased it; this one only completed the record


class VaultError(Exception):
    """Any refusal or failure of the vault. Messages carry ids, never identity data."""


class PurposeRequired(VaultError):
    pass


class VaultKeyError(VaultError):
    """The master key cannot open a data key: wrong key, unknown key id or tampering."""


class VaultIntegrityError(VaultError):
    """A ciphertext failed authentication: moved, altered or corrupted."""


class PersonNotFound(VaultError):
    pass


class PersonErased(VaultError):
    pass


class CaseStillActive(VaultError):
    pass


# --- tables (DDL in migration 0002) ----------------------------------------------------

_metadata = MetaData()
person_keys = Table(
    "person_keys",
    _metadata,
    Column("case_id", Text, primary_key=True),
    Column("kek_id", Text),
    Column("wrapped_dek", LargeBinary),
    Column("created_at", DateTime(timezone=True)),
    Column("rewrapped_at", DateTime(timezone=True)),
    Column("erased_at", DateTime(timezone=True)),
    Column("erased_by_org", Text),
    Column("erased_by_actor", Text),
    Column("erasure_reason", Text),
    Column("erasure_event_id", Uuid),
)
person_fields = Table(
    "person_fields",
    _metadata,
    Column("case_id", Text, primary_key=True),
    Column("field_name", Text, primary_key=True),
    Column("nonce", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by_org", Text, nullable=False),
    Column("recorded_by_actor", Text, nullable=False),
)
person_notes = Table(
    "person_notes",
    _metadata,
    Column("note_id", Uuid, primary_key=True),
    Column("case_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by_org", Text, nullable=False),
    Column("recorded_by_actor", Text, nullable=False),
)
person_registrations = Table(
    "person_registrations",
    _metadata,
    Column("case_id", Text, primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("fields", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by_org", Text, nullable=False),
    Column("recorded_by_actor", Text, nullable=False),
    Column("referral", JSONB, nullable=False),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
)

registration_requests = Table(  # migration 0010: no identity, a keyed digest of it
    "registration_requests",
    _metadata,
    Column("case_id", Text, primary_key=True),
    Column("key_id", Text, nullable=False),
    Column("digest", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


class Staged(StrEnum):
    """What ``stage`` did with a registration's identity."""

    NEW = "new"  # stored now, for this registration
    PENDING = "pending"  # an earlier attempt under this case id staged one: kept as it is
    HELD = "held"  # the vault held an identity for this case already: nothing written


@dataclass(frozen=True)
class Registration:
    """A registration's staged identity: no identity data, the referral's codes only."""

    case_id: str
    referral: Mapping[str, Any]
    fields: tuple[str, ...]
    attempted_at: datetime
    confirmed: bool  # its case's workflow was started and identity.recorded appended


@dataclass(frozen=True)
class Staging:
    outcome: Staged
    registration: Registration | None  # None when HELD


class _Held(Exception):
    pass


def _registration(row: Any) -> Registration:
    return Registration(row.case_id, row.referral, tuple(row.fields), row.attempted_at,
                        row.confirmed_at is not None)


# --- crypto ------------------------------------------------------------------------------


def _request_digest(kek: Key, case_id: str, request: bytes) -> bytes:
    """HMAC-SHA256 of a registration request, under a key derived from the master key for
    this use only, bound to the case id."""
    key = hmac.new(kek.secret, b"homeward/vault/registration-request/v1", hashlib.sha256)
    return hmac.new(key.digest(), _aad("registration-request", case_id) + b"\n" + request,
                    hashlib.sha256).digest()


def _aad(*parts: str) -> bytes:
    # JSON, not a separator: no case id or field name can forge another's binding.
    return json.dumps(["homeward/vault/v1", *parts]).encode()


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)


def wrap_dek(kek: Key, dek: bytes, case_id: str) -> bytes:
    nonce, sealed = _encrypt(kek.secret, dek, _aad("dek", case_id))
    return nonce + sealed


def unwrap_dek(keyring: Keyring, kek_id: str, wrapped: bytes, case_id: str) -> bytes:
    try:
        kek = keyring.get(kek_id, what=f"the data key of case {case_id}")
    except UnknownKeyError:
        raise VaultKeyError(
            f"master key {keyring.current.key_id} does not match key id {kek_id} "
            f"that wraps the data key of case {case_id} (known key ids: "
            f"{', '.join(keyring.key_ids)})"
        ) from None
    try:
        return AESGCM(kek.secret).decrypt(
            wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _aad("dek", case_id)
        )
    except InvalidTag:
        raise VaultKeyError(
            f"the data key of case {case_id} does not open with master key {kek_id}: "
            "the wrapped key was altered or belongs to another case"
        ) from None


def _field_aad(case_id: str, field_name: str) -> bytes:
    return _aad("field", case_id, field_name)


def _note_aad(case_id: str, note_id: uuid.UUID, kind: str) -> bytes:
    return _aad("note", case_id, str(note_id), kind)


def _decrypt(dek: bytes, nonce: bytes, ciphertext: bytes, aad: bytes, what: str) -> bytes:
    try:
        return AESGCM(dek).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise VaultIntegrityError(f"{what} failed authentication") from None


# --- the vault ---------------------------------------------------------------------------

IsCaseActive = Callable[[str], Awaitable[bool]]
E = TypeVar("E", bound=StrEnum)


def _now() -> datetime:
    return datetime.now(UTC)


def _require(value: str, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise VaultError(f"{name} is required")


def _code(enum: type[E], value: E | str | None, what: str) -> E:
    """The enum member, or a refusal that lists the codes. The value is not echoed: a
    caller may have typed free text (a name) where a code belongs."""
    try:
        return enum(value)
    except ValueError:
        raise VaultError(
            f"not a valid {what}: use one of " + ", ".join(m.value for m in enum)
        ) from None


def _purpose(purpose: ReadPurpose | str | None) -> ReadPurpose:
    if not purpose:
        raise PurposeRequired(
            "identity data is only read for a stated purpose: one of "
            + ", ".join(p.value for p in ReadPurpose)
        )
    try:
        return _code(ReadPurpose, purpose, "purpose")
    except VaultError as error:
        raise PurposeRequired(str(error)) from None


class PersonVault:
    def __init__(
        self,
        engine: AsyncEngine,
        keyring: Keyring,
        events: EventStore | None = None,
        clock: Callable[[], datetime] = _now,
    ):
        self._engine = engine
        self._keyring = keyring
        self._events = events or EventStore(engine)
        self._clock = clock

    # -- writes

    async def record(
        self, case_id: str, record: PersonRecord, *, by_org: str, by_actor: str
    ) -> StoredEvent:
        """Store the fields set on ``record`` (others stay as they were)."""
        _require(by_org, "by_org")
        _require(by_actor, "by_actor")
        fields = sorted(record.model_fields_set)
        if not fields:
            raise VaultError("the record sets no field")
        now = self._clock()
        async with self._engine.begin() as conn:
            await self._write_fields(conn, case_id, record, fields, now, by_org, by_actor)
        return await self._append(
            case_id, IDENTITY_RECORDED, {"fields": fields, "notes": []}, by_org, by_actor, now
        )

    async def _write_fields(self, conn: AsyncConnection, case_id: str, record: PersonRecord,
                            fields: list[str], now: datetime, by_org: str,
                            by_actor: str) -> None:
        values = json.loads(record.model_dump_json(include=set(fields)))
        dek = await self._data_key_for_write(conn, case_id)
        for name in fields:
            nonce, ciphertext = _encrypt(
                dek, json.dumps(values[name]).encode(), _field_aad(case_id, name)
            )
            row = dict(
                case_id=case_id,
                field_name=name,
                nonce=nonce,
                ciphertext=ciphertext,
                recorded_at=now,
                recorded_by_org=by_org,
                recorded_by_actor=by_actor,
            )
            await conn.execute(
                insert(person_fields)
                .values(**row)
                .on_conflict_do_update(index_elements=["case_id", "field_name"], set_=row)
            )
        if blind_index.INDEXED_FIELDS.intersection(fields):
            await _index(conn, case_id, dek, self._keyring.keys)

    async def write_imported(self, conn: AsyncConnection, case_id: str, record: PersonRecord,
                             notes: Iterable[Note], *, by_org: str, by_actor: str,
                             at: datetime) -> None:
        """A case package's identity (decision 0067), under this vault's keys, in the
        caller's transaction (the import's, which records ``case.imported`` with the field
        groups). Notes keep their ids: the case's events name them by record id."""
        fields = sorted(record.model_fields_set)
        if fields:
            await self._write_fields(conn, case_id, record, fields, at, by_org, by_actor)
        notes = list(notes)
        if not notes:
            return
        dek = await self._data_key_for_write(conn, case_id)
        for note in notes:
            nonce, ciphertext = _encrypt(dek, note.text.encode(),
                                         _note_aad(case_id, note.note_id, note.kind.value))
            await conn.execute(insert(person_notes).values(
                note_id=note.note_id, case_id=case_id, kind=note.kind.value, nonce=nonce,
                ciphertext=ciphertext, recorded_at=note.recorded_at,
                recorded_by_org=note.recorded_by_org, recorded_by_actor=note.recorded_by_actor))

    # -- a registration's identity, before its case begins (decision 0054)

    async def stage(
        self, case_id: str, record: PersonRecord, *, referral: Mapping[str, Any],
        by_org: str, by_actor: str,
    ) -> Staging:
        """Store a new case's identity without appending to its stream (the case has no
        referral yet), with the ``identity.recorded`` event ``confirm`` will append.

        Another attempt under the same case id (a retry with the same idempotency key)
        finds the staged row (PENDING): nothing is written over it, and its
        ``attempted_at`` is renewed, so that the repair pass leaves it to this attempt. A
        case whose identity the vault held already is left as it is (HELD). ``referral``
        holds what a retry is compared with: ids and codes, never identity data."""
        _require(case_id, "case_id")
        _require(by_org, "by_org")
        _require(by_actor, "by_actor")
        fields = sorted(record.model_fields_set)
        if not fields:
            raise VaultError("the record sets no field")
        now = self._clock()
        try:
            async with self._engine.begin() as conn:
                row = (await conn.execute(
                    insert(person_registrations)
                    .values(case_id=case_id, event_id=uuid.uuid4(), fields=fields,
                            recorded_at=now, recorded_by_org=by_org,
                            recorded_by_actor=by_actor, referral=dict(referral),
                            attempted_at=func.now())
                    .on_conflict_do_update(index_elements=["case_id"],
                                           set_={"attempted_at": func.now()})
                    .returning(*person_registrations.c,
                               literal_column("(xmax = 0)").label("inserted"))
                )).one()
                if not row.inserted:
                    return Staging(Staged.PENDING, _registration(row))
                held = (await conn.execute(
                    select(person_keys.c.case_id).where(person_keys.c.case_id == case_id)
                )).first()
                if held is not None:
                    raise _Held  # rolls the row back: never write over her identity
                await self._write_fields(conn, case_id, record, fields, now, by_org, by_actor)
        except _Held:
            return Staging(Staged.HELD, None)
        return Staging(Staged.NEW, _registration(row))

    async def confirm(self, case_id: str) -> bool:
        """The case's workflow is started: append the staged ``identity.recorded`` (the
        same event id and content on every attempt: the store keeps one) and mark the
        registration confirmed. False when nothing is staged for the case (discarded)."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(person_registrations).where(
                person_registrations.c.case_id == case_id))).first()
            key = (await conn.execute(select(person_keys.c.erased_at).where(
                person_keys.c.case_id == case_id))).first()
        if row is None or key is None:
            return False
        if row.confirmed_at is not None:
            return True
        if key.erased_at is None:  # erased meanwhile: nothing left to say was recorded
            await self._append(case_id, IDENTITY_RECORDED,
                               {"fields": list(row.fields), "notes": []},
                               row.recorded_by_org, row.recorded_by_actor, row.recorded_at,
                               event_id=row.event_id)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(person_registrations)
                .where(person_registrations.c.case_id == case_id,
                       person_registrations.c.confirmed_at.is_(None))
                .values(confirmed_at=func.now()))
        return True

    async def discard(self, case_id: str, *, idle_for: timedelta | None = None) -> bool:
        """Destroy a staged identity whose case did not begin: the registration row, the
        data key and the ciphertexts. Never a confirmed one; with ``idle_for``, only one
        no attempt has touched for that long. True when something was discarded."""
        query = delete(person_registrations).where(
            person_registrations.c.case_id == case_id,
            person_registrations.c.confirmed_at.is_(None))
        if idle_for is not None:
            query = query.where(person_registrations.c.attempted_at < func.now() - idle_for)
        async with self._engine.begin() as conn:
            gone = (await conn.execute(query.returning(person_registrations.c.case_id))).first()
            if gone is None:
                return False
            # Fields and notes go with the key (ON DELETE CASCADE).
            await conn.execute(delete(person_keys).where(
                person_keys.c.case_id == case_id, person_keys.c.erased_at.is_(None)))
            await conn.execute(delete(registration_requests).where(
                registration_requests.c.case_id == case_id))
            await blind_index.forget(conn, case_id)
        return True

    async def remember_request(self, case_id: str, request: bytes) -> bool | None:
        """Keep a keyed digest of a registration's request (the canonical bytes of its
        whole body, her identity included) for the case id it makes, unless one is kept:
        True when this call kept it (the first), None when the one kept is the same, False
        when it is another request's (the key was reused). Only the digest is kept: an
        HMAC under a key derived from the master key and bound to the case id, so that the
        same identity gives unrelated digests in two cases (decision 0058)."""
        _require(case_id, "case_id")
        kek = self._keyring.current
        digest = _request_digest(kek, case_id, request)
        async with self._engine.begin() as conn:
            row = (await conn.execute(
                insert(registration_requests)
                .values(case_id=case_id, key_id=kek.key_id, digest=digest,
                        received_at=func.now())
                .on_conflict_do_update(index_elements=["case_id"],
                                       set_={"case_id": registration_requests.c.case_id})
                .returning(registration_requests.c.key_id, registration_requests.c.digest,
                           literal_column("(xmax = 0)").label("inserted"))
            )).one()
        if row.inserted:
            return True
        if row.key_id != kek.key_id:  # kept before a rotation: the key it was made under
            try:
                kept_under = self._keyring.get(row.key_id, "a registration digest")
            except UnknownKeyError as error:
                raise VaultKeyError(str(error)) from None
            digest = _request_digest(kept_under, case_id, request)
        return None if hmac.compare_digest(digest, row.digest) else False

    async def forget_request(self, case_id: str) -> None:
        """Drop a registration's digest: its request was refused and made no case."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(registration_requests).where(
                registration_requests.c.case_id == case_id))

    async def registration(self, case_id: str) -> Registration | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(person_registrations).where(
                person_registrations.c.case_id == case_id))).first()
        return None if row is None else _registration(row)

    async def unconfirmed(self, idle_for: timedelta, limit: int = 100) -> list[Registration]:
        """Staged identities no attempt has touched for ``idle_for``, oldest first: those
        the repair pass confirms or discards."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(
                select(person_registrations)
                .where(person_registrations.c.confirmed_at.is_(None),
                       person_registrations.c.attempted_at < func.now() - idle_for)
                .order_by(person_registrations.c.attempted_at)
                .limit(limit))).all()
        return [_registration(row) for row in rows]

    async def add_note(
        self, case_id: str, kind: NoteKind | str, text: str, *, by_org: str, by_actor: str
    ) -> uuid.UUID:
        kind = _code(NoteKind, kind, "note kind")
        _require(text, "note text")
        _require(by_org, "by_org")
        _require(by_actor, "by_actor")
        note_id = uuid.uuid4()
        now = self._clock()
        async with self._engine.begin() as conn:
            dek = await self._data_key_for_write(conn, case_id)
            nonce, ciphertext = _encrypt(dek, text.encode(), _note_aad(case_id, note_id, kind))
            await conn.execute(
                insert(person_notes).values(
                    note_id=note_id,
                    case_id=case_id,
                    kind=kind.value,
                    nonce=nonce,
                    ciphertext=ciphertext,
                    recorded_at=now,
                    recorded_by_org=by_org,
                    recorded_by_actor=by_actor,
                )
            )
        payload = {"fields": [], "notes": [{"note_id": str(note_id), "kind": kind.value}]}
        await self._append(case_id, IDENTITY_RECORDED, payload, by_org, by_actor, now)
        return note_id

    async def _data_key_for_write(self, conn: AsyncConnection, case_id: str) -> bytes:
        _require(case_id, "case_id")
        await conn.execute(
            insert(person_keys)
            .values(
                case_id=case_id,
                kek_id=self._keyring.current.key_id,
                wrapped_dek=wrap_dek(self._keyring.current, AESGCM.generate_key(256), case_id),
            )
            .on_conflict_do_nothing(index_elements=["case_id"])
        )
        # FOR SHARE: an erasure waits for this write to finish, and this write for it.
        row = (
            await conn.execute(
                select(person_keys)
                .where(person_keys.c.case_id == case_id)
                .with_for_update(read=True)
            )
        ).one()
        if row.erased_at is not None:
            raise PersonErased(
                f"the identity of case {case_id} was erased on {row.erased_at:%Y-%m-%d}; "
                "nothing can be recorded for it any more"
            )
        return unwrap_dek(self._keyring, row.kek_id, row.wrapped_dek, case_id)

    # -- reads

    async def read(
        self,
        case_id: str,
        *,
        purpose: ReadPurpose | str | None,
        reader_org: str,
        reader_actor: str,
        groups: Iterable[FieldGroup | str] = ALL_GROUPS,
    ) -> PersonView | ErasedPerson:
        """Decrypt the asked field groups, record the read, then return them. Nothing is
        returned unless the ``identity.read`` event is stored; nothing is recorded when
        nothing is disclosed (refused, erased, not found, key error)."""
        return await self._read(case_id, _purpose(purpose).value, reader_org, reader_actor,
                                groups)

    async def read_for_package(
        self, case_id: str, groups: Iterable[FieldGroup | str], *, reader_org: str,
        reader_actor: str,
    ) -> PersonView | ErasedPerson:
        """``read`` for a case package to another deployment (decision 0067), recorded as
        ``identity.read`` with the purpose ``case_package``: no person asks for it through
        the API, so it is no ``ReadPurpose``."""
        return await self._read(case_id, PACKAGE_PURPOSE, reader_org, reader_actor, groups)

    async def _read(self, case_id: str, purpose: str, reader_org: str, reader_actor: str,
                    groups: Iterable[FieldGroup | str]) -> PersonView | ErasedPerson:
        _require(reader_org, "reader_org")
        _require(reader_actor, "reader_actor")
        wanted = frozenset(_code(FieldGroup, g, "field group") for g in groups)
        if not wanted:
            raise VaultError("no field group asked for")
        names = [f for g in wanted for f in FIELD_GROUPS[g]]

        async with self._engine.connect() as conn:
            # One snapshot: a concurrent write or erasure is seen whole or not at all.
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                key_row = await self._key_row(conn, case_id)
                if key_row.erased_at is not None:
                    return ErasedPerson(
                        case_id, key_row.erased_at, ErasureReason(key_row.erasure_reason)
                    )
                dek = unwrap_dek(self._keyring, key_row.kek_id, key_row.wrapped_dek, case_id)
                field_rows = await conn.execute(
                    select(person_fields).where(
                        person_fields.c.case_id == case_id,
                        person_fields.c.field_name.in_(names),
                    )
                )
                note_rows = (
                    await conn.execute(
                        select(person_notes)
                        .where(person_notes.c.case_id == case_id)
                        .order_by(person_notes.c.recorded_at, person_notes.c.note_id)
                    )
                    if FieldGroup.NOTES in wanted
                    else []
                )
                record = _decrypt_record(dek, case_id, field_rows)
                notes = tuple(_decrypt_note(dek, row) for row in note_rows)

        payload = {"purpose": purpose, "field_groups": sorted(g.value for g in wanted)}
        await self._append(case_id, IDENTITY_READ, payload, reader_org, reader_actor, self._clock())
        return PersonView(case_id, wanted, record, notes)

    async def earlier_cases(self, case_id: str) -> list[blind_index.IndexMatch]:
        """The other cases whose identity gave one of this case's blind-index digests
        (decision 0070). Nothing is decrypted and nothing is recorded: the match is no
        event until a person decides to link the cases."""
        async with self._engine.connect() as conn:
            return await blind_index.matches(conn, case_id)

    async def is_erased(self, case_id: str) -> bool:
        """Whether the case's identity was erased (no identity data: not recorded)."""
        async with self._engine.connect() as conn:
            return (await self._key_row(conn, case_id)).erased_at is not None

    async def live_case_ids(self, after: str | None = None, limit: int = 1000) -> list[str]:
        """Cases that hold identity data (not erased), ascending, paged by the last id."""
        query = (
            select(person_keys.c.case_id)
            .where(person_keys.c.erased_at.is_(None))
            .order_by(person_keys.c.case_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(person_keys.c.case_id > after)
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def existing_records(self, case_id: str, record_ids: Iterable[str]) -> frozenset[str]:
        """Those of ``record_ids`` that name a record of this case's vault, in one query.

        A record of another case, of an erased case (its notes are gone), or an id the
        vault did not make is not among them. Nothing is decrypted and nothing is recorded:
        whether a record id exists discloses no identity."""
        wanted = {record_id: note_id_of(record_id) for record_id in set(record_ids)}
        note_ids = {n for n in wanted.values() if n is not None}
        if not note_ids:
            return frozenset()
        async with self._engine.connect() as conn:
            found = set((await conn.execute(
                select(person_notes.c.note_id).where(
                    person_notes.c.case_id == case_id,
                    person_notes.c.note_id.in_(sorted(note_ids, key=str)),
                ))).scalars())
        return frozenset(r for r, n in wanted.items() if n in found)

    @staticmethod
    async def _key_row(conn: AsyncConnection, case_id: str) -> Any:
        row = (
            await conn.execute(select(person_keys).where(person_keys.c.case_id == case_id))
        ).first()
        if row is None:
            raise PersonNotFound(f"the vault holds no identity for case {case_id}")
        return row

    # -- erasure

    async def erase(
        self,
        case_id: str,
        reason: ErasureReason | str,
        *,
        by_org: str,
        by_actor: str,
        is_case_active: IsCaseActive,
    ) -> Erasure:
        """Destroy the case's data key and ciphertexts and record ``identity.erased``.

        Safe to repeat: if an earlier call erased but could not record the event, this
        one records it, with the same event id and content."""
        reason = _code(ErasureReason, reason, "erasure reason")
        _require(by_org, "by_org")
        _require(by_actor, "by_actor")
        if await is_case_active(case_id):
            raise CaseStillActive(
                f"case {case_id} is still in an active journey: its identity is needed "
                "and cannot be erased until the case is closed"
            )
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(person_keys).where(person_keys.c.case_id == case_id).with_for_update()
                )
            ).first()
            if row is None:
                raise PersonNotFound(f"the vault holds no identity for case {case_id}")
            already = row.erased_at is not None
            if not already:
                row = (
                    await conn.execute(
                        update(person_keys)
                        .where(person_keys.c.case_id == case_id)
                        .values(
                            kek_id=None,
                            wrapped_dek=None,
                            erased_at=self._clock(),
                            erased_by_org=by_org,
                            erased_by_actor=by_actor,
                            erasure_reason=reason.value,
                            erasure_event_id=uuid.uuid4(),
                        )
                        .returning(*person_keys.c)
                    )
                ).one()
                await conn.execute(delete(person_fields).where(person_fields.c.case_id == case_id))
                await conn.execute(delete(person_notes).where(person_notes.c.case_id == case_id))
                await conn.execute(delete(registration_requests).where(
                    registration_requests.c.case_id == case_id))  # a digest of her identity
                await blind_index.forget(conn, case_id)
        # The event is written after the key is gone, from the stored row: a retry after a
        # failed append re-appends the identical event, which the store makes idempotent.
        event = await self._append(
            case_id,
            IDENTITY_ERASED,
            {"reason": row.erasure_reason},
            row.erased_by_org,
            row.erased_by_actor,
            row.erased_at,
            event_id=row.erasure_event_id,
        )
        return Erasure(case_id, row.erased_at, ErasureReason(row.erasure_reason), event, already)

    async def _append(
        self,
        case_id: str,
        event_type: str,
        payload: dict[str, Any],
        org: str,
        actor: str,
        at: datetime,
        event_id: uuid.UUID | None = None,
    ) -> StoredEvent:
        [stored] = await self._events.append(
            case_id,
            None,
            [NewEvent(event_id or uuid.uuid4(), event_type, 1, payload, org, actor, at)],
        )
        return stored


def _decrypt_record(dek: bytes, case_id: str, rows: Iterable[Any]) -> PersonRecord:
    values = {
        row.field_name: json.loads(
            _decrypt(
                dek,
                row.nonce,
                row.ciphertext,
                _field_aad(case_id, row.field_name),
                f"field {row.field_name} of case {case_id}",
            )
        )
        for row in rows
    }
    return PersonRecord.model_validate_json(json.dumps(values))


async def _index(conn: AsyncConnection, case_id: str, dek: bytes,
                 keys: Iterable[Key]) -> None:
    """Renew the case's blind-index rows from its fields as stored now, under ``keys``."""
    rows = await conn.execute(select(person_fields).where(
        person_fields.c.case_id == case_id,
        person_fields.c.field_name.in_(sorted(blind_index.INDEXED_FIELDS))))
    record = _decrypt_record(dek, case_id, rows)
    await blind_index.replace(conn, case_id, list(keys), blind_index.materials(
        record.given_names, record.family_name, record.date_of_birth,
        ((d.issuing_country, d.number) for d in record.identity_documents)))


def _decrypt_note(dek: bytes, row: Any) -> Note:
    text = _decrypt(
        dek,
        row.nonce,
        row.ciphertext,
        _note_aad(row.case_id, row.note_id, row.kind),
        f"note {row.note_id} of case {row.case_id}",
    )
    return Note(
        row.note_id,
        NoteKind(row.kind),
        text.decode(),
        row.recorded_at,
        row.recorded_by_org,
        row.recorded_by_actor,
    )


# --- master key rotation -----------------------------------------------------------------


@dataclass(frozen=True)
class RotationReport:
    rewrapped: int
    total: int  # data keys not under the new master key when the rotation started
    reindexed: int = 0  # live identities whose blind-index digests are under the new key


async def rotate_master_key(
    engine: AsyncEngine,
    old_keyring: Keyring,
    new_key: Key,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 200,
) -> RotationReport:
    """Re-wrap every live data key under ``new_key``; field ciphertexts are not touched.

    Each batch commits on its own, so an interrupted rotation resumes where it stopped
    (keys already under ``new_key`` are skipped). A data key that ``old_keyring`` cannot
    open stops the rotation with VaultKeyError, leaving that key as it was."""
    pending = (person_keys.c.erased_at.is_(None)) & (person_keys.c.kek_id != new_key.key_id)
    async with engine.connect() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(person_keys).where(pending))
        ).scalar_one()
    done = 0
    after = ""
    while True:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(person_keys.c.case_id, person_keys.c.kek_id, person_keys.c.wrapped_dek)
                    .where(pending, person_keys.c.case_id > after)
                    .order_by(person_keys.c.case_id)
                    .limit(batch_size)
                    .with_for_update()
                )
            ).all()
            if not rows:
                break
            for row in rows:
                dek = unwrap_dek(old_keyring, row.kek_id, row.wrapped_dek, row.case_id)
                await conn.execute(
                    update(person_keys)
                    .where(person_keys.c.case_id == row.case_id)
                    .values(
                        kek_id=new_key.key_id,
                        wrapped_dek=wrap_dek(new_key, dek, row.case_id),
                        rewrapped_at=func.now(),
                    )
                )
            after = rows[-1].case_id
        done += len(rows)
        if progress:
            progress(done, max(total, done))
    keyring = Keyring(new_key, tuple(k for k in old_keyring.keys if k.key_id != new_key.key_id))
    reindexed = await reindex(engine, keyring, batch_size=batch_size)
    return RotationReport(rewrapped=done, total=total, reindexed=reindexed)


async def reindex(engine: AsyncEngine, keyring: Keyring, batch_size: int = 200) -> int:
    """Renew the blind-index digests of every live identity under the keyring's current
    key only, from its decrypted fields (decision 0070): after a master key rotation, and
    for identities stored before the index existed. Each batch commits on its own; the
    count of identities done is returned."""
    done = 0
    after = ""
    while True:
        async with engine.begin() as conn:
            rows = (await conn.execute(
                select(person_keys.c.case_id, person_keys.c.kek_id, person_keys.c.wrapped_dek)
                .where(person_keys.c.erased_at.is_(None), person_keys.c.case_id > after)
                .order_by(person_keys.c.case_id)
                .limit(batch_size)
                .with_for_update(read=True))).all()
            if not rows:
                break
            for row in rows:
                dek = unwrap_dek(keyring, row.kek_id, row.wrapped_dek, row.case_id)
                await _index(conn, row.case_id, dek, [keyring.current])
            after = rows[-1].case_id
        done += len(rows)
    return done
