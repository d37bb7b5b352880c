"""`homeward migrate`, run as the production start-up runs it (docker-compose: before the
worker and the API), against a real, empty PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from store.database import alembic_config

HOMEWARD = Path(sys.executable).parent / "homeward"
HEAD = ScriptDirectory.from_config(alembic_config("postgresql+asyncpg://unused/x")) \
    .get_current_head()


def url_for(server_url: str, database: str) -> str:
    base, _, query = server_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{database}?{query}"


def migrate(**env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEWARD_")}
    env.update(HOMEWARD_LOG_FORMAT="json", **env_vars)
    # Generous: the bound only stops a hung command from hanging the suite.
    return subprocess.run([str(HOMEWARD), "migrate"], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
async def empty_database(pg_server_url: str) -> AsyncIterator[str]:
    """URL of a new database with nothing in it: not cloned from the migrated template."""
    name = f"empty_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url_for(pg_server_url, "postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield url_for(pg_server_url, name)
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.dispose()


async def query(url: str, sql: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            return (await conn.execute(text(sql))).all()
    finally:
        await engine.dispose()


TABLES = {"events", "person_keys", "person_fields", "person_notes", "organisations", "users",
          "api_tokens", "projection_checkpoints", "alembic_version"}


async def test_migrate_brings_an_empty_database_to_the_newest_schema_once(empty_database):
    assert await query(empty_database, "SELECT tablename FROM pg_tables "
                                       "WHERE schemaname = 'public'") == []

    done = migrate(HOMEWARD_DATABASE_URL=empty_database)
    assert done.returncode == 0, done.stdout + done.stderr
    # Alembic's progress is logged before; the command's own answer is the last line.
    assert done.stdout.splitlines()[-1] == \
        f"migrations applied: revision none (empty database) -> {HEAD}"
    assert await query(empty_database, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    tables = {t for (t,) in await query(
        empty_database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert TABLES <= tables, sorted(TABLES - tables)
    # The schema is the real one: the database itself keeps events append-only.
    triggers = {t for (t,) in await query(
        empty_database, "SELECT tgname FROM pg_trigger WHERE tgrelid = 'events'::regclass")}
    assert {"events_append_only", "events_position"} <= triggers

    # A restart runs it again: nothing changes, data stays.
    await query(empty_database, "INSERT INTO organisations (org_id, kind, display_name, country)"
                                " VALUES ('mission-rs', 'sending_mission', 'Sending', 'RS')"
                                " RETURNING org_id")
    again = migrate(HOMEWARD_DATABASE_URL=empty_database)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == \
        f"migrations applied: already at the newest revision {HEAD}"
    assert "Running upgrade" not in again.stdout
    assert await query(empty_database, "SELECT org_id FROM organisations") == [("mission-rs",)]


async def test_migrate_says_which_database_it_could_not_reach(pg_server_url):
    name = f"nowhere_{uuid.uuid4().hex[:8]}"
    missing = url_for(pg_server_url, name)
    done = migrate(HOMEWARD_DATABASE_URL=missing)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"homeward migrate: could not migrate the database {missing}: ")
    assert line.endswith(f'database "{name}" does not exist')


def test_migrate_without_a_database_points_to_the_dev_stack(tmp_path):
    done = migrate(HOMEWARD_DATA_DIR=str(tmp_path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"no running PostgreSQL under {tmp_path.resolve() / 'postgres'}" in done.stderr
    assert "`make run`" in done.stderr and "HOMEWARD_DATABASE_URL" in done.stderr


def test_migrate_hides_the_password_of_the_database_url():
    # Nothing listens on port 1: the connection is refused before any password is sent.
    done = migrate(HOMEWARD_DATABASE_URL="postgresql://homeward:s3cret-pw@127.0.0.1:1/homeward")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout
    assert "homeward:***@127.0.0.1:1/homeward" in done.stderr
