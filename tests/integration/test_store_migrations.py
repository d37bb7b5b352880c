"""Migrations: idempotent, and the SQLAlchemy table description matches the database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from store.database import alembic_config, async_url, embedded_server_url, run_migrations
from store.event_store import EventStore
from store.events import Causation, NewEvent
from store.hashing import GENESIS_HASH, canonical_json, event_hash
from store.schema import events_table
from store.verify import verify_chain


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


def _event_row(case_id: str, version: int, prev_hash: str) -> dict:
    event_id = uuid.uuid4()
    occurred_at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    payload = canonical_json({"version": version})
    hash_ = event_hash(prev_hash, case_id=case_id, version=version, event_id=event_id,
                       event_type="legacy", schema_version=1, payload_json=payload,
                       author_org="o", actor="a", occurred_at=occurred_at,
                       causation=Causation())
    return dict(c=case_id, v=version, e=event_id, p=payload, t=occurred_at, prev=prev_hash,
                h=hash_)


_LEGACY_INSERT = text(
    "INSERT INTO events (case_id, version, event_id, event_type, schema_version, payload,"
    " author_org, actor, occurred_at, prev_hash, hash)"
    " VALUES (:c, :v, :e, 'legacy', 1, :p, 'o', 'a', :t, :prev, :h)"
)


async def test_0006_upgrades_a_log_with_events_and_downgrades(pg_server_url: str) -> None:
    """Events appended under the global lock (0005) keep their positions; new appends
    land after them, readers see old then new, the chains verify; and back down."""
    name = f"m{uuid.uuid4().hex[:10]}"
    base, _, query = pg_server_url.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/{name}?{query}"
    admin = create_async_engine(f"{base.rsplit('/', 1)[0]}/postgres?{query}",
                                isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = create_async_engine(url)
    try:
        await run_migrations(url, "0005")
        async with engine.begin() as conn:
            prev = GENESIS_HASH
            for version in (1, 2, 3):
                row = _event_row("legacy-case", version, prev)
                await conn.execute(_LEGACY_INSERT, row)
                prev = row["h"]
        async with engine.connect() as conn:
            legacy = list((await conn.execute(
                text("SELECT position FROM events ORDER BY position"))).scalars())
        assert legacy == [1, 2, 3]

        await run_migrations(url)
        store = EventStore(engine)
        appended = await store.append("legacy-case", 3, [NewEvent(
            uuid.uuid4(), "new", 1, {}, "o", "a", datetime.now(UTC))])
        assert appended[0].prev_hash == prev and appended[0].version == 4
        assert appended[0].position > legacy[-1]
        everything = await store.read_all()
        assert [e.position for e in everything] == [*legacy, appended[0].position]
        assert (await verify_chain(engine)).ok

        await asyncio.to_thread(command.downgrade, alembic_config(url), "0005")
        async with engine.begin() as conn:
            row = _event_row("other", 1, GENESIS_HASH)
            await conn.execute(_LEGACY_INSERT, row)
            position = (await conn.execute(
                text("SELECT position FROM events WHERE case_id = 'other'"))).scalar_one()
        assert position > appended[0].position  # the sequence continues above the log
        await run_migrations(url)
        assert (await verify_chain(engine)).ok
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.dispose()
