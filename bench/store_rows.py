"""The rows on the database alone: appends, a stream read, a rebuild of the read models and
the statistics, each against its baselines on the same PostgreSQL server.

Baselines:
- ``eventsourcing``: the eventsourcing library's ``PostgresApplicationRecorder`` (psycopg 3),
  the recorder an application with a global, gap-free order of its events (what homeward's
  projections follow) would use; its own tables in its own database of the same server.
- ``asyncpg``: raw asyncpg statements on a plain table, with the (case, version) key only:
  the database's own limit for the same rows.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.events import SAMPLE_PAYLOAD, load_templates, synthetic_cases
from bench.harness import HOMEWARD, RowResult, Target, build_result, interleave, progress
from bench.servers import Database, Postgres
from store.database import create_engine
from store.event_store import EventStore
from store.events import NewEvent

ES = "eventsourcing"
RAW = "asyncpg"
_TOPIC = "bench.events:Event"
_PAYLOAD_JSON = json.dumps(SAMPLE_PAYLOAD)

RAW_TABLE = """
CREATE TABLE IF NOT EXISTS bench_raw_events (
    position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     text NOT NULL,
    version     integer NOT NULL,
    event_id    uuid NOT NULL,
    event_type  text NOT NULL,
    payload     text NOT NULL,
    occurred_at timestamptz NOT NULL,
    UNIQUE (case_id, version)
)"""
_RAW_INSERT = ("INSERT INTO bench_raw_events (case_id, version, event_id, event_type, payload, "
               "occurred_at) VALUES ($1, $2, $3, $4, $5, $6)")
_RAW_INSERT_MANY = (
    "INSERT INTO bench_raw_events (case_id, version, event_id, event_type, payload, "
    "occurred_at) SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], "
    "$5::text[], $6::timestamptz[])")


def _new_event() -> NewEvent:
    return NewEvent(uuid.uuid4(), "case.task_opened", 1, dict(SAMPLE_PAYLOAD), "homeward",
                    "system:workflow", datetime.now(UTC))


class Subjects:
    """The three writers and readers of one row, each on its own database of the server."""

    def __init__(self, home: Database, es: Database, raw: Database, writers: int = 8):
        self.home_db, self.es_db, self.raw_db = home, es, raw
        self.engine = create_engine(home.url, pool_size=max(5, writers), max_overflow=4)
        self.store = EventStore(self.engine)
        self.writers = writers
        self.pool: asyncpg.Pool | None = None
        self.executor = ThreadPoolExecutor(max_workers=writers)
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        self.datastore = PostgresDatastore(
            es.name, es.host, es.port, "postgres", "", pool_size=writers,
            originator_id_type="text")
        self.recorder = PostgresApplicationRecorder(self.datastore,
                                                    events_table_name="stored_events")
        self.recorder.create_table()

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(**self.raw_db.asyncpg_kwargs(),
                                              min_size=1, max_size=self.writers)
        async with self.pool.acquire() as conn:
            await conn.execute(RAW_TABLE)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        await self.engine.dispose()
        self.datastore.close()
        self.executor.shutdown()

    # --- writers: each appends `count` events to a new case, `batch` per call ----------

    async def homeward_writer(self, count: int, batch: int) -> None:
        case_id, version = f"w-{uuid.uuid4().hex[:12]}", 0
        for _ in range(count // batch):
            await self.store.append(case_id, version, [_new_event() for _ in range(batch)])
            version += batch

    def es_writer(self, count: int, batch: int) -> None:
        from eventsourcing.persistence import StoredEvent

        case_id, version = f"w-{uuid.uuid4().hex[:12]}", 0
        for _ in range(count // batch):
            self.recorder.insert_events([
                StoredEvent(case_id, version + i + 1, _TOPIC, _PAYLOAD_JSON.encode())
                for i in range(batch)])
            version += batch

    async def raw_writer(self, count: int, batch: int) -> None:
        assert self.pool is not None
        case_id, version = f"w-{uuid.uuid4().hex[:12]}", 0
        async with self.pool.acquire() as conn:
            for _ in range(count // batch):
                now = datetime.now(UTC)
                if batch == 1:
                    await conn.execute(_RAW_INSERT, case_id, version + 1, uuid.uuid4(),
                                       "case.task_opened", _PAYLOAD_JSON, now)
                else:
                    versions = list(range(version + 1, version + batch + 1))
                    await conn.execute(_RAW_INSERT_MANY, [case_id] * batch, versions,
                                       [uuid.uuid4() for _ in versions],
                                       ["case.task_opened"] * batch,
                                       [_PAYLOAD_JSON] * batch, [now] * batch)
                version += batch

    def rates(self, total: int, batch: int, writers: int) -> dict[str, Any]:
        """A measure per subject: ``writers`` writers at once, each on its own case,
        ``total`` events between them; the value is events per second."""
        each = total // writers

        async def home() -> float:
            started = time.perf_counter()
            await asyncio.gather(*(self.homeward_writer(each, batch) for _ in range(writers)))
            return each * writers / (time.perf_counter() - started)

        async def es() -> float:
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            if writers == 1:
                self.es_writer(each, batch)  # in the loop's thread: no hop per call
            else:
                await asyncio.gather(*(loop.run_in_executor(self.executor, self.es_writer,
                                                            each, batch)
                                       for _ in range(writers)))
            return each * writers / (time.perf_counter() - started)

        async def raw() -> float:
            started = time.perf_counter()
            await asyncio.gather(*(self.raw_writer(each, batch) for _ in range(writers)))
            return each * writers / (time.perf_counter() - started)

        return {HOMEWARD: home, ES: es, RAW: raw}


async def _subjects(pg: Postgres, row: str, writers: int = 8) -> tuple[Subjects, list[Database]]:
    dbs = [await pg.database(f"{row}_{who}") for who in ("hw", "es", "raw")]
    subjects = Subjects(*dbs, writers=writers)
    await subjects.open()
    return subjects, dbs


async def _done(pg: Postgres, subjects: Subjects, dbs: list[Database]) -> None:
    await subjects.close()
    for db in dbs:
        await pg.drop(db)


def _append_targets(raw_ratio: float | None = None) -> list[Target]:
    targets = [Target("ratio", ">=", 1.0, ES)]
    if raw_ratio is not None:
        targets.append(Target("ratio", ">=", raw_ratio, RAW))
    return targets


async def append_single(pg: Postgres, cfg) -> RowResult:
    subjects, dbs = await _subjects(pg, "append1")
    try:
        samples = await interleave(subjects.rates(cfg.events, 1, 1), cfg.rounds,
                                   label="append_single")
    finally:
        await _done(pg, subjects, dbs)
    return build_result("append_single", "append, 1 event per call, 1 case", "ev/s",
                        "higher", samples, _append_targets(),
                        notes=f"{cfg.events} events per round, one append call each")


async def append_batch(pg: Postgres, cfg) -> RowResult:
    total = cfg.events * 10
    subjects, dbs = await _subjects(pg, "append10")
    try:
        samples = await interleave(subjects.rates(total, 10, 1), cfg.rounds,
                                   label="append_batch10")
    finally:
        await _done(pg, subjects, dbs)
    return build_result("append_batch10", "append, batches of 10", "ev/s", "higher", samples,
                        _append_targets(0.5),
                        notes=f"{total} events per round in calls of 10; raw asyncpg inserts a "
                        "batch with one INSERT … SELECT FROM unnest")


async def append_concurrent(pg: Postgres, cfg) -> RowResult:
    subjects, dbs = await _subjects(pg, "append8")
    total = max(cfg.events, 80)
    try:
        eight = subjects.rates(total, 1, 8)
        one = subjects.rates(total, 1, 1)
        measures = {**eight, **{f"{name} (1 writer)": m for name, m in one.items()}}
        samples = await interleave(measures, cfg.rounds, label="append_8_writers")
    finally:
        await _done(pg, subjects, dbs)
    scaling = {}
    for name in (HOMEWARD, ES, RAW):
        per_round = [e / o for e, o in zip(samples[name], samples[f"{name} (1 writer)"],
                                           strict=True)]
        scaling[name] = {"median": sorted(per_round)[len(per_round) // 2],
                         "min": min(per_round), "max": max(per_round)}
    extra = {"scaling_vs_one_writer": scaling,
             "summary": "8 writers vs 1: " + ", ".join(
                 f"{n} {s['median']:.2f}×" for n, s in scaling.items())}
    result = build_result("append_8_writers", "append, 8 writers on 8 cases", "ev/s", "higher",
                          {n: samples[n] for n in (HOMEWARD, ES, RAW)}, _append_targets(),
                          extra=extra,
                          notes=f"{total} events per round, 8 concurrent writers each on its "
                          "own case, one event per call")
    return result


async def read_stream(pg: Postgres, cfg) -> RowResult:
    from eventsourcing.persistence import StoredEvent

    subjects, dbs = await _subjects(pg, "read", writers=1)
    length, reads = 200, cfg.reads
    try:
        case_id = "r-stream"
        for v in range(0, length, 10):
            await subjects.store.append(case_id, v, [_new_event() for _ in range(10)])
        subjects.recorder.insert_events([
            StoredEvent(case_id, v + 1, _TOPIC, _PAYLOAD_JSON.encode()) for v in range(length)])
        assert subjects.pool is not None
        async with subjects.pool.acquire() as conn:
            now = datetime.now(UTC)
            await conn.execute(_RAW_INSERT_MANY, [case_id] * length, list(range(1, length + 1)),
                               [uuid.uuid4() for _ in range(length)],
                               ["case.task_opened"] * length, [_PAYLOAD_JSON] * length,
                               [now] * length)

        async def home() -> float:
            started = time.perf_counter()
            for _ in range(reads):
                events = await subjects.store.read_case(case_id)
                assert len(events) == length
            return (time.perf_counter() - started) / reads * 1000

        async def es() -> float:
            started = time.perf_counter()
            for _ in range(reads):
                events = subjects.recorder.select_events(case_id)
                decoded = [json.loads(e.state) for e in events]
                assert len(decoded) == length
            return (time.perf_counter() - started) / reads * 1000

        async def raw() -> float:
            started = time.perf_counter()
            async with subjects.pool.acquire() as conn:
                for _ in range(reads):
                    rows = await conn.fetch(
                        "SELECT position, case_id, version, event_id, event_type, payload, "
                        "occurred_at FROM bench_raw_events WHERE case_id = $1 ORDER BY version",
                        case_id)
                    decoded = [json.loads(r["payload"]) for r in rows]
                    assert len(decoded) == length
            return (time.perf_counter() - started) / reads * 1000

        samples = await interleave({HOMEWARD: home, ES: es, RAW: raw}, cfg.rounds,
                                   label="read_stream")
    finally:
        await _done(pg, subjects, dbs)
    return build_result("read_stream", "read one 200-event stream", "ms", "lower", samples,
                        [Target("ratio", "<=", 1.0, ES)],
                        notes=f"mean of {reads} reads per round; every reader decodes the "
                        "payloads' JSON (homeward: read_case, eventsourcing: select_events, "
                        "asyncpg: one SELECT)")


# --- rebuild -----------------------------------------------------------------------------


async def load_events(store: EventStore, count: int, concurrency: int = 4) -> tuple[int, int]:
    """Append about ``count`` events of synthetic cases; return (events, cases)."""
    templates = await load_templates()
    cases = synthetic_cases(templates, count)
    totals = [0, 0]
    lock = asyncio.Lock()

    async def loader() -> None:
        while True:
            async with lock:
                item = next(cases, None)
            if item is None:
                return
            case_id, appends = item
            # One append per case: the rebuild reads the log, however it was written, and
            # a case's events in one call load the row's events several times faster.
            events = [event for group in appends for event in group]
            await store.append(case_id, 0, events)
            totals[0] += len(events)
            totals[1] += 1

    await asyncio.gather(*(loader() for _ in range(concurrency)))
    return totals[0], totals[1]


async def rebuild(pg: Postgres, cfg) -> RowResult:
    from store.projections import ProjectionRunner
    from store.read_models import all_projections

    db = await pg.database("rebuild")
    engine = create_engine(db.url)
    conn = await asyncpg.connect(**db.asyncpg_kwargs())
    try:
        progress(f"  rebuild: appending about {cfg.rebuild_events:,} events of synthetic cases")
        events, cases = await load_events(EventStore(engine), cfg.rebuild_events)
        progress(f"  rebuild: {events:,} events of {cases:,} cases stored")

        async def home() -> float:
            runner = ProjectionRunner(engine, all_projections())
            started = time.perf_counter()
            await runner.rebuild_all()
            return events / (time.perf_counter() - started)

        async def raw() -> float:
            started = time.perf_counter()
            folded = await raw_fold(conn)
            assert folded == events, (folded, events)
            return events / (time.perf_counter() - started)

        samples = await interleave({HOMEWARD: home, "raw fold": raw}, cfg.rebuild_rounds,
                                   warmup=False, label="rebuild")
    finally:
        await conn.close()
        await engine.dispose()
        await pg.drop(db)
    return build_result("rebuild", f"rebuild all read models, {events // 1000}k events"
                        if events >= 1000 else f"rebuild all read models, {events} events",
                        "ev/s", "higher", samples, [Target("ratio", ">=", 0.3, "raw fold")],
                        extra={"events": events, "cases": cases},
                        notes="homeward: ProjectionRunner over all_projections(), every read "
                        "model from position 0; raw fold: one SELECT of the events via "
                        "asyncpg, json.loads, cases, tasks and grants folded into dicts")


_STAGE_OF_TASK = {"screening_interview": "screening", "options_decision": "options",
                  "informed_consent": "consent", "travel_documents": "documents",
                  "medical_clearance": "clearances", "security_assessment": "clearances",
                  "enter_booking": "booking", "reception_handoff": "reception"}
_STAGE_OF_EVENT = {"journey.booked": "awaiting_departure", "journey.departed": "in_transit",
                   "journey.arrived_at_border": "border", "journey.border_cleared": "reception"}


async def raw_fold(conn: asyncpg.Connection) -> int:
    """The baseline of a rebuild: every event read once, decoded, folded in memory into
    the rows of the three read models (cases with stage, open tasks and last event;
    tasks with status; sharing grants). Returns how many events it folded."""
    cases: dict[str, dict[str, Any]] = {}
    tasks: dict[str, dict[str, Any]] = {}
    sharing: dict[tuple[str, str], dict[str, Any]] = {}
    n = 0
    async with conn.transaction():
        async for row in conn.cursor(
                "SELECT position, case_id, event_type, payload, author_org, occurred_at "
                "FROM events ORDER BY position", prefetch=2000):
            n += 1
            t, p, case_id, at = row["event_type"], json.loads(row["payload"]), row["case_id"], \
                row["occurred_at"]
            if t == "case.referral_registered":
                cases[case_id] = {"stage": "screening", "tasks": {}, "registered_at": at,
                                  "destination": p["destination_country"],
                                  "age": p.get("age_category", "unknown"), "outcome": None}
            case = cases.get(case_id)
            task_id = p.get("task_id")
            if t.endswith("task_opened"):
                tasks[task_id] = {"case_id": case_id, "kind": p["kind"], "status": "open",
                                  "assignee_org": p["assignee_org"], "opened_at": at}
                if case is not None:
                    case["tasks"][task_id] = p["kind"]
                    case["stage"] = _STAGE_OF_TASK.get(p["kind"], case["stage"])
            elif task_id and task_id in tasks:
                tasks[task_id]["status"] = ("cancelled" if t.endswith("task_cancelled")
                                            else "completed")
                tasks[task_id]["closed_at"] = at
                if case is not None:
                    case["tasks"].pop(task_id, None)
            if t == "sharing.granted":
                sharing[(case_id, p["org_id"])] = {"granted_at": at, "revoked_at": None}
            elif t == "case.consent_withdrawn":
                for key, grant in sharing.items():
                    if key[0] == case_id:
                        grant["revoked_at"] = at
            if case is not None:
                case["stage"] = _STAGE_OF_EVENT.get(t, case["stage"])
                if t.startswith("outcome."):
                    case["stage"], case["outcome"] = "closed", t.removeprefix("outcome.")
                case["last_event_at"] = at
    return n


# --- statistics ----------------------------------------------------------------------------


_SEED_CASES = """
INSERT INTO rm_cases (case_id, sending_mission, receiving_mission, border_partner,
    host_country, destination_country, age_category, minor, witness, risk_level,
    referral_source, stage, outcome, registered_at, last_event_at)
