"""Case packages between deployments (decision 0067): the format, its cryptography and its
checks, and the one transaction that writes an imported case.

A package is one file::

    MAGIC | header length (4 bytes, big-endian) | header (canonical JSON) | body | signature

- the header holds the manifest (ids, codes, counts, the chain head, fingerprints: never
  identity) and the key wrap; it is readable before anything is decrypted;
- the body is AES-256-GCM under a random per-package key, with the header as associated
  data; the package key is wrapped to the recipient's X25519 key (an ephemeral X25519
  key, ECDH, HKDF-SHA256, AES-256-GCM);
- the signature is the sender's Ed25519 signature over every byte before it, so that one
  flipped byte anywhere (magic, length, header, body or the signature itself) is refused.

Import checks, in order: the format, a trusted sender key (org and fingerprint), the
signature, the recipient, the decryption, the manifest against the contents, the hash
chain (``store.hashing``, as ``homeward store verify`` does), and every event against
the catalogue. A refusal is a ``PackageRefused`` with a code and one line naming no
identity; nothing is written before every check has passed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    exc,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.catalogue import UnknownEventType, UnsupportedSchemaVersion, parse_event, writer_of
from domain.kernel import CaseId, Code, OrganisationId
from domain.outside_events import CaseImported, Writer
from store.events import Causation
from store.hashing import GENESIS_HASH, canonical_json, event_hash
from store.schema import events_table
from store.vault import FIELD_GROUPS, FieldGroup, Note, NoteKind, PersonRecord, PersonVault

FORMAT_VERSION = 1
MAGIC = b"homeward-case-package/1\n"
_LENGTH_BYTES = 4
_SIGNATURE_BYTES = 64
_NONCE_BYTES = 12
_MAX_HEADER_BYTES = 1 << 20
_WRAP_INFO = b"homeward/case-package/v1/key-wrap"
_FINGERPRINT_DOMAIN = b"homeward/package-keys/v1\x00"
BUNDLE_PREFIX = "hwkeys1."
IMPORT_ACTOR = "system:case-import"

Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Fingerprint = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]


class PackageRefused(Exception):
    """A package not exported or not imported, with a machine ``code`` and one line that
    names no identity. Nothing was written."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- keys --------------------------------------------------------------------------------


