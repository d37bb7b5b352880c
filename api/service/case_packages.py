"""Case packages between deployments (decision 0067): the two use cases, export and
import, that ``homeward case`` and the administrators' routes both call.

Export reads the case's events as stored (payloads as hashed), asks ``api.access`` which
identity field groups the recipient could read here, reads those from the vault (recorded
as ``identity.read`` with the purpose ``case_package``), seals the package to the
recipient's trusted key, and records ``case.exported``. Import checks everything first
(``store.packages``) and writes in one transaction, or nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from api.access import case_facts, package_groups
from domain.outside_events import CaseExported
from store.event_store import EventStore, row_to_event
from store.events import NewEvent
from store.packages import (
    Contents,
    ImportResult,
    Manifest,
    OwnKeys,
    PackageRefused,
    PackedNote,
    case_rows,
    earlier_import,
    format_fingerprint,
    open_sealed,
    packed_event,
    parse,
    seal,
    write_import,
)
from store.trust import TrustStore
from store.vault import FIELD_GROUPS, ErasedPerson, FieldGroup, PersonNotFound, PersonVault

log = structlog.get_logger("homeward.case_packages")


@dataclass(frozen=True)
class Exported:
    manifest: Manifest
    package: bytes


class CasePackages:
    def __init__(self, engine: AsyncEngine, store: EventStore, vault: PersonVault,
                 own: OwnKeys):
        self._engine = engine
        self._store = store
        self._vault = vault
        self._own = own
        self._trust = TrustStore(engine)

    async def export(self, case_id: str, recipient_org: str, *, actor: str) -> Exported:
        recipient = await self._trust.recipient(recipient_org)
        if recipient is None:
            raise PackageRefused(
                "untrusted_recipient", f"{recipient_org} has no trusted key here: compare its "
                "fingerprint out of band, then `homeward keys trust`")
        rows = await case_rows(self._engine, case_id)
        facts = case_facts(case_id, [row_to_event(_mapping(r)) for r in rows])
        if facts is None:
            raise PackageRefused("no_such_case", f"there is no case {case_id} here")
        groups = package_groups(facts, recipient_org)
        fields, notes = {}, ()
        if groups:
            try:
                view = await self._vault.read_for_package(
                    case_id, groups, reader_org=self._own.org, reader_actor=actor)
            except PersonNotFound:
                view = None
            if view is not None and not isinstance(view, ErasedPerson):
                record = view.record
                fields = record.model_dump(mode="json", include=record.model_fields_set)
                notes = tuple(PackedNote(note_id=n.note_id, kind=n.kind.value, text=n.text,
                                         recorded_at=n.recorded_at,
                                         recorded_by_org=n.recorded_by_org,
                                         recorded_by_actor=n.recorded_by_actor)
                              for n in view.notes)
            else:
                groups = frozenset()
            rows = await case_rows(self._engine, case_id)  # with the read just recorded
        events = tuple(packed_event(r) for r in rows)
        group_codes = tuple(sorted(g.value for g in groups if _carried(g, fields, notes)))
        manifest = Manifest(
            package_id=uuid.uuid4(), case_id=case_id, source_org=self._own.org,
            sender_key_fingerprint=self._own.public.fingerprint, recipient_org=recipient_org,
            recipient_key_fingerprint=recipient.fingerprint, created_at=datetime.now(UTC),
            event_count=len(events), chain_head=events[-1].hash, field_groups=group_codes)
        package = seal(manifest, Contents(events=events, identity_fields=fields, notes=notes),
                       self._own, recipient)
        exported = CaseExported(recipient_org=recipient_org, package_id=manifest.package_id,
                                event_count=manifest.event_count,
                                chain_head=manifest.chain_head, field_groups=group_codes)
        await self._store.append(case_id, None, [NewEvent(
            uuid.uuid4(), CaseExported.TYPE, CaseExported.schema_version,
            exported.model_dump(mode="json", exclude={"type"}), self._own.org, actor,
            manifest.created_at)])
        log.info("case package exported", case_id=case_id, package_id=str(manifest.package_id),
                 recipient_org=recipient_org, event_count=manifest.event_count)
        return Exported(manifest, package)

    async def import_(self, data: bytes, *, actor: str) -> ImportResult:
        sealed = parse(data)
        manifest = sealed.manifest
        sender = await self._trust.sender(manifest.source_org, manifest.sender_key_fingerprint)
        if sender is None:
            raise PackageRefused(
                "untrusted_sender", f"package {manifest.package_id} is signed by "
                f"{manifest.source_org} with key "
                f"{format_fingerprint(manifest.sender_key_fingerprint)}, which this deployment "
                "does not trust")
        contents = open_sealed(sealed, self._own, sender)
        earlier = await earlier_import(self._engine, sealed)
        if earlier is not None:
            return earlier
        result = await write_import(self._engine, self._vault, sealed, contents, actor=actor)
        log.info("case package imported", case_id=result.case_id,
                 package_id=str(result.package_id), source_org=result.source_org,
                 event_count=result.event_count, already_imported=result.already_imported)
        return result


def _carried(group: FieldGroup, fields: dict, notes: tuple) -> bool:
    """Whether the package carries anything of ``group`` (the manifest names only those)."""
    if group is FieldGroup.NOTES:
        return bool(notes)
    return any(name in fields for name in FIELD_GROUPS[group])


def _mapping(row):
    return row._mapping
