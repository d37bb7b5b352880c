"""The maintenance Schedules on a real Temporal dev server (issue 14, decision 0062):
`ensure_schedules` creates the retention erasure and chain verification schedules and
updates them idempotently; a triggered run goes through the real worker, erases exactly
what `homeward retention erase` would, or finds a tampered chain, and records its result
as an event; no identity reaches Temporal, the events or the logs."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import structlog
from payload_walk import payloads_in
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.journey.events import ReferralRegistered, ReturnedOutcome
from domain.maintenance import MaintenanceTask, maintenance_stream
from store.event_store import EventStore
from store.events import NewEvent
from store.keys import Key, Keyring
from store.retention import RETENTION_ACTOR, expired_cases
from store.vault import IDENTITY_ERASED, PersonRecord, PersonVault
from workers.codec import make_data_converter
from workers.lifecycle import CaseLifecycle
from workers.schedules import SCHEDULES, ensure_schedules, find_schedule, trigger_schedule
from workers.settings import Settings
from workers.worker import build_worker
from workflows.maintenance import CHAIN_TAMPERED, MaintenanceRecorded

BIN = Path(sys.executable).parent
PAYLOAD_KEYRING = Keyring(Key.generate())
MASTER_KEY = Key.generate()
MARKER = "Zlatanovicmarker"  # the identity no Temporal payload, event or log may hold
SCHEDULE_IDS = {"homeward-retention-erasure", "homeward-store-verify"}


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[Client]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=make_data_converter(PAYLOAD_KEYRING), dev_server_log_level="error")
    try:
        yield env.client
    finally:
        await env.shutdown()


def settings_for(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, master_key=MASTER_KEY.to_base64(),
                    task_queue=f"maintenance-{uuid.uuid4().hex[:8]}", **overrides)


async def delete_schedules(client: Client) -> None:
    for schedule in SCHEDULES:
        try:
            await client.get_schedule_handle(schedule.schedule_id).delete()
        except RPCError:
            pass


async def listed_schedule_ids(client: Client, expected: set[str]) -> set[str]:
    """The ids the server lists (visibility is eventually consistent: wait for them)."""
    for _ in range(200):
        listed = {s.id async for s in await client.list_schedules()}
        if listed == expected:
            return listed
        await asyncio.sleep(0.1)
    return listed


async def run_of(client: Client, name: str, after: set[str]) -> str:
    """The workflow id of the schedule's run that is not in ``after``."""
    handle = client.get_schedule_handle(find_schedule(name).schedule_id)
    for _ in range(300):
        info = (await handle.describe()).info
        ids = {a.action.workflow_id for a in [*info.recent_actions]}  # type: ignore[attr-defined]
        ids |= {r.workflow_id for r in info.running_actions}  # type: ignore[attr-defined]
        if new := ids - after:
            return new.pop()
        await asyncio.sleep(0.1)
    raise AssertionError(f"no run of {name} started")


async def trigger_and_wait(client: Client, name: str, seen: set[str]) -> tuple[str, Any]:
    # A run's workflow id ends in its scheduled second: a trigger in the second of the
    # previous run's would start nothing (the id is taken).
    await asyncio.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)
    await trigger_schedule(client, name)
    workflow_id = await run_of(client, name, seen)
    seen.add(workflow_id)
    handle = client.get_workflow_handle(workflow_id, result_type=MaintenanceRecorded)
    try:
        return workflow_id, await handle.result()
    except WorkflowFailureError as failure:
        return workflow_id, failure


