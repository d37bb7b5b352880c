"""events: the append-only, hash-chained event store

Revision ID: 0001
Revises:
Create Date: 2025-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Must equal store.schema.APPEND_LOCK_KEY (a migration never imports application code).
APPEND_LOCK_KEY = 7_236_281_001


def upgrade() -> None:
    # The UNIQUE (case_id, version) index also serves every lookup by case_id.
    op.execute(
        """
        CREATE TABLE events (
            position              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            case_id               text        NOT NULL,
            version               integer     NOT NULL CHECK (version >= 1),
            event_id              uuid        NOT NULL UNIQUE,
            event_type            text        NOT NULL,
            schema_version        integer     NOT NULL CHECK (schema_version >= 1),
            payload               text        NOT NULL,
            payload_jsonb         jsonb       GENERATED ALWAYS AS (payload::jsonb) STORED,
            author_org            text        NOT NULL,
            actor                 text        NOT NULL,
            occurred_at           timestamptz NOT NULL,
            recorded_at           timestamptz NOT NULL DEFAULT now(),
            causation_workflow_id text,
            causation_run_id      text,
            causation_activity_id text,
            prev_hash             text        NOT NULL,
            hash                  text        NOT NULL,
            CONSTRAINT events_case_id_version_key UNIQUE (case_id, version)
        )
        """
    )
    op.execute("COMMENT ON COLUMN events.payload IS 'canonical JSON text, exactly as hashed'")

    # Append-only, enforced by the database. ENABLE ALWAYS: the trigger fires even under
    # SET session_replication_role = replica, which silences ordinary triggers.
    op.execute(
        """
        CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'events is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER events_append_only
            BEFORE UPDATE OR DELETE OR TRUNCATE ON events
            FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change()
        """
    )
    op.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only")

    # Any INSERT, even one that bypasses EventStore, takes the append lock before its
    # rows get positions, so global position order stays commit order (see event_store.py).
    op.execute(
        f"""
        CREATE FUNCTION events_take_append_lock() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock({APPEND_LOCK_KEY});
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER events_serialise_inserts
            BEFORE INSERT ON events
            FOR EACH STATEMENT EXECUTE FUNCTION events_take_append_lock()
        """
    )
    op.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_serialise_inserts")


def downgrade() -> None:
    op.execute("DROP TABLE events")
    op.execute("DROP FUNCTION events_take_append_lock()")
    op.execute("DROP FUNCTION events_refuse_change()")
