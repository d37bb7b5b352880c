"""events: no global append lock; positions follow transaction ids, for commit-safe reads

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Appends no longer queue behind one advisory lock (decision 0051). UNIQUE (case_id, version)
orders each case's chain. A row's position is its transaction's id, shifted left by 16
bits, plus its rank in the transaction: readers of the whole log return positions below
the oldest transaction still in flight (pg_snapshot_xmin), so a late commit, whose
transaction id is at or above that horizon, always lands after every position returned.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Must equal store.schema.POSITION_SHIFT (a migration never imports application code).
POSITION_SHIFT = 16
# 0001's key, recreated by downgrade.
APPEND_LOCK_KEY = 7_236_281_001


def upgrade() -> None:
    op.execute("DROP TRIGGER events_serialise_inserts ON events")
    op.execute("DROP FUNCTION events_take_append_lock()")

    # Positions stored so far came from the identity sequence, in commit order (the old
    # lock): they stay. Every new position is above them, since it starts at this
    # transaction's id << 16; refuse to migrate a database where that would not hold.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF (SELECT coalesce(max(position), 0) FROM events)
               >= (pg_current_xact_id()::text::bigint << {POSITION_SHIFT}) THEN
                RAISE EXCEPTION 'events: stored positions reach past the first new one';
            END IF;
        END
        $$
        """
    )
    op.execute("ALTER TABLE events ALTER COLUMN position DROP IDENTITY")

    # The position of every inserted row, whatever the writer sent: its transaction id,
    # shifted, plus its rank in the transaction (a transaction-local counter). A writer
    # cannot pick a position below the readers' horizon. ENABLE ALWAYS, like
    # events_append_only.
    op.execute(
        f"""
        CREATE FUNCTION events_position() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            rank bigint := coalesce(nullif(
                current_setting('homeward.events_rank', true), ''), '0')::bigint + 1;
        BEGIN
            IF rank >= (1 << {POSITION_SHIFT}) THEN
                RAISE EXCEPTION 'events: at most % rows per transaction',
                    (1 << {POSITION_SHIFT}) - 1;
            END IF;
            PERFORM set_config('homeward.events_rank', rank::text, true);
            NEW.position := (pg_current_xact_id()::text::bigint << {POSITION_SHIFT}) + rank;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER events_position
            BEFORE INSERT ON events
            FOR EACH ROW EXECUTE FUNCTION events_position()
        """
    )
    op.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_position")
    op.execute(
        "COMMENT ON COLUMN events.position IS 'transaction id << 16 + rank in the"
        " transaction, set by the events_position trigger; read below"
        " pg_snapshot_xmin << 16'"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER events_position ON events")
    op.execute("DROP FUNCTION events_position()")
    op.execute("COMMENT ON COLUMN events.position IS NULL")
    op.execute("ALTER TABLE events ALTER COLUMN position ADD GENERATED ALWAYS AS IDENTITY")
    op.execute(
        "SELECT setval(pg_get_serial_sequence('events', 'position'),"
        " (SELECT max(position) FROM events)) WHERE EXISTS (SELECT 1 FROM events)"
    )
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