async def history_plaintext(client: Client, workflow_id: str) -> bytes:
    """The raw history and every payload in it decoded with the codec."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    payloads = [p for e in history.events for p in payloads_in(e)]
    codec = client.data_converter.payload_codec
    assert codec is not None
    decoded = await codec.decode(payloads)
    return b"\n".join([*(e.SerializeToString() for e in history.events),
                       *(p.data for p in decoded)])


async def referred(store: EventStore, case_id: str, closed: datetime | None) -> None:
    """A case referred in 2014 and, with ``closed``, returned then: the lifecycle reads
    only the types and times."""
    events = [NewEvent(uuid.uuid4(), ReferralRegistered.TYPE, 1, {}, "mission-rs", "u-1",
                       datetime(2014, 1, 1, tzinfo=UTC))]
    if closed:
        events.append(NewEvent(uuid.uuid4(), ReturnedOutcome.TYPE, 1, {}, "homeward",
                               "system:workflow", closed))
    await store.append(case_id, 0, events)


async def test_ensure_creates_both_schedules_and_a_second_run_updates_them(
    temporal: Client, database_url: str
) -> None:
    await delete_schedules(temporal)
    settings = settings_for(database_url)

    assert await ensure_schedules(temporal, settings) == [
        ("homeward-retention-erasure", "created"), ("homeward-store-verify", "created")]
    await temporal.get_schedule_handle("homeward-store-verify").pause(note="operator: hold")
    moved = settings.model_copy(update={"verify_schedule": "15 1 * * *",
                                        "schedule_time_zone": "Europe/Belgrade"})
    assert await ensure_schedules(temporal, moved) == [
        ("homeward-retention-erasure", "updated"), ("homeward-store-verify", "updated")]

    assert await listed_schedule_ids(temporal, SCHEDULE_IDS) == SCHEDULE_IDS  # two, not four
    verify = await temporal.get_schedule_handle("homeward-store-verify").describe()
    assert verify.schedule.spec.time_zone_name == "Europe/Belgrade"
    belgrade = ZoneInfo("Europe/Belgrade")
    assert {(t.astimezone(belgrade).hour, t.astimezone(belgrade).minute)
            for t in verify.info.next_action_times} == {(1, 15)}
    assert verify.schedule.state.paused  # an operator's pause survives `ensure`
    assert verify.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    action = verify.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == ("ChainVerificationWorkflow",
                                                     settings.task_queue)
    assert action.args == []  # a run takes nothing: no payload to hold identity
    retention = await temporal.get_schedule_handle("homeward-retention-erasure").describe()
    assert not retention.schedule.state.paused
    assert {(t.astimezone(belgrade).hour, t.astimezone(belgrade).minute)
            for t in retention.info.next_action_times} == {(3, 30)}  # the default's time
    assert retention.schedule.action.workflow == "RetentionErasureWorkflow"  # type: ignore[attr-defined]


@pytest.fixture
async def worker_for(temporal: Client, engine: AsyncEngine):
    """A worker as `homeward worker` builds it, on the test's database and task queue,
    with the schedules pointing at that queue."""
    started = []

    async def start(settings: Settings):
        await ensure_schedules(temporal, settings)
        for schedule in SCHEDULES:  # `ensure` keeps a pause; the tests run them
            await temporal.get_schedule_handle(schedule.schedule_id).unpause()
        worker = build_worker(temporal, EventStore(engine), settings.task_queue, "simulated",
                              settings, engine=engine)
        started.append(asyncio.create_task(worker.run()))
        started.append(worker)
        return worker

    yield start
    for item in reversed(started):
        if not isinstance(item, asyncio.Task):
            await item.shutdown()


async def test_a_triggered_retention_run_erases_what_the_cli_would_and_records_it(
    temporal: Client, engine: AsyncEngine, database_url: str, worker_for
) -> None:
    store = EventStore(engine)
    vault = PersonVault(engine, Keyring(MASTER_KEY), store)
    long_ago, last_year = datetime(2015, 3, 1, tzinfo=UTC), datetime(2025, 9, 1, tzinfo=UTC)
    for case_id, closed in (("case-closed-2015", long_ago), ("case-closed-2025", last_year),
                            ("case-active", None)):
        await referred(store, case_id, closed)
        await vault.record(case_id, PersonRecord(family_name=MARKER), by_org="mission-rs",
                           by_actor="u-1")
    settings = settings_for(database_url, retention_years=5)
    # What `homeward retention list` shows, and so what `retention erase --yes` erases.
    cli_would_erase = [c.case_id for c in await expired_cases(
        vault, CaseLifecycle(store).closed_at, retention_years=settings.retention_years)]
    assert cli_would_erase == ["case-closed-2015"]
    await worker_for(settings)

    with structlog.testing.capture_logs() as logs:
        workflow_id, recorded = await trigger_and_wait(temporal, "retention-erasure", set())

    assert isinstance(recorded, MaintenanceRecorded), recorded
    [stored] = await store.read_stream(recorded.stream_id)
    assert stored.event_type == "maintenance.retention_erased"
    assert stored.payload == {"retention_years": 5, "erased": 1, "skipped": 0,
                              "erased_case_ids": cli_would_erase, "skipped_case_ids": []}
    assert (stored.author_org, stored.actor) == ("homeward", "system:maintenance")
    assert stored.causation.workflow_id == workflow_id
    scheduled = workflow_id.removeprefix("homeward-retention-erasure-")
    assert recorded.stream_id == maintenance_stream(
        MaintenanceTask.RETENTION_ERASURE, datetime.fromisoformat(scheduled))
    assert await vault.is_erased("case-closed-2015")
    assert not await vault.is_erased("case-closed-2025")
    assert not await vault.is_erased("case-active")
    [*_, erased] = await store.read_stream("case-closed-2015")
    assert (erased.event_type, erased.payload) == (IDENTITY_ERASED,
                                                  {"reason": "retention_expired"})
    assert (erased.author_org, erased.actor) == ("system", RETENTION_ACTOR)  # as the CLI
    # The identity was in the vault and was erased; none of it went anywhere else.
    assert MARKER.encode() not in await history_plaintext(temporal, workflow_id)
    assert MARKER not in str(stored.payload) and MARKER not in repr(logs)
    assert any(line["event"] == "retention erased" for line in logs)

    # A second run finds nothing more to erase, and says so.
    _, again = await trigger_and_wait(temporal, "retention-erasure", {workflow_id})
    assert isinstance(again, MaintenanceRecorded)
    assert (again.event.erased, again.event.skipped) == (0, 0)  # type: ignore[union-attr]


async def tamper(engine: AsyncEngine, statement: str) -> None:
    """As tests/integration/test_verify.py: what a superuser can still do."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await conn.exec_driver_sql(statement)
        await conn.exec_driver_sql("ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only")


