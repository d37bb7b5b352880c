"""Migrations: idempotent, and the SQLAlchemy table description matches the database."""

from __future__ import annotations

from types import SimpleNamespace

from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from store.database import alembic_config, async_url, embedded_server_url, run_migrations
from store.schema import events_table


async def test_running_migrations_again_is_a_no_op(database_url: str, engine: AsyncEngine) -> None:
    await run_migrations(database_url)
    async with engine.connect() as conn:
        revision = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar()
    assert revision == ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


async def test_table_description_matches_the_migration(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        columns = await conn.run_sync(lambda sync: inspect(sync).get_columns("events"))
    assert [c["name"] for c in columns] == [c.name for c in events_table.c]
    assert {c["name"]: c["nullable"] for c in columns} == {
        c.name: c.nullable for c in events_table.c
    }


def test_urls() -> None:
    server = SimpleNamespace(get_uri=lambda: "postgresql://postgres:@/postgres?host=/tmp/x/pg")
    assert embedded_server_url(server) == "postgresql+asyncpg://postgres@/postgres?host=/tmp/x/pg"
    assert (
        embedded_server_url(server, "homeward")
        == "postgresql+asyncpg://postgres@/homeward?host=/tmp/x/pg"
    )
    assert async_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
