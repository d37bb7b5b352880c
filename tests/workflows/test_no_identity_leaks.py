"""The proof that no identity leaks into orchestration, storage or logs.

Starts the real dev stack (the same ``DevStack`` as ``homeward dev``: embedded PostgreSQL,
Temporal dev server, worker, API), records people whose every vault field holds a
distinctive marker, runs their cases through the journey with signals, Updates, a
refused Update, a cancelled flight, a border hold and a consent withdrawal, then searches
for every marker in: every workflow history fetched with the codec disabled and again
decoded with it, every search attribute, every event in the event store, every captured
log line (ours, the Temporal server's, PostgreSQL's), and the raw bytes of the Temporal
SQLite file and of PostgreSQL's data directory.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from case_driver import (
    PARTNER,
    CaseDriver,
    case_input,
    consent,
    decision,
    documents_issued,
    medical_fit,
    screening,
    security,
)
from google.protobuf.message import Message
from sqlalchemy import text
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import TemporalError

from domain import messages as msg
from domain.vocabulary import LegFailure, TaskKind
from store.vault import (
    Address,
    ContactDetail,
    ContactKind,
    DocumentKind,
    FamilyContact,
    IdentityDocument,
    NoteKind,
    PersonRecord,
    PersonVault,
    Photo,
    ReadPurpose,
)
from workers.demo import DEMO_CONFIG
from workers.dev import DevStack
from workers.logging import configure_logging
from workers.services import master_keyring
from workers.settings import Settings
from workers.temporal import data_converter

MARKERS = {
    "given_names": "Zvezdanamarker",
    "family_name": "Leakovskayamark",
    "alias": "Lunamarkerova",
    "date_of_birth": "1987-03-19",
    "document_number": "LK9931X7QZ",
    "phone": "+37360990417",
    "address": "Strada Ascunsa 77 markerbloc",
    "family_contact": "Mamamarkerescu",
    "interview_answer": "NOTEMARK interview: the man called Dragomarker",
    "wellbeing_note": "NOTEMARK wellbeing 5521",
    "photo": "PHOTOMARKERBYTES-3141",
}


def person(n: int) -> PersonRecord:
    return PersonRecord(
        given_names=f"{MARKERS['given_names']}{n}",
        family_name=MARKERS["family_name"],
        aliases=(MARKERS["alias"],),
        date_of_birth=date.fromisoformat(MARKERS["date_of_birth"]),
        nationality="MD",
        identity_documents=(IdentityDocument(kind=DocumentKind.PASSPORT,
                                             number=MARKERS["document_number"],
                                             issuing_country="MD"),),
        contact_details=(ContactDetail(kind=ContactKind.PHONE, value=MARKERS["phone"]),),
        family_contacts=(FamilyContact(name=MARKERS["family_contact"], relationship="mother"),),
        photos=(Photo(content=MARKERS["photo"].encode()),),
        shelter_address=Address(lines=(MARKERS["address"],), locality="Belgrade", country="RS"),
    )


def markers_in(blob: str | bytes) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [m for m in MARKERS.values() if m.encode() in data]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _payloads(message: Message) -> list[Payload]:
    """Every Payload inside a protobuf message, but for search attributes (indexed, so
    never encrypted: checked separately)."""
    found: list[Payload] = []
    if isinstance(message, Payload):
        return [message]
    for field, value in message.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            values = value.values()
        elif field.is_repeated:
            values = value
        else:
            values = [value]
        for item in values:
            if isinstance(item, Message):
                found.extend(_payloads(item))
    return found


@pytest.fixture
async def stack(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path / "data",
        temporal_address=f"127.0.0.1:{_free_port()}",
        temporal_ui_port=_free_port(),
        api_port=_free_port(),
    )
    logs = io.StringIO()
    configure_logging("json", "DEBUG", stream=logs)
    async with DevStack(settings) as running:
        yield settings, running, logs
    configure_logging("json", "INFO")


async def _drive_cases(running, settings, vault: PersonVault) -> list[CaseDriver]:
    store, client = running.store, running.client
    cases = []
    for n, disruptions in enumerate([(LegFailure.CANCELLED_FLIGHT,), (), ()]):
        case = await CaseDriver.start(client, settings.task_queue, store, case_input(
            config=DEMO_CONFIG, simulated_disruptions=disruptions))
        cid = case.input.case_id
        await vault.record(cid, person(n), by_org=case.input.sending_mission, by_actor="coord")
        await vault.add_note(cid, NoteKind.INTERVIEW_ANSWER, MARKERS["interview_answer"],
                             by_org=case.input.sending_mission, by_actor="coord")
        await vault.add_note(cid, NoteKind.WELLBEING_NOTE, MARKERS["wellbeing_note"],
                             by_org=case.input.sending_mission, by_actor="coord")
        cases.append(case)

    async def through_booking(case: CaseDriver) -> None:
        await case.complete(TaskKind.SCREENING_INTERVIEW, screening())
        await case.complete(TaskKind.OPTIONS_DECISION, decision())
        await case.complete(TaskKind.INFORMED_CONSENT, consent(datetime.now(UTC)))
        await case.complete(TaskKind.TRAVEL_DOCUMENTS, documents_issued())
        await case.complete(TaskKind.MEDICAL_CLEARANCE, medical_fit())
        await case.complete(TaskKind.SECURITY_ASSESSMENT, security())
        await case.until(lambda v: v.stage == "awaiting_departure", "a booking", timeout=60)

    async def returned(case: CaseDriver) -> None:  # cancelled flight, border hold, reception
        await through_booking(case)
        await case.fact("departed")
        await case.fact("arrived_at_border")
        await case.fact("border_hold_started")
        await case.task(TaskKind.BORDER_COMPANION)
        await case.complete(TaskKind.BORDER_COMPANION, msg.BorderCompanionResult(
            companion_record_id="rec_0123456789abcdef"), org=PARTNER)
        await case.fact("border_hold_lifted")
        await case.fact("border_cleared")
        await case.reception()
        assert (await asyncio.wait_for(case.result(), 60)).outcome == "returned"

    async def withdrawn(case: CaseDriver) -> None:
        await through_booking(case)  # then she leaves, and withdraws on the road
        await case.fact("departed")
        await case.withdraw()
        await case.complete(TaskKind.SAFE_PLACE, msg.SafePlaceResult(
            place="return_to_shelter", handed_to="shelter_staff",
            safe_place_record_id="rec_0123456789abcdef"))
        assert (await asyncio.wait_for(case.result(), 60)).outcome == "alternative_pathway"

    async def refused_update(case: CaseDriver) -> None:
        with pytest.raises(TemporalError):  # wrong organisation: the validator refuses
            await case.complete(TaskKind.SCREENING_INTERVIEW, screening(), org=PARTNER)
        await case.complete(TaskKind.SCREENING_INTERVIEW, screening())
        await case.complete(TaskKind.OPTIONS_DECISION, decision(choice="decline_assistance"))
        await asyncio.wait_for(case.result(), 60)

    await asyncio.gather(returned(cases[0]), withdrawn(cases[1]), refused_update(cases[2]))
    # Identity is read for a handoff: the read is recorded, and must not leak either.
    view = await vault.read(cases[0].input.case_id, purpose=ReadPurpose.HANDOFF_IDENTIFICATION,
                            reader_org=cases[0].input.receiving_mission, reader_actor="officer")
    assert markers_in(view.record.model_dump_json())  # the positive control: data is there
    return cases


async def test_no_identity_marker_appears_anywhere_outside_the_vault(stack):
    settings, running, logs = stack
    vault = PersonVault(running.engine, master_keyring(settings), running.store)
    cases = await _drive_cases(running, settings, vault)
    workflow_ids = [case.handle.id for case in cases]

    # 1. Histories through a client WITHOUT the codec: raw bytes as the server keeps them.
    raw = await Client.connect(settings.temporal_address, data_converter=pydantic_data_converter)
    for workflow_id in workflow_ids:
        history = await raw.get_workflow_handle(workflow_id).fetch_history()
        assert markers_in(history.to_json()) == [], workflow_id
        # Patch markers are written by the SDK's core, not the data converter: their one
        # payload is the patch id (a code of ours), checked to be exactly that.
        patches = [e for e in history.events
                   if e.marker_recorded_event_attributes.marker_name == "core_patch"]
        for marker in patches:
            for p in _payloads(marker):
                assert json.loads(p.data) in ({"id": "road-facts-as-updates", "deprecated": False},
                                              {"id": "start-reintegration", "deprecated": False})
        payloads = [p for e in history.events if e not in patches for p in _payloads(e)]
        encrypted = [p for p in payloads if p.metadata.get("encoding") == b"binary/encrypted"]
        assert len(encrypted) > 10
        assert len(encrypted) == len(payloads), "a payload left the worker unencrypted"

        # 2. The same history decoded WITH the codec, as an operator sees it.
        codec = data_converter(settings).payload_codec
        decoded = await codec.decode(encrypted)
        plaintext = b"\n".join(p.data for p in decoded)
        assert workflow_id.removeprefix("return-").encode() in plaintext  # really decoded
        assert markers_in(plaintext) == [], workflow_id

        # 3. Search attributes.
        description = await running.client.get_workflow_handle(workflow_id).describe()
        assert markers_in(repr(description.typed_search_attributes)) == []
        assert markers_in(repr(description.raw_description)) == []

    # 4. Every event in the store (identity.recorded/read included: ids and codes only).
    events = await running.store.read_all(limit=10_000)
    assert {"identity.recorded", "identity.read"} <= {e.event_type for e in events}
    assert markers_in(json.dumps([e.payload for e in events])) == []
    assert markers_in(json.dumps([[e.actor, e.author_org, e.case_id] for e in events])) == []

    # 5. Logs: ours (structlog and the standard library), Temporal's, PostgreSQL's.
    assert "events appended" in logs.getvalue()  # the capture really holds our logs
    assert markers_in(logs.getvalue()) == []
    data_dir = settings.data_dir.resolve()
    assert markers_in((data_dir / "temporal.log").read_bytes()) == []

    # 6. At rest: the Temporal SQLite file and PostgreSQL's files hold no plaintext marker.
    async with running.engine.connect() as conn:
        await conn.execute(text("CHECKPOINT"))
    assert markers_in((data_dir / "temporal.db").read_bytes()) == []
    for path in (data_dir / "postgres").rglob("*"):
        if path.is_file() and not path.is_socket():
            assert markers_in(path.read_bytes()) == [], path