async def test_the_verify_run_records_intact_chains_then_flags_a_tampered_one(
    temporal: Client, engine: AsyncEngine, database_url: str, worker_for
) -> None:
    store = EventStore(engine)
    for case_id in ("case-a", "case-b"):
        await referred(store, case_id, datetime(2026, 2, 1, tzinfo=UTC))
    await worker_for(settings_for(database_url))
    seen: set[str] = set()

    first_id, intact = await trigger_and_wait(temporal, "store-verify", seen)
    assert isinstance(intact, MaintenanceRecorded), intact
    [stored] = await store.read_stream(intact.stream_id)
    assert stored.event_type == "maintenance.chain_verified"
    assert stored.payload == {"intact": True, "cases_checked": 2, "events_checked": 4,
                              "broken_case_id": None, "broken_version": None}

    await tamper(engine, "UPDATE events SET payload = '{\"forged\": true}' "
                         "WHERE case_id = 'case-b' AND version = 2")
    with structlog.testing.capture_logs() as logs:
        second_id, failure = await trigger_and_wait(temporal, "store-verify", seen)

    # The run fails (red on the Schedules page) after it recorded what it found.
    assert isinstance(failure, WorkflowFailureError), failure
    assert isinstance(failure.cause, ApplicationError)
    assert failure.cause.type == CHAIN_TAMPERED
    assert "case case-b version 2" in failure.cause.message
    description = await temporal.get_workflow_handle(second_id).describe()
    assert description.status is not None and description.status.name == "FAILED"
    streams = sorted({e.case_id for e in await store.read_all(0, 1000)
                      if e.event_type == "maintenance.chain_verified"})
    assert len(streams) == 2
    [flagged] = await store.read_stream(max(streams))
    assert flagged.payload == {"intact": False, "cases_checked": 2, "events_checked": 4,
                               "broken_case_id": "case-b", "broken_version": 2}
    [error] = [line for line in logs if line["log_level"] == "error"]
    assert (error["broken_case_id"], error["version"]) == ("case-b", 2)


async def test_the_schedules_commands(temporal: Client, capsys) -> None:
    """`homeward schedules ensure`, as compose's one-shot runs it, then `list`."""
    from workers.cli import _cmd_schedules, build_parser

    await delete_schedules(temporal)
    settings = settings_for("postgresql+asyncpg://unused/unused",  # no database is asked
                            payload_key=PAYLOAD_KEYRING.current.to_base64(),
                            temporal_address=temporal.service_client.config.target_host)

    assert await _cmd_schedules(settings, build_parser().parse_args(["schedules", "ensure"])) == 0
    assert await _cmd_schedules(settings, build_parser().parse_args(["schedules", "list"])) == 0
    bad = settings.model_copy(update={"verify_schedule": "every full moon"})
    assert await _cmd_schedules(bad, build_parser().parse_args(["schedules", "ensure"])) == 2

    out, err = capsys.readouterr()
    assert "homeward-retention-erasure: created\nhomeward-store-verify: created\n" in out
    assert "homeward-store-verify: at 02:00 (UTC)\n  next    " in out
    assert err.startswith("homeward schedules: Temporal refused: ") and err.count("\n") == 1
