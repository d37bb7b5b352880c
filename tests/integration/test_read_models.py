"""The API's read models: folded from the event store, skipping types they do not know,
rebuildable to the same rows, kept current by the projector loop, and rebuilt from the
command line with progress output."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from argparse import Namespace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from domain import catalogue
from domain import outside_events as out
from domain.journey import events as ev
from domain.reintegration import events as rev
from store.event_store import EventStore
from store.events import NewEvent
from store.projections import SKIPPED_UNKNOWN, ProjectionRunner
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
    assert await runner.catch_up() == 7 * len(all_projections())

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
    assert await asyncio.wait_for(loop, timeout=5) == 7 * len(all_projections())


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


# --- one pass, in memory: incremental equals rebuild, whatever the pages ---------------

_ORGS = ("ngo-md-border", "mission-md", "ngo-ua")
_KINDS = ("screening_interview", "options_decision", "guardian_appointment",
          "informed_consent", "reception_handoff", "border_companion")


def _step(kind: str, n: int, tasks: list[str], p: int) -> tuple[str, dict] | None:
    """A (type, payload) of a random step of a case: only what the projections read;
    ``tasks`` holds the case's task ids so far; ``n`` and ``p`` choose among them."""
    task = tasks[n % len(tasks)] if tasks else None
    org = _ORGS[p % len(_ORGS)]
    due = (T0 + timedelta(days=1 + n % 5)).isoformat()
    if kind == "open":
        tasks.append(str(uuid.UUID(int=len(tasks) + 1 + p * 1000 + n * 100_000)))
        return ev.TaskOpened.TYPE, {"task_id": tasks[-1], "kind": _KINDS[n % len(_KINDS)],
                                    "assignee_org": ("mission-rs", "mission-md")[p % 2],
                                    "assignee_role": "sending_mission", "due_at": due}
    if kind == "open_follow_up":
        tasks.append(str(uuid.UUID(int=len(tasks) + 1 + p * 1000 + n * 100_000 + 7)))
        return rev.ReintegrationTaskOpened.TYPE, {"task_id": tasks[-1], "kind": "check_in",
                                                  "assignee_org": "mission-md", "due_at": due}
    if kind in ("complete", "cancel", "overdue", "reassign", "repeat") and task is None:
        return None
    return {
        "complete": (ev.ScreeningInterviewRecorded.TYPE, {"task_id": task}),
        "cancel": (ev.TaskCancelled.TYPE, {"task_id": task, "reason": "x"}),
        "overdue": (ev.TaskOverdueEscalated.TYPE, {"task_id": task}),
        "reassign": (out.OperatorTaskReassigned.TYPE, {"task_id": task,
                                                        "to_user": f"user{n % 3}"}),
        "repeat": (ev.RepeatInterviewRequested.TYPE, {"task_id": task}),
        "escalate": (ev.CaseEscalated.TYPE, {"reason": ("person_missing", "overdue_tasks")[
            n % 2]}),
        "resolve": (ev.EscalationResolved.TYPE, {}),
        "operator_escalate": (out.OperatorEscalated.TYPE, {"reason": "no_progress"}),
        "hold": (ev.BorderHoldStarted.TYPE, {}),
        "lift": (ev.BorderHoldLifted.TYPE, {}),
        "rebook": (ev.RebookingScheduled.TYPE, {}),
        "booked": (ev.JourneyBooked.TYPE, {}),
        "leg_failed": (ev.JourneyLegFailed.TYPE, {}),
        "departed": (ev.JourneyDeparted.TYPE, {}),
        "did_not_arrive": (ev.DidNotArrive.TYPE, {"fact": "did_not_arrive"}),
        "traced": (ev.TracingConcluded.TYPE, {}),
        "handoff_code": (ev.HandoffCodeIssued.TYPE, {}),
        "age": (ev.AgeAssessed.TYPE, {"result": ("12_17", "25_34")[n % 2],
                                      "minor": n % 2 == 0}),
        "withdrawn": (ev.ConsentWithdrawn.TYPE, {"after_departure": n % 2 == 0}),
        "grant": (out.SharingGranted.TYPE, {"org_id": org, "consent_record_id": f"rec_{n}"}),
        "revoke": (out.SharingRevoked.TYPE, {"org_id": org if n % 3 else None,
                                             "reason": "revoked_by_sending_mission"}),
        "outcome": (sorted(catalogue.OUTCOME_TYPES)[n % len(catalogue.OUTCOME_TYPES)], {}),
        "identity": ("identity.recorded", {"fields": ["given_names"], "notes": []}),
        "unknown": ("some.future_type", {"task_id": task, "whatever": n}),
    }[kind]


_STEP_KINDS = ("open", "open", "open_follow_up", "complete", "complete", "cancel", "overdue",
               "reassign", "repeat", "escalate", "resolve", "operator_escalate", "hold",
               "lift", "rebook", "booked", "leg_failed", "departed", "did_not_arrive",
               "traced", "handoff_code", "age", "withdrawn", "grant", "grant", "revoke",
               "outcome", "identity", "unknown")
_STEPS = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(_STEP_KINDS),
                            st.integers(0, 11), st.integers(0, 5)), max_size=40)