SELECT 'c-' || lpad(i::text, 8, '0'),
       (ARRAY['mission-rs','mission-al','mission-ba'])[1 + i % 3],
       (ARRAY['mission-md','mission-ua','mission-ro','mission-bg'])[1 + i % 4],
       (ARRAY['ngo-md-border','ngo-ua'])[1 + i % 2],
       (ARRAY['RS','AL','BA','ME','MK'])[1 + (i / 7) % 5],
       (ARRAY['MD','UA','RO','BG','AM','GE','VN','NG'])[1 + (i / 3) % 8],
       (ARRAY['under_12','12_17','18_24','25_34','35_plus','unknown','disputed'])[1 + i % 7],
       (i % 7) IN (0, 1, 5, 6),
       i % 11 = 0,
       (ARRAY['low','medium','high'])[1 + i % 3],
       (ARRAY['police_raid','ngo','self_referral','hotline'])[1 + i % 4],
       CASE WHEN i % 5 < 3 THEN 'closed' ELSE 'screening' END,
       CASE WHEN i % 5 < 2 THEN 'returned' WHEN i % 5 = 2 THEN 'declined_assistance'
            ELSE NULL END,
       now() - (i || ' minutes')::interval, now()
FROM generate_series(1, $1) AS i
"""

_GROUPING_SETS = """
SELECT COALESCE(outcome, 'open') AS outcome, age_category,
       CASE WHEN minor THEN 'minor_or_unknown' ELSE 'adult' END AS minor,
       destination_country, host_country,
       GROUPING(COALESCE(outcome, 'open'), age_category,
                CASE WHEN minor THEN 'minor_or_unknown' ELSE 'adult' END,
                destination_country, host_country) AS g,
       count(*) AS n
