"""The API's read models: folded from the event store, skipping types they do not know,
rebuildable to the same rows, kept current by the projector loop, and rebuilt from the
command line with progress output."""

from __future__ import annotations

import asyncio
import uuid
from argparse import Namespace
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from domain import catalogue
from domain.journey import events as ev
from store.event_store import EventStore
from store.events import NewEvent
from store.projections import ProjectionRunner
from store.read_models import ReadModels, all_projections
from workers.cli import _cmd_projections_rebuild
from workers.projector import run_projector
from workers.settings import Settings

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def referral(**kw) -> ev.ReferralRegistered:
    return ev.ReferralRegistered(**{
        "source": "police_raid", "first_placement": "safe_house", "risk_level": "low",
        "age_category": "unknown", "witness": False, "host_country": "RS",
        "destination_country": "MD", "sending_mission": "mission-rs",
        "receiving_mission": "mission-md", "border_partner": "ngo-md-border", **kw})


def new(event, minutes: int, org: str = "homeward", actor: str = "system:workflow"):
    if isinstance(event, tuple):  # (type, payload) of an event the domain does not know
        event_type, payload = event
        return NewEvent(uuid.uuid4(), event_type, 1, payload, org, actor,
                        T0 + timedelta(minutes=minutes))
    return NewEvent(uuid.uuid4(), event.type, event.schema_version,
                    catalogue.payload_of(event), org, actor, T0 + timedelta(minutes=minutes))


async def a_case(store: EventStore) -> tuple[str, uuid.UUID, uuid.UUID]:
    case_id = f"c-{uuid.uuid4().hex[:12]}"
    screening, options = uuid.uuid4(), uuid.uuid4()
    events = [
        new(referral(), 0, "mission-rs"),
        new(("identity.recorded", {"fields": ["given_names"], "notes": []}), 1, "mission-rs",
            "coord.rs"),
        new(ev.TaskOpened(task_id=screening, kind="screening_interview",
                          assignee_org="mission-rs", assignee_role="sending_mission",
                          due_at=T0 + timedelta(days=2)), 2),
        new(ev.ScreeningInterviewRecorded(task_id=screening, interview_record_id="rec_abcdefgh",
                                          interview_language="ro", interpreter_used=False,
                                          reads_languages=("ro",),
                                          trafficking_status="ActualVictimOfTrafficking"),
            30, "mission-rs", "coord.rs"),
        new(ev.TaskOpened(task_id=options, kind="options_decision", assignee_org="mission-rs",
                          assignee_role="sending_mission", due_at=T0 + timedelta(days=7)), 31),
        new(("sharing.granted", {"org_id": "ngo-md-border",
                                 "consent_record_id": "rec_consent1"}), 32, "mission-rs",
            "coord.rs"),
        new(("some.future_type", {"whatever": 1}), 33),
    ]
    for event in events:
        await store.append(case_id, None, [event])
    return case_id, screening, options


async def rows(engine, table: str) -> list[tuple]:
    async with engine.connect() as conn:
        columns = "*" if table != "rm_cases" else "case_id, stage, blocked_on, blocked_since, " \
            "minor, outcome, receiving_visible_at, escalated"
        return [tuple(r) for r in (await conn.execute(
            text(f"SELECT {columns} FROM {table} ORDER BY 1"))).all()]


async def test_projections_fold_cases_tasks_and_sharing(engine):
    store = EventStore(engine)
    case_id, screening, options = await a_case(store)
    runner = ProjectionRunner(engine, all_projections())
    assert await runner.catch_up() == 7 * 3

    models = ReadModels(engine)
    case = await models.case(case_id)
    assert case["stage"] == "options" and case["minor"] is True  # unknown age: a minor
    assert case["blocked_on"] == "task:options_decision"
    assert case["blocked_since"] == T0 + timedelta(minutes=31)
    assert case["receiving_visible_at"] is None
    assert (await models.task(screening)).status == "completed"
    assert (await models.task(screening)).closed_by_org == "mission-rs"
    open_tasks = await models.tasks(org="mission-rs", kind=None, overdue=None, due_before=None,
                                    now=T0)
    assert [t.task_id for t in open_tasks] == [options]
    overdue = await models.tasks(org="mission-rs", kind=None, overdue=True, due_before=None,
                                 now=T0 + timedelta(days=8))
    assert [t.task_id for t in overdue] == [options]
    [grant] = await models.sharing(case_id)
    assert grant["org_id"] == "ngo-md-border" and grant["revoked_at"] is None

    # Her withdrawal revokes every grant; the case moves to compensating, then closes.
    await store.append(case_id, None, [
        new(ev.ConsentWithdrawn(change="withdrawn"), 40, "mission-rs", "coord.rs"),
        new(ev.TaskCancelled(task_id=options, kind="options_decision",
                             reason="consent_withdrawn"), 41),
        new(ev.AlternativePathwayOutcome(change="withdrawn"), 42),
    ])
    await runner.catch_up()
    [grant] = await models.sharing(case_id)
    assert grant["revocation_reason"] == "consent_withdrawn"
    case = await models.case(case_id)
    assert (case["stage"], case["outcome"], case["blocked_on"]) == (
        "closed", "alternative_pathway", None)
    assert (await models.task(options)).status == "cancelled"


async def test_a_rebuild_gives_the_same_rows(engine):
    store = EventStore(engine)
    await a_case(store)
    await a_case(store)
    runner = ProjectionRunner(engine, all_projections())
    await runner.catch_up()
    before = {t: await rows(engine, t) for t in ("rm_cases", "rm_tasks", "rm_sharing")}
    for name in runner.names:
        await runner.rebuild(name)
    assert {t: await rows(engine, t) for t in before} == before


async def test_the_projector_keeps_read_models_current_until_stopped(engine):
    store = EventStore(engine)
    stop = asyncio.Event()
    loop = asyncio.create_task(run_projector(engine, stop, interval=0.05))
    case_id, _, _ = await a_case(store)
    models = ReadModels(engine)
    for _ in range(100):
        if (case := await models.case(case_id)) and case["stage"] == "options":
            break
        await asyncio.sleep(0.05)
    assert case and case["stage"] == "options"
    runner = ProjectionRunner(engine, all_projections())
    head = (await store.read_all(after_position=0, limit=100))[-1].position
    for _ in range(100):
        if all([await runner.checkpoint(n) == head for n in runner.names]):
            break
        await asyncio.sleep(0.05)
    stop.set()
    assert await asyncio.wait_for(loop, timeout=5) == 7 * 3


async def test_projections_rebuild_command_prints_progress(engine, database_url, capsys):
    store = EventStore(engine)
    await a_case(store)
    settings = Settings(database_url=database_url)
    assert await _cmd_projections_rebuild(settings, Namespace(name="tasks")) == 0
    out = capsys.readouterr().out
    assert "rebuilding tasks" in out and "tasks: applied up to position" in out
    assert "tasks rebuilt: 7 events applied" in out
    assert await _cmd_projections_rebuild(settings, Namespace(name="all")) == 0
    assert await _cmd_projections_rebuild(settings, Namespace(name="nope")) == 2
    assert "no projection 'nope'" in capsys.readouterr().err