def _log(steps, tag: str) -> list[tuple[str, NewEvent]]:
    """The events of up to three cases, interleaved as ``steps`` say; a case whose
    referral comes late (``p`` of its first step) has events before it."""
    events: list[tuple[str, NewEvent]] = []
    tasks: dict[int, list[str]] = {0: [], 1: [], 2: []}
    registered: set[int] = set()
    for minute, (case, kind, n, p) in enumerate(steps):
        case_id = f"c-{tag}-{case}"
        if case not in registered and (p or kind == "open"):
            registered.add(case)
            events.append((case_id, new(referral(age_category=("unknown", "18_24")[n % 2]),
                                        minute, "mission-rs")))
        step = _step(kind, n, tasks[case], p)
        if step is not None:
            events.append((case_id, new(step, minute, ("mission-rs", "ngo-md-border")[p % 2],
                                        ("coord.rs", "system:workflow")[n % 2])))
    return events


async def _all_rows(engine) -> dict[str, list[tuple]]:
    async with engine.connect() as conn:
        return {t: [tuple(r) for r in (await conn.execute(
            text(f"SELECT * FROM {t} ORDER BY 1, 2"))).all()]
            for t in ("rm_cases", "rm_tasks", "rm_sharing")}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_STEPS, chunks=st.lists(st.integers(1, 8), min_size=1, max_size=6),
       page=st.integers(1, 7), rebuild_page=st.integers(1, 50))
async def test_incremental_catch_up_equals_a_rebuild_from_zero(engine, steps, chunks, page,
                                                               rebuild_page):
    """Random event sequences of a few cases, appended in random chunks and caught up
    after each with a random page size, give the same rows (the working state of a case
    included) as a rebuild of every projection from position zero with another."""
    store = EventStore(engine)
    events = _log(steps, uuid.uuid4().hex[:8])
    runner = ProjectionRunner(engine, all_projections(), batch_size=page)
    i = 0
    for size in itertools.cycle(chunks):
        if i >= len(events):
            break
        for case_id, event in events[i:i + size]:
            await store.append(case_id, None, [event])
        i += size
        await runner.catch_up()
    incremental = await _all_rows(engine)
    rebuilder = ProjectionRunner(engine, all_projections(), batch_size=rebuild_page)
    for name in rebuilder.names:
        await rebuilder.rebuild(name)
    assert await _all_rows(engine) == incremental
    assert await runner.lag() == 0


async def test_concurrent_runners_give_the_rows_of_one(engine):
    """Three runners with small pages at once: the same rows as one runner, every
    checkpoint at the head, and each event applied once per projection."""
    store = EventStore(engine)
    steps = itertools.islice(zip(itertools.cycle(range(3)), itertools.cycle(_STEP_KINDS),
                                 itertools.cycle(range(11)), itertools.cycle(range(1, 5))),
                             120)
    for case_id, event in _log(list(steps), "conc"):
        await store.append(case_id, None, [event])
    head = (await store.read_all(0, 10_000))[-1].position
    runners = [ProjectionRunner(engine, all_projections(), batch_size=b) for b in (3, 5, 7)]
    applied = await asyncio.gather(*(r.catch_up() for r in runners))
    assert sum(applied) == len(all_projections()) * len(await store.read_all(0, 10_000))
    concurrent = await _all_rows(engine)
    for name in runners[0].names:
        assert await runners[0].checkpoint(name) == head
        await runners[0].rebuild(name)
    assert await _all_rows(engine) == concurrent


async def test_unknown_types_are_skipped_and_counted(engine):
    store = EventStore(engine)
    case_id, _, _ = await a_case(store)
    before = {r: SKIPPED_UNKNOWN[(r, "some.future_type")] for r in ("cases", "tasks", "sharing")}
    await store.append(case_id, None, [new(("some.future_type", {"task_id": str(uuid.uuid4())}),
                                           50)])
    runner = ProjectionRunner(engine, all_projections())
    await runner.catch_up()
    assert {r: SKIPPED_UNKNOWN[(r, "some.future_type")] - before[r] for r in before} == {
        "cases": 2, "tasks": 2, "sharing": 2}
    assert (await ReadModels(engine).case(case_id))["stage"] == "options"


async def test_a_grant_after_her_withdrawal_is_void_without_reading_the_log_back(engine):
    """The sharing projection remembers the withdrawal in the case's own row: a grant
    after it is void, in the same page or a later one, and the row is not listed."""
    store = EventStore(engine)
    case_id = "c-void"
    await store.append(case_id, None, [
        new(referral(), 0, "mission-rs"),
        new(ev.ConsentWithdrawn(change="withdrawn"), 1, "mission-rs", "coord.rs"),
        new(("sharing.granted", {"org_id": "ngo-md-border", "consent_record_id": "rec_1"}), 2,
            "mission-rs", "coord.rs")])
    runner = ProjectionRunner(engine, all_projections(), batch_size=2)
    await runner.catch_up()
    await store.append(case_id, None, [new(
        ("sharing.granted", {"org_id": "mission-md", "consent_record_id": "rec_2"}), 3,
        "mission-rs", "coord.rs")])
    await runner.catch_up()
    assert await ReadModels(engine).sharing(case_id) == []