FROM rm_cases
GROUP BY GROUPING SETS ((COALESCE(outcome, 'open')), (age_category),
                        (CASE WHEN minor THEN 'minor_or_unknown' ELSE 'adult' END),
                        (destination_country), (host_country))
"""
_GROUPING_COLUMNS = {15: "outcome", 23: "age_category", 27: "minor", 29: "destination_country",
                     30: "host_country"}
_DIMENSIONS = {"outcome": "by_outcome", "age_category": "by_age_band",
               "minor": "minor_or_age_unknown", "destination_country": "by_destination_country",
               "host_country": "by_host_country"}


async def statistics(pg: Postgres, cfg) -> RowResult:
    import httpx

    from api.app import ApiServices, create_app
    from store.accounts import Accounts, OrgKind, UserRole
    from store.keys import Key, Keyring
    from store.vault import PersonVault
    from workers.codec import EncryptionCodec

    db = await pg.database("statistics")
    engine = create_engine(db.url)
    conn = await asyncpg.connect(**db.asyncpg_kwargs())
    calls = cfg.statistics_calls
    try:
        await conn.execute(_SEED_CASES, cfg.cases)
        await conn.execute("ANALYZE rm_cases")
        accounts = Accounts(engine)
        await accounts.add_org("analysts", OrgKind.ANALYST, "Analysts", "CH")
        await accounts.add_user("analyst", "analysts", UserRole.ANALYST)
        from datetime import timedelta

        token = (await accounts.create_token("analyst", timedelta(hours=2))).bearer
        store = EventStore(engine)
        keys = Keyring(Key(b"k" * 32))
        services = ApiServices(engine=engine, store=store, temporal=None, accounts=accounts,
                               vault=PersonVault(engine, keys, store),
                               payload_codec=EncryptionCodec(keys), task_queue="unused",
                               codec_cors_origins=[])
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                 base_url="http://homeward.bench")
        headers = {"Authorization": f"Bearer {token}"}

        async def home() -> float:
            started = time.perf_counter()
            for _ in range(calls):
                response = await http.get("/statistics", headers=headers)
                assert response.status_code == 200, response.text
            return (time.perf_counter() - started) / calls * 1000

        async def sql() -> float:
            started = time.perf_counter()
            for _ in range(calls):
                counts: dict[str, Counter[str]] = {d: Counter() for d in _DIMENSIONS.values()}
                for row in await conn.fetch(_GROUPING_SETS):
                    column = _GROUPING_COLUMNS[row["g"]]
                    counts[_DIMENSIONS[column]][row[column]] = row["n"]
                assert sum(counts["by_outcome"].values()) == cfg.cases
            return (time.perf_counter() - started) / calls * 1000

        try:
            samples = await interleave({HOMEWARD: home, "GROUPING SETS": sql}, cfg.rounds,
                                       label="statistics")
        finally:
            await http.aclose()
    finally:
        await conn.close()
        await engine.dispose()
        await pg.drop(db)
    return build_result("statistics", f"GET /statistics, {cfg.cases // 1000}k cases", "ms",
                        "lower", samples, [Target("ratio", "<=", 2.0, "GROUPING SETS")],
                        notes=f"mean of {calls} calls per round; homeward: the route in "
                        "process (httpx ASGITransport: token check, audit, read models), "
                        "which counts the whole protected statistical report (20 "
                        "dimensions, 3 cross-tables; decision 0065) so that a cell hidden "
                        "there is hidden here; baseline: one GROUPING SETS query of the "
                        "route's 5 one-way tables over rm_cases via asyncpg")
