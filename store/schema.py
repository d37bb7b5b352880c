"""SQLAlchemy Core description of the tables, for queries. Migrations own the DDL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Computed,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

events_table = Table(
    "events",
    metadata,
    # Set by the events_position trigger (migration 0006), whatever an INSERT sends:
    # (inserting transaction id << POSITION_SHIFT) + the row's rank in its transaction.
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("case_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("event_type", Text, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("payload", Text, nullable=False),  # canonical JSON text, exactly what was hashed
    Column("payload_jsonb", JSONB, Computed("payload::jsonb", persisted=True)),
    Column("author_org", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("causation_workflow_id", Text),
    Column("causation_run_id", Text),
    Column("causation_activity_id", Text),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
)

# Positions are transaction ids shifted left by this many bits (migration 0006): every
# position below pg_snapshot_xmin << POSITION_SHIFT belongs to a finished transaction.
POSITION_SHIFT = 16
