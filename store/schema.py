"""SQLAlchemy Core description of the tables, for queries. Migrations own the DDL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Computed,
    DateTime,
    Identity,
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
    Column("position", BigInteger, Identity(always=True), primary_key=True),
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

# Key of the transaction-scoped advisory lock that serialises every append (see
# event_store.py). The migration's insert trigger takes the same key.
APPEND_LOCK_KEY = 7_236_281_001
