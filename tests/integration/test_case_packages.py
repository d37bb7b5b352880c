"""Case packages between deployments (issue 16 item 2, decision 0067): a case exported from
one deployment's database and imported into a second (two databases on the embedded
server), with its chain, the identity her consent lets the recipient see, and
``case.imported``; one flipped byte anywhere, another recipient, an untrusted sender, an
attacker's re-signed events, a conflicting package: refused, nothing written; the same
package again: the same answer, nothing new; no identity in the manifest, the logs or
the events; the CLI's messages; the administrators' routes."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import structlog
from api_without_temporal import KEYS as API_KEYS
from api_without_temporal import services_without_temporal
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from test_read_models import new, referral

from api.access import Action, Relation, authorise, case_facts, org_relation
from api.app import create_app
from api.service.case_packages import CasePackages
from domain.journey import events as ev
from store.accounts import Accounts, OrgKind, Principal, UserRole
from store.event_store import EventStore
from store.events import Causation, StoredEvent
from store.hashing import event_hash
from store.keys import Key, Keyring
from store.packages import (
    MAGIC,
    Contents,
    Manifest,
    OwnKeys,
    PackageRefused,
    PackedEvent,
    PublicKeys,
    open_sealed,
    parse,
    seal,
)
from store.trust import TrustStore
from store.vault import (
    Address,
    FieldGroup,
    NoteKind,
    PersonRecord,
    PersonVault,
    ReadPurpose,
)
from store.verify import verify_chain
from workers.case_packages_cli import run as cli_run
from workers.settings import Settings

MARKER = "Zorica Leakcheck-Markovic"
SHELTER = "Ulica Tajna 7"
KEYS_A = Keyring(Key(b"a" * 32))
KEYS_B = Keyring(Key(b"b" * 32))
OFFICER_MD = Principal("officer.md", "mission-md", OrgKind.RECEIVING_MISSION,
                       UserRole.RECEIVING_OFFICER)


@pytest.fixture
async def second_engine(pg_server_url: str, _migrated_template: str) -> AsyncIterator[AsyncEngine]:
    """Another deployment's database on the same embedded server."""
    base, _, query = pg_server_url.partition("?")
    prefix = base.rsplit("/", 1)[0]
    name = f"b{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(f"{prefix}/postgres?{query}", isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE {_migrated_template}")
    engine = create_async_engine(f"{prefix}/{name}?{query}")
    yield engine
    await engine.dispose()
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.dispose()


class Deployment:
    def __init__(self, engine: AsyncEngine, keyring: Keyring, org: str):
        self.engine = engine
        self.store = EventStore(engine)
        self.vault = PersonVault(engine, keyring, self.store)
        self.keys = OwnKeys.generate(org)
        self.packages = CasePackages(engine, self.store, self.vault, self.keys)

    async def trust(self, other: Deployment | PublicKeys) -> None:
        keys = other.keys.public if isinstance(other, Deployment) else other
        await TrustStore(self.engine).trust(keys)


@pytest.fixture
async def pair(engine, second_engine) -> tuple[Deployment, Deployment]:
    """mission-rs runs deployment A, mission-md deployment B; each trusts the other."""
    a, b = Deployment(engine, KEYS_A, "mission-rs"), Deployment(second_engine, KEYS_B,
                                                                 "mission-md")
    await a.trust(b)
    await b.trust(a)
    return a, b