def _raw(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise PackageRefused("malformed_package", f"the package's {what} is not base64") from None


def format_fingerprint(fingerprint: str) -> str:
    """40 hex digits in groups of four, to read aloud on a telephone."""
    return " ".join(fingerprint[i:i + 4] for i in range(0, len(fingerprint), 4))


def normalise_fingerprint(text: str) -> str:
    return "".join(text.split()).lower()


@dataclass(frozen=True)
class PublicKeys:
    """A deployment's public keys: Ed25519 to verify what it signs, X25519 to encrypt to it."""

    org: str
    signing: bytes  # raw, 32 bytes
    encryption: bytes  # raw, 32 bytes

    @property
    def fingerprint(self) -> str:
        """SHA-256 over both keys (domain-separated), first 160 bits, hex: the one value two
        deployments compare out of band."""
        digest = hashlib.sha256(_FINGERPRINT_DOMAIN + self.signing + self.encryption)
        return digest.hexdigest()[:40]

    @property
    def bundle(self) -> str:
        """Both public keys in one pasteable token (``homeward keys trust <org> <bundle>``)."""
        raw = base64.urlsafe_b64encode(self.signing + self.encryption).decode().rstrip("=")
        return BUNDLE_PREFIX + raw

    @classmethod
    def from_bundle(cls, org: str, bundle: str) -> PublicKeys:
        text = bundle.strip()
        if not text.startswith(BUNDLE_PREFIX):
            raise ValueError(f"a key bundle starts with {BUNDLE_PREFIX!r} "
                             "(as `homeward keys show` prints it)")
        body = text.removeprefix(BUNDLE_PREFIX)
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            raise ValueError("the key bundle is not valid base64url") from None
        if len(raw) != 64:
            raise ValueError("the key bundle does not hold two 32-byte keys")
        keys = cls(org, raw[:32], raw[32:])
        keys.verifier()  # a point that is no key fails here, not at the first package
        return keys

    def verifier(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.signing)

    def encryptor(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(self.encryption)


@dataclass(frozen=True)
class OwnKeys:
    """This deployment's private keys and the organisation they speak for."""

    org: str
    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey

    @classmethod
    def generate(cls, org: str) -> OwnKeys:
        return cls(org, Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @property
    def public(self) -> PublicKeys:
        return PublicKeys(self.org, _raw(self.signing.public_key()),
                          _raw(self.encryption.public_key()))

    def to_json(self) -> str:
        private = serialization.PrivateFormat.Raw
        raw = serialization.Encoding.Raw
        none = serialization.NoEncryption()
        return json.dumps({
            "format": "homeward-package-keys/1",
            "org": self.org,
            "signing_private_key": _b64(self.signing.private_bytes(raw, private, none)),
            "encryption_private_key": _b64(self.encryption.private_bytes(raw, private, none)),
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> OwnKeys:
        data = json.loads(text)
        return cls(data["org"],
                   Ed25519PrivateKey.from_private_bytes(
                       base64.b64decode(data["signing_private_key"])),
                   X25519PrivateKey.from_private_bytes(
                       base64.b64decode(data["encryption_private_key"])))


# --- the header ----------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Manifest(_Strict):
    """What a package is, readable without decrypting it: ids, codes, counts, hashes and
    fingerprints, never identity."""

    format_version: int = FORMAT_VERSION
    package_id: uuid.UUID
    case_id: CaseId
    source_org: OrganisationId
    sender_key_fingerprint: Fingerprint
    recipient_org: OrganisationId
    recipient_key_fingerprint: Fingerprint
    created_at: datetime
    event_count: int = Field(ge=1)
    chain_head: Hash
    field_groups: tuple[Code, ...] = ()


class KeyWrap(_Strict):
    ephemeral_public_key: str
    nonce: str
    wrapped_key: str


class Header(_Strict):
    manifest: Manifest
    key_wrap: KeyWrap
    body_nonce: str


# --- the contents --------------------------------------------------------------------------


class PackedEvent(_Strict):
    """A stored event as it was hashed: the payload is the exact stored text."""

    version: int = Field(ge=1)
    event_id: uuid.UUID
    event_type: str
    schema_version: int = Field(ge=1)
    payload: str
    author_org: str
    actor: str
    occurred_at: datetime
    causation_workflow_id: str | None = None
    causation_run_id: str | None = None
    causation_activity_id: str | None = None
    prev_hash: str
    hash: str


class PackedNote(_Strict):
    note_id: uuid.UUID
    kind: str
    text: str
    recorded_at: datetime
    recorded_by_org: str
    recorded_by_actor: str


class Contents(_Strict):
    events: tuple[PackedEvent, ...]
    identity_fields: dict[str, Any] = {}  # PersonRecord field name → its JSON value
    notes: tuple[PackedNote, ...] = ()


def packed_event(row: Any) -> PackedEvent:
    """An ``events`` row (store.schema) as a package carries it."""
    return PackedEvent(
        version=row.version, event_id=row.event_id, event_type=row.event_type,
        schema_version=row.schema_version, payload=row.payload, author_org=row.author_org,
        actor=row.actor, occurred_at=row.occurred_at,
        causation_workflow_id=row.causation_workflow_id,
        causation_run_id=row.causation_run_id,
        causation_activity_id=row.causation_activity_id, prev_hash=row.prev_hash,
        hash=row.hash)


# --- sealing -------------------------------------------------------------------------------


def _wrap_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient,
                info=_WRAP_INFO).derive(shared)


def seal(manifest: Manifest, contents: Contents, sender: OwnKeys,
         recipient: PublicKeys) -> bytes:
    """The package file: contents encrypted to ``recipient``, signed by ``sender``."""
    package_key = AESGCM.generate_key(256)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = _raw(ephemeral.public_key())
    kek = _wrap_key(ephemeral.exchange(recipient.encryptor()), ephemeral_public,
                    recipient.encryption)
    wrap_nonce, body_nonce = os.urandom(_NONCE_BYTES), os.urandom(_NONCE_BYTES)
    wrapped = AESGCM(kek).encrypt(wrap_nonce, package_key, manifest.package_id.bytes)
    header = Header(manifest=manifest,
                    key_wrap=KeyWrap(ephemeral_public_key=_b64(ephemeral_public),
                                     nonce=_b64(wrap_nonce), wrapped_key=_b64(wrapped)),
                    body_nonce=_b64(body_nonce))
    header_bytes = canonical_json(header.model_dump(mode="json")).encode()
    body = AESGCM(package_key).encrypt(body_nonce, contents.model_dump_json().encode(),
                                       header_bytes)
    signed = MAGIC + len(header_bytes).to_bytes(_LENGTH_BYTES, "big") + header_bytes + body
    return signed + sender.signing.sign(signed)


# --- opening -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    """A package parsed, not yet trusted: its header, and what the signature covers."""

    header: Header
    header_bytes: bytes
    body: bytes
    signed: bytes
    signature: bytes
    digest: bytes  # SHA-256 of the whole file: the same package, byte for byte

    @property
    def manifest(self) -> Manifest:
        return self.header.manifest


def parse(data: bytes) -> Sealed:
    if not data.startswith(MAGIC):
        raise PackageRefused("not_a_package", "this file is not a homeward case package "
                             f"(it does not begin with {MAGIC.decode().strip()!r})")
    start = len(MAGIC) + _LENGTH_BYTES
    length = int.from_bytes(data[len(MAGIC):start], "big")
    if length > _MAX_HEADER_BYTES or len(data) < start + length + _SIGNATURE_BYTES + 16:
        raise PackageRefused("malformed_package",
                             "the package is truncated or its header length is wrong")
    header_bytes = data[start:start + length]
    try:
        header = Header.model_validate_json(header_bytes)
    except ValidationError:
        raise PackageRefused("malformed_package",
                             "the package's header is not a valid manifest") from None
    return Sealed(header, header_bytes, data[start + length:-_SIGNATURE_BYTES],
                  data[:-_SIGNATURE_BYTES], data[-_SIGNATURE_BYTES:],
                  hashlib.sha256(data).digest())


def open_sealed(sealed: Sealed, own: OwnKeys, sender: PublicKeys) -> Contents:
    """Verify the signature with ``sender`` (a key this deployment trusts for the sending
    organisation), check the recipient, decrypt and check the contents."""
    manifest = sealed.manifest
    try:
        sender.verifier().verify(sealed.signature, sealed.signed)
    except InvalidSignature:
        raise PackageRefused(
            "bad_signature", f"the signature of package {manifest.package_id} does not verify "
            f"with {sender.org}'s trusted key: the package was altered or not signed by "
            f"{sender.org}") from None
    me = own.public
    to_key = manifest.recipient_key_fingerprint
    if (manifest.recipient_org, to_key) != (me.org, me.fingerprint):
        raise PackageRefused(
            "wrong_recipient", f"package {manifest.package_id} is addressed to "
            f"{manifest.recipient_org} (key {format_fingerprint(to_key)}), not to this "
            f"deployment ({me.org}, key {format_fingerprint(me.fingerprint)})")
    wrap = sealed.header.key_wrap
    ephemeral = _unb64(wrap.ephemeral_public_key, "ephemeral key")
    try:
        shared = own.encryption.exchange(X25519PublicKey.from_public_bytes(ephemeral))
        kek = _wrap_key(shared, ephemeral, me.encryption)
        package_key = AESGCM(kek).decrypt(_unb64(wrap.nonce, "nonce"),
                                          _unb64(wrap.wrapped_key, "wrapped key"),
                                          manifest.package_id.bytes)
        plain = AESGCM(package_key).decrypt(_unb64(sealed.header.body_nonce, "nonce"),
                                            sealed.body, sealed.header_bytes)
    except (InvalidTag, ValueError):
        raise PackageRefused("undecryptable", f"package {manifest.package_id} does not "
                             "decrypt with this deployment's key") from None
    try:
        contents = Contents.model_validate_json(plain)
    except ValidationError:
        raise PackageRefused("malformed_contents", f"the contents of package "
                             f"{manifest.package_id} are not a case's events") from None
    check_contents(manifest, contents)
    return contents


def check_contents(manifest: Manifest, contents: Contents) -> None:
    """The manifest matches the contents, the chain holds, every event is catalogued."""
    events = contents.events
    if len(events) != manifest.event_count or events[-1].hash != manifest.chain_head:
        raise PackageRefused("manifest_mismatch", f"package {manifest.package_id}: the "
                             "manifest's event count or chain head differs from its events")
    verify_chain(manifest.case_id, events)
    for event in events:
        try:
            if writer_of(event.event_type) is Writer.MAINTENANCE:
                raise UnknownEventType(event.event_type)
            parse_event(event.event_type, event.schema_version, json.loads(event.payload))
        except (UnknownEventType, UnsupportedSchemaVersion, ValidationError, ValueError):
            raise PackageRefused(
                "invalid_event", f"package {manifest.package_id}: event version "
                f"{event.version} ({event.event_type[:64]!r}) does not match the event "
                "catalogue of this deployment") from None
    try:
        groups = {FieldGroup(g) for g in manifest.field_groups}
        PersonRecord.model_validate(contents.identity_fields)
    except (ValueError, ValidationError):
        raise PackageRefused("malformed_contents", f"package {manifest.package_id}: its "
                             "identity fields are not a person record") from None
    allowed = {name for g in groups for name in FIELD_GROUPS[g]}
    if not set(contents.identity_fields) <= allowed or (
            contents.notes and FieldGroup.NOTES not in groups):
        raise PackageRefused("manifest_mismatch", f"package {manifest.package_id} holds "
                             "identity fields its manifest does not declare")


def verify_chain(case_id: str, events: Sequence[PackedEvent]) -> None:
    prev_hash = GENESIS_HASH
    for expected_version, event in enumerate(events, start=1):
        broken = None
        if event.version != expected_version:
            broken = f"version {event.version} where {expected_version} belongs"
        elif event.prev_hash != prev_hash:
            broken = f"version {event.version} does not chain to the one before it"
        elif event_hash(
                prev_hash, case_id=case_id, version=event.version, event_id=event.event_id,
                event_type=event.event_type, schema_version=event.schema_version,
                payload_json=event.payload, author_org=event.author_org, actor=event.actor,
                occurred_at=event.occurred_at, causation=_causation(event)) != event.hash:
            broken = f"version {event.version}'s content differs from what was hashed"
        if broken:
            raise PackageRefused("broken_chain", f"the hash chain of case {case_id} in the "
                                 f"package is broken: {broken}")
        prev_hash = event.hash


def _causation(event: PackedEvent) -> Causation:
    return Causation(event.causation_workflow_id, event.causation_run_id,
                     event.causation_activity_id)


# --- what the importing deployment keeps (DDL in migration 0014) ---------------------------

_metadata = MetaData()
imported_packages = Table(
    "case_packages_imported",
    _metadata,
    Column("package_id", Uuid, primary_key=True),
    Column("case_id", Text, nullable=False, unique=True),
    Column("source_org", Text, nullable=False),
    Column("sender_key_fingerprint", Text, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("chain_head", Text, nullable=False),
    Column("field_groups", Text, nullable=False),
    Column("package_digest", LargeBinary, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class ImportResult:
    package_id: uuid.UUID
    case_id: str
    source_org: str
    event_count: int
    chain_head: str
    field_groups: tuple[str, ...]
    already_imported: bool  # an earlier import wrote it; this one wrote nothing


def _result(row: Any, already: bool) -> ImportResult:
    return ImportResult(row.package_id, row.case_id, row.source_org, row.event_count,
                        row.chain_head, tuple(g for g in row.field_groups.split(",") if g),
                        already)


async def earlier_import(engine: AsyncEngine, sealed: Sealed) -> ImportResult | None:
    """The answer of an earlier import of this very package, or None; a package that
    conflicts with what is stored is refused."""
    manifest = sealed.manifest
    async with engine.connect() as conn:
        row = (await conn.execute(select(imported_packages).where(
            imported_packages.c.package_id == manifest.package_id))).first()
        if row is not None:
            if row.package_digest != sealed.digest:
                raise PackageRefused(
                    "package_conflict", f"package {manifest.package_id} was imported before "
                    "with other content: this one is refused")
            return _result(row, already=True)
        held = (await conn.execute(select(events_table.c.version).where(
            events_table.c.case_id == manifest.case_id).limit(1))).first()
    if held is not None:
        raise PackageRefused(
            "case_exists", f"case {manifest.case_id} is held here already: a package "
            "cannot be merged into a case this deployment holds (decision 0067)")
    return None


async def write_import(engine: AsyncEngine, vault: PersonVault, sealed: Sealed, contents: Contents,
                       *, actor: str, now: datetime | None = None) -> ImportResult:
    """In one transaction: the case's events with their own hashes, the identity under
    this deployment's vault keys, ``case.imported`` chained on the package's head, and
    the package's row. All or nothing; a concurrent import of the same package or case
    ends in the earlier one's answer or a refusal."""
    manifest = sealed.manifest
    at = now or datetime.now(UTC)
    case_id = manifest.case_id
    imported = CaseImported(source_org=manifest.source_org,
                            recipient_org=manifest.recipient_org,
                            package_id=manifest.package_id, event_count=manifest.event_count,
                            chain_head=manifest.chain_head,
                            sender_key_fingerprint=manifest.sender_key_fingerprint,
                            field_groups=manifest.field_groups)
    payload = canonical_json(imported.model_dump(mode="json", exclude={"type"}))
    version = manifest.event_count + 1
    event_id = uuid.uuid4()
    # position: the events_position trigger sets it, whatever is sent (migration 0006).
    rows = [dict(position=0, case_id=case_id, version=e.version, event_id=e.event_id,
                 event_type=e.event_type, schema_version=e.schema_version, payload=e.payload,
                 author_org=e.author_org, actor=e.actor, occurred_at=e.occurred_at,
                 causation_workflow_id=e.causation_workflow_id,
                 causation_run_id=e.causation_run_id,
                 causation_activity_id=e.causation_activity_id, prev_hash=e.prev_hash,
                 hash=e.hash) for e in contents.events]
    rows.append(dict(
        position=0, case_id=case_id, version=version, event_id=event_id,
        event_type=CaseImported.TYPE, schema_version=CaseImported.schema_version, payload=payload,
        author_org=manifest.recipient_org, actor=actor, occurred_at=at,
        causation_workflow_id=None, causation_run_id=None, causation_activity_id=None,
        prev_hash=manifest.chain_head,
        hash=event_hash(manifest.chain_head, case_id=case_id, version=version,
                        event_id=event_id, event_type=CaseImported.TYPE,
                        schema_version=CaseImported.schema_version, payload_json=payload,
                        author_org=manifest.recipient_org, actor=actor, occurred_at=at,
                        causation=Causation())))
    package_row = dict(package_id=manifest.package_id, case_id=case_id,
                       source_org=manifest.source_org,
                       sender_key_fingerprint=manifest.sender_key_fingerprint,
                       event_count=manifest.event_count, chain_head=manifest.chain_head,
                       field_groups=",".join(manifest.field_groups),
                       package_digest=sealed.digest, imported_at=at)
    record = PersonRecord.model_validate(contents.identity_fields)
    notes = [Note(n.note_id, NoteKind(n.kind), n.text, n.recorded_at, n.recorded_by_org,
                  n.recorded_by_actor) for n in contents.notes]
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(events_table), rows)
            if record.model_fields_set or notes:
                await vault.write_imported(conn, case_id, record, notes,
                                           by_org=manifest.source_org, by_actor=IMPORT_ACTOR,
                                           at=at)
            await conn.execute(insert(imported_packages).values(**package_row))
    except exc.IntegrityError:
        # Another import of this package or case committed first: its answer, or refused.
        earlier = await earlier_import(engine, sealed)
        if earlier is not None:
            return earlier
        raise PackageRefused("case_exists", f"case {case_id} or one of its events is held "
                             "here already") from None
    return ImportResult(manifest.package_id, case_id, manifest.source_org,
                        manifest.event_count, manifest.chain_head, manifest.field_groups,
                        already_imported=False)


async def case_rows(engine: AsyncEngine, case_id: str) -> list[Any]:
    """A case's stored event rows in version order, payloads as the exact stored text."""
    async with engine.connect() as conn:
        return list((await conn.execute(
            select(events_table).where(events_table.c.case_id == case_id)
            .order_by(events_table.c.version))).all())