async def a_case(a: Deployment, *, handed: bool = True) -> str:
    case_id = f"c-{uuid.uuid4().hex[:12]}"
    events = [new(referral(), 0, "mission-rs")]
    if handed:  # the receiving mission's first task: it may read her identity
        events.append(new(ev.TaskOpened(task_id=uuid.uuid4(), kind="best_interest_determination",
                                        assignee_org="mission-md",
                                        assignee_role="receiving_mission",
                                        due_at=datetime(2026, 11, 9, tzinfo=UTC)), 5))
    for event in events:
        await a.store.append(case_id, None, [event])
    given, family = MARKER.split(" ", 1)
    await a.vault.record(case_id, PersonRecord(
        given_names=given, family_name=family, date_of_birth=date(2004, 2, 29),
        nationality="MD", shelter_address=Address(lines=(SHELTER,), country="RS")),
        by_org="mission-rs", by_actor="coord.rs")
    await a.vault.add_note(case_id, NoteKind.WELLBEING_NOTE, f"{MARKER} slept well",
                           by_org="mission-rs", by_actor="coord.rs")
    return case_id


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {table: (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
                for table in ("events", "person_keys", "person_fields", "person_notes",
                              "case_packages_imported")}


EMPTY = {"events": 0, "person_keys": 0, "person_fields": 0, "person_notes": 0,
         "case_packages_imported": 0}


async def test_a_case_goes_from_one_deployment_to_another_with_what_her_consent_allows(pair):
    a, b = pair
    case_id = await a_case(a)
    with structlog.testing.capture_logs() as logs:
        exported = await a.packages.export(case_id, "mission-md", actor="admin.rs")
        package = exported.package
        result = await b.packages.import_(package, actor="admin.md")
    manifest = exported.manifest
    assert manifest.field_groups == ("birth_and_nationality", "names", "notes")
    assert (manifest.source_org, manifest.recipient_org) == ("mission-rs", "mission-md")
    assert manifest.sender_key_fingerprint == a.keys.public.fingerprint
    assert manifest.recipient_key_fingerprint == b.keys.public.fingerprint

    source = await a.store.read_case(case_id)
    assert [e.event_type for e in source][-2:] == ["identity.read", "case.exported"]
    assert source[-2].payload == {"purpose": "case_package",
                                  "field_groups": ["birth_and_nationality", "contact",
                                                   "documents", "family", "names", "notes",
                                                   "photos"]}
    assert source[-1].payload["package_id"] == str(manifest.package_id)

    # The events with their own ids, authors and hashes, then case.imported chained on.
    imported = await b.store.read_case(case_id)
    assert len(imported) == manifest.event_count + 1 == len(source)
    for mine, theirs in zip(imported, source[:-1], strict=False):
        assert (mine.event_id, mine.author_org, mine.actor, mine.hash, mine.prev_hash) == (
            theirs.event_id, theirs.author_org, theirs.actor, theirs.hash, theirs.prev_hash)
    last = imported[-1]
    assert last.event_type == "case.imported" and last.author_org == "mission-md"
    assert last.prev_hash == manifest.chain_head
    assert last.payload == {
        "source_org": "mission-rs", "recipient_org": "mission-md",
        "package_id": str(manifest.package_id), "event_count": manifest.event_count,
        "chain_head": manifest.chain_head,
        "sender_key_fingerprint": a.keys.public.fingerprint,
        "field_groups": ["birth_and_nationality", "names", "notes"]}
    assert (await verify_chain(b.engine)).ok
    assert not result.already_imported and result.case_id == case_id

    # Her identity under B's own keys: what the receiving mission may see, no shelter.
    view = await b.vault.read(case_id, purpose=ReadPurpose.CASE_REVIEW,
                              reader_org="mission-md", reader_actor="officer.md")
    assert view.record.given_names == "Zorica" and view.record.date_of_birth == date(2004, 2, 29)
    assert view.record.shelter_address is None
    assert [n.text for n in view.notes] == [f"{MARKER} slept well"]
    async with b.engine.connect() as conn:
        kek = (await conn.execute(text("SELECT kek_id FROM person_keys"))).scalar_one()
    assert kek == KEYS_B.current.key_id

    # B's access model sees it: read-only history for mission-md, nobody else's.
    facts = case_facts(case_id, await b.store.read_case(case_id))
    assert facts.imported_to == "mission-md"
    assert org_relation("mission-md", facts) is Relation.IMPORTED
    assert org_relation("mission-rs", facts) is Relation.NONE
    assert authorise(OFFICER_MD, Action.CASE_VIEW, facts).allowed
    assert authorise(OFFICER_MD, Action.IDENTITY_READ, facts).allowed
    steer = authorise(OFFICER_MD, Action.FOLLOW_UP, facts)
    assert (steer.status, steer.code) == (409, "case_imported")

    # No identity in the manifest (readable without a key), the file, the logs, the events.
    header = parse(package).header_bytes.decode()
    assert MARKER.split()[0] not in header and "2004" not in header
    for needle in (MARKER.encode(), b"Zorica", SHELTER.encode(), b"2004-02-29"):
        assert needle not in package
    log_text = json.dumps(logs, default=str)
    assert "Zorica" not in log_text and "2004-02-29" not in log_text
    assert [e["event"] for e in logs] == ["case package exported", "case package imported"]
    for event in (*source, *imported):
        assert "Zorica" not in json.dumps(event.payload) and SHELTER not in json.dumps(
            event.payload)


async def test_no_identity_goes_to_an_organisation_her_consent_does_not_name(pair):
    """Headquarters is just another recipient: without a consent naming it, no identity."""
    a, _b = pair
    hq = OwnKeys.generate("iom-hq")
    await a.trust(hq.public)
    case_id = await a_case(a)
    exported = await a.packages.export(case_id, "iom-hq", actor="admin.rs")
    assert exported.manifest.field_groups == ()
    contents = _open(exported.package, hq, a.keys.public)
    assert contents.identity_fields == {} and contents.notes == ()


def _open(package: bytes, own: OwnKeys, sender: PublicKeys) -> Contents:
    return open_sealed(parse(package), own, sender)


async def test_one_flipped_byte_anywhere_is_refused_and_nothing_is_written(pair):
    a, b = pair
    package = (await a.packages.export(await a_case(a), "mission-md", actor="admin.rs")).package
    header_end = len(MAGIC) + 4 + int.from_bytes(package[len(MAGIC):len(MAGIC) + 4], "big")
    positions = sorted({*range(0, len(package), max(1, len(package) // 120)),
                        *range(len(MAGIC) - 2, len(MAGIC) + 6), header_end - 1, header_end,
                        *range(len(package) - 66, len(package))})
    codes = set()
    for position in positions:
        tampered = bytearray(package)
        tampered[position] ^= 0x01
        with pytest.raises(PackageRefused) as refused:
            await b.packages.import_(bytes(tampered), actor="admin.md")
        codes.add(refused.value.code)
        assert "; " not in refused.value.message and "\n" not in refused.value.message
    assert codes <= {"not_a_package", "malformed_package", "untrusted_sender", "bad_signature"}
    assert "bad_signature" in codes
    assert await counts(b.engine) == EMPTY
    # The untouched package still imports: the refusals left nothing behind.
    assert not (await b.packages.import_(package, actor="admin.md")).already_imported


async def test_a_package_for_another_recipient_is_refused(pair, engine):
    a, b = pair
    hq = OwnKeys.generate("iom-hq")
    await a.trust(hq.public)
    package = (await a.packages.export(await a_case(a), "iom-hq", actor="admin.rs")).package
    with pytest.raises(PackageRefused) as refused:
        await b.packages.import_(package, actor="admin.md")
    assert refused.value.code == "wrong_recipient"
    assert "addressed to iom-hq" in refused.value.message
    assert await counts(b.engine) == EMPTY


async def test_a_package_from_an_untrusted_sender_is_refused(pair, second_engine):
    a, _b = pair
    async with second_engine.begin() as conn:  # B trusts nobody now
        await conn.execute(text("DELETE FROM package_trust"))
    package = (await a.packages.export(await a_case(a), "mission-md", actor="admin.rs")).package
    with pytest.raises(PackageRefused) as refused:
        await _b.packages.import_(package, actor="admin.md")
    assert refused.value.code == "untrusted_sender"
    assert "signed by mission-rs with key " in refused.value.message
    assert "which this deployment does not trust" in refused.value.message
    assert await counts(second_engine) == EMPTY


async def test_importing_the_same_package_again_answers_the_same_and_writes_nothing(pair):
    a, b = pair
    package = (await a.packages.export(await a_case(a), "mission-md", actor="admin.rs")).package
    first = await b.packages.import_(package, actor="admin.md")
    before = await counts(b.engine)
    again = await b.packages.import_(package, actor="admin.md")
    assert again.already_imported and not first.already_imported
    assert (again.package_id, again.case_id, again.event_count, again.chain_head,
            again.field_groups) == (first.package_id, first.case_id, first.event_count,
                                    first.chain_head, first.field_groups)
    assert await counts(b.engine) == before


async def test_a_second_package_of_a_case_held_here_is_refused(pair):
    a, b = pair
    case_id = await a_case(a)
    first = (await a.packages.export(case_id, "mission-md", actor="admin.rs")).package
    later = (await a.packages.export(case_id, "mission-md", actor="admin.rs")).package
    await b.packages.import_(first, actor="admin.md")
    before = await counts(b.engine)
    with pytest.raises(PackageRefused) as refused:
        await b.packages.import_(later, actor="admin.md")
    assert refused.value.code == "case_exists"
    assert await counts(b.engine) == before


def _forged(b: Deployment, case_id: str, case_rows: list, sender: OwnKeys,
            claimed_fingerprint: str) -> bytes:
    """The case's events with the risk level raised, the chain recomputed, sealed to B
    and signed with ``sender``'s key while claiming to come from mission-rs."""
    events, prev = [], "0" * 64
    for row in case_rows:
        payload = row.payload.replace('"risk_level":"low"', '"risk_level":"high"')
        fields = row.model_dump()
        fields["payload"], fields["prev_hash"] = payload, prev
        fields["hash"] = event_hash(
            prev, case_id=case_id, version=row.version, event_id=row.event_id,
            event_type=row.event_type, schema_version=row.schema_version,
            payload_json=payload, author_org=row.author_org, actor=row.actor,
            occurred_at=row.occurred_at, causation=Causation(
                row.causation_workflow_id, row.causation_run_id, row.causation_activity_id))
        prev = fields["hash"]
        events.append(PackedEvent(**fields))
    manifest = Manifest(package_id=uuid.uuid4(), case_id=case_id, source_org="mission-rs",
                        sender_key_fingerprint=claimed_fingerprint, recipient_org="mission-md",
                        recipient_key_fingerprint=b.keys.public.fingerprint,
                        created_at=datetime.now(UTC), event_count=len(events),
                        chain_head=prev)
    return seal(manifest, Contents(events=tuple(events)), sender, b.keys.public)



async def test_events_re_signed_by_an_attacker_with_another_key_are_refused(pair):
    a, b = pair
    case_id = await a_case(a)
    real = _open((await a.packages.export(case_id, "mission-md", actor="admin.rs")).package,
                 b.keys, a.keys.public)
    attacker = OwnKeys.generate("mission-rs")
    for claimed, code in ((attacker.public.fingerprint, "untrusted_sender"),
                          (a.keys.public.fingerprint, "bad_signature")):
        with pytest.raises(PackageRefused) as refused:
            await b.packages.import_(_forged(b, case_id, list(real.events), attacker, claimed),
                                     actor="admin.md")
        assert refused.value.code == code
    assert await counts(b.engine) == EMPTY


async def test_a_signed_package_whose_chain_or_events_do_not_hold_is_refused(pair):
    """Even from a trusted sender: the chain and the catalogue are checked on import."""
    a, b = pair
    case_id = await a_case(a)
    real = _open((await a.packages.export(case_id, "mission-md", actor="admin.rs")).package,
                 b.keys, a.keys.public)
    events = list(real.events)
    broken = events[:1] + [events[1].model_copy(update={"actor": "someone.else"})] + events[2:]
    unknown = [events[0].model_copy(update={"payload": '{"not":"a referral"}'})]

    def sealed(evs, head) -> bytes:
        manifest = Manifest(package_id=uuid.uuid4(), case_id=case_id, source_org="mission-rs",
                            sender_key_fingerprint=a.keys.public.fingerprint,
                            recipient_org="mission-md",
                            recipient_key_fingerprint=b.keys.public.fingerprint,
                            created_at=datetime.now(UTC), event_count=len(evs),
                            chain_head=head)
        return seal(manifest, Contents(events=tuple(evs)), a.keys, b.keys.public)

    with pytest.raises(PackageRefused) as refused:
        await b.packages.import_(sealed(broken, events[-1].hash), actor="admin.md")
    assert refused.value.code == "broken_chain"
    with pytest.raises(PackageRefused) as refused:
        await b.packages.import_(sealed(unknown, unknown[0].hash), actor="admin.md")
    assert refused.value.code == "broken_chain"  # the hash no longer matches the payload
    rehashed = unknown[0].model_copy(update={"hash": event_hash(
        "0" * 64, case_id=case_id, version=1, event_id=unknown[0].event_id,
        event_type=unknown[0].event_type, schema_version=unknown[0].schema_version,
        payload_json=unknown[0].payload, author_org=unknown[0].author_org,
        actor=unknown[0].actor, occurred_at=unknown[0].occurred_at,
        causation=Causation())})
    with pytest.raises(PackageRefused) as refused:
        await b.packages.import_(sealed([rehashed], rehashed.hash), actor="admin.md")
    assert refused.value.code == "invalid_event"
    assert await counts(b.engine) == EMPTY


# --- the command line ---------------------------------------------------------------------


def _ns(command: str, sub: str, **kw) -> argparse.Namespace:
    key = "keys_command" if command == "keys" else "case_command"
    return argparse.Namespace(command=command, **{key: sub}, **kw)


async def test_the_cli_generates_shows_trusts_exports_and_imports(engine, second_engine,
                                                                  tmp_path, monkeypatch,
                                                                  capsys):
    settings_a = Settings(master_key="YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=")
    settings_b = Settings(master_key="YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI=")
    key_a, key_b = tmp_path / "a.json", tmp_path / "b.json"

    async def as_(key_file, eng, settings, args) -> tuple[int, str, str]:
        monkeypatch.setenv("HOMEWARD_PACKAGE_KEY_FILE", str(key_file))
        code = await cli_run(eng, settings, args)
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = await as_(key_a, engine, settings_a, _ns("keys", "generate", org="mission-rs"))
    assert code == 0 and "package keys generated for mission-rs" in out
    assert (key_a.stat().st_mode & 0o777) == 0o600
    private = json.loads(key_a.read_text())["signing_private_key"]
    assert private not in out
    code, _, err = await as_(key_a, engine, settings_a, _ns("keys", "generate", org="mission-rs"))
    assert code == 2 and "exists already" in err
    await as_(key_b, second_engine, settings_b, _ns("keys", "generate", org="mission-md"))
    _, show_a, _ = await as_(key_a, engine, settings_a, _ns("keys", "show"))
    _, show_b, _ = await as_(key_b, second_engine, settings_b, _ns("keys", "show"))
    bundle = {o: next(line.split()[-1] for line in s.splitlines() if "bundle" in line)
              for o, s in (("a", show_a), ("b", show_b))}
    fingerprint_a = next(line.split(":", 1)[1].strip() for line in show_a.splitlines()
                         if line.startswith("fingerprint"))
    code, out, _ = await as_(key_b, second_engine, settings_b,
                             _ns("keys", "trust", org="mission-rs", bundle=bundle["a"]))
    assert code == 0 and f"trusted: mission-rs, fingerprint {fingerprint_a}" in out
    code, _, err = await as_(key_b, second_engine, settings_b,
                             _ns("keys", "trust", org="mission-rs", bundle="nonsense"))
    assert code == 2 and "a key bundle starts with" in err
    await as_(key_a, engine, settings_a, _ns("keys", "trust", org="mission-md",
                                            bundle=bundle["b"]))
    _, listed, _ = await as_(key_b, second_engine, settings_b, _ns("keys", "list"))
    assert listed.startswith(f"mission-rs  {fingerprint_a}  trusted ")

    a = Deployment(engine, Keyring(Key(b"a" * 32)), "mission-rs")
    case_id = await a_case(a)
    out_file = tmp_path / "case.hwpkg"
    code, _, err = await as_(key_a, engine, settings_a,
                             _ns("case", "export", case_id=case_id, recipient="iom-hq",
                                 out=str(out_file)))
    assert code == 2 and "refused (untrusted_recipient): iom-hq has no trusted key" in err
    code, out, _ = await as_(key_a, engine, settings_a,
                             _ns("case", "export", case_id=case_id, recipient="mission-md",
                                 out=str(out_file)))
    assert code == 0 and f"case {case_id} exported to mission-md" in out
    assert "identity: birth_and_nationality, names, notes" in out and "Zorica" not in out

    tampered = tmp_path / "tampered.hwpkg"
    data = bytearray(out_file.read_bytes())
    data[len(data) // 2] ^= 0x80
    tampered.write_bytes(bytes(data))
    code, out, err = await as_(key_b, second_engine, settings_b,
                               _ns("case", "import", file=str(tampered)))
    assert code == 1 and out == ""
    assert err.startswith("homeward case import: refused (bad_signature): the signature of "
                          "package ") and err.endswith("; nothing was written\n")
    assert err.count("\n") == 1
    code, out, _ = await as_(key_b, second_engine, settings_b,
                             _ns("case", "import", file=str(out_file)))
    assert code == 0 and f"case {case_id} imported from mission-rs" in out
    code, out, _ = await as_(key_b, second_engine, settings_b,
                             _ns("case", "import", file=str(out_file)))
    assert code == 0 and "was imported already" in out and "nothing new written" in out
    code, _, err = await as_(key_b, second_engine, settings_b,
                             _ns("case", "import", file=str(tmp_path / "missing")))
    assert code == 2 and "No such file" in err


# --- the administrators' routes -------------------------------------------------------------


async def _api(engine: AsyncEngine, users: dict[str, tuple[str, OrgKind, UserRole]]):
    accounts = Accounts(engine)
    tokens = {}
    for user, (org, kind, role) in users.items():
        try:
            await accounts.add_org(org, kind, org, "RS")
        except Exception:  # noqa: BLE001 - added for an earlier user
            pass
        await accounts.add_user(user, org, role)
        tokens[user] = (await accounts.create_token(user, timedelta(hours=1))).bearer
    app = create_app(services_without_temporal(engine, accounts))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="http://homeward.test")
    return client, {u: {"Authorization": f"Bearer {t}"} for u, t in tokens.items()}


async def test_administrators_export_and_import_through_the_api_others_are_refused(
        engine, second_engine, tmp_path, monkeypatch):
    a = Deployment(engine, API_KEYS, "mission-rs")
    b = Deployment(second_engine, API_KEYS, "mission-md")
    await a.trust(b)
    await b.trust(a)
    (tmp_path / "a.json").write_text(a.keys.to_json())
    (tmp_path / "b.json").write_text(b.keys.to_json())
    case_id = await a_case(a)
    api_a, who_a = await _api(engine, {
        "admin.rs": ("mission-rs", OrgKind.SENDING_MISSION, UserRole.ADMINISTRATOR),
        "admin.al": ("mission-al", OrgKind.SENDING_MISSION, UserRole.ADMINISTRATOR),
        "coord.rs": ("mission-rs", OrgKind.SENDING_MISSION, UserRole.COORDINATOR)})
    api_b, who_b = await _api(second_engine, {
        "admin.md": ("mission-md", OrgKind.RECEIVING_MISSION, UserRole.ADMINISTRATOR),
        "officer.md": ("mission-md", OrgKind.RECEIVING_MISSION, UserRole.RECEIVING_OFFICER)})
    export = f"/admin/case-packages/export?case_id={case_id}&to=mission-md"
    async with api_a, api_b:
        monkeypatch.setenv("HOMEWARD_PACKAGE_KEY_FILE", str(tmp_path / "a.json"))
        refused = await api_a.post(export, headers=who_a["coord.rs"])
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        other = await api_a.post(export, headers=who_a["admin.al"])
        assert other.status_code == 404
        answer = await api_a.post(export, headers=who_a["admin.rs"])
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/vnd.homeward.case-package"
        package = answer.content
        assert answer.headers["x-package-id"] == str(parse(package).manifest.package_id)

        monkeypatch.setenv("HOMEWARD_PACKAGE_KEY_FILE", str(tmp_path / "b.json"))
        url = "/admin/case-packages/import"
        for user in ("officer.md",):
            refused = await api_b.post(url, content=package, headers=who_b[user])
            assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        bad = await api_b.post(url, content=b"PK\x03\x04 a zip", headers=who_b["admin.md"])
        assert (bad.status_code, bad.json()["code"]) == (422, "not_a_package")
        assert bad.json()["detail"].endswith("nothing was written")
        flipped = bytearray(package)
        flipped[-1] ^= 1
        bad = await api_b.post(url, content=bytes(flipped), headers=who_b["admin.md"])
        assert (bad.status_code, bad.json()["code"]) == (422, "bad_signature")
        done = await api_b.post(url, content=package, headers=who_b["admin.md"])
        assert done.status_code == 200, done.text
        assert done.json()["case_id"] == case_id and not done.json()["already_imported"]
        again = await api_b.post(url, content=package, headers=who_b["admin.md"])
        assert again.json() == {**done.json(), "already_imported": True}

        # The recipient reads the imported case; steering it is refused as imported.
        timeline = await api_b.get(f"/cases/{case_id}/timeline", headers=who_b["officer.md"])
        assert timeline.status_code == 200
        assert timeline.json()["events"][-1]["type"] == "case.imported"
        note = await api_b.post(f"/cases/{case_id}/person/notes", headers=who_b["officer.md"],
                                json={"kind": "wellbeing_note", "text": "x"})
        assert (note.status_code, note.json()["code"]) == (409, "case_imported")
        read = await api_b.post(f"/cases/{case_id}/person/disclosures",
                                headers=who_b["officer.md"],
                                json={"purpose": "case_review", "field_groups": ["names"]})
        assert read.status_code == 200 and "Zorica" in json.dumps(read.json())

    for eng, expected in ((engine, {("case_package.export", case_id, 403),
                                    ("case_package.export", case_id, 404),
                                    ("case_package.export", case_id, 200)}),
                          (second_engine, {("case_package.import", None, 403),
                                           ("case_package.import", None, 422),
                                           ("case_package.import", case_id, 200)})):
        async with eng.connect() as conn:
            rows = {tuple(r) for r in await conn.execute(text(
                "SELECT action, case_id, status FROM audit_log"))}
        assert expected <= rows


def test_field_groups_follow_the_access_rules():
    from api.access import package_groups

    def facts(*extra):
        events = [new(referral(), 0, "mission-rs"), *extra]
        return case_facts("c-123456", [_stored(i, e) for i, e in enumerate(events, 1)])

    assert package_groups(facts(), "mission-md") == frozenset()  # not handed yet
    task = new(ev.TaskOpened(task_id=uuid.uuid4(), kind="best_interest_determination",
                             assignee_org="mission-md", assignee_role="receiving_mission",
                             due_at=datetime(2026, 11, 9, tzinfo=UTC)), 1)
    assert FieldGroup.SHELTER not in package_groups(facts(task), "mission-md")
    assert FieldGroup.NAMES in package_groups(facts(task), "mission-md")
    shared = new(("sharing.granted", {"org_id": "iom-hq", "consent_record_id": "rec_abcdefgh"}),
                 2, "mission-rs")
    assert package_groups(facts(shared), "iom-hq") == {FieldGroup.NAMES, FieldGroup.PHOTOS}
    withdrawn = new(("consent.withdrawn", {"change": "withdrawn"}), 3, "mission-rs")
    assert package_groups(facts(shared, withdrawn), "iom-hq") == frozenset()
    assert package_groups(facts(task), "iom-hq") == frozenset()


def _stored(version, event):
    return StoredEvent(version, "c-123456", version, event.event_id, event.event_type,
                       event.schema_version, event.payload, event.author_org, event.actor,
                       event.occurred_at, event.occurred_at, event.causation, "", "")
