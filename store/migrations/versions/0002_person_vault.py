"""person vault: per-person data keys (wrapped by the master key) and encrypted fields

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Unlike events, these tables are updated and deleted: re-wrapping changes a key row,
    # erasure destroys the data key and deletes the ciphertexts. Nothing here is readable
    # without the master key.
    op.execute(
        """
        CREATE TABLE person_keys (
            case_id           text        PRIMARY KEY,
            kek_id            text,
            wrapped_dek       bytea,
            created_at        timestamptz NOT NULL DEFAULT now(),
            rewrapped_at      timestamptz,
            erased_at         timestamptz,
            erased_by_org     text,
            erased_by_actor   text,
            erasure_reason    text,
            erasure_event_id  uuid UNIQUE,
            CONSTRAINT person_keys_live_or_erased CHECK (
                (erased_at IS NULL AND kek_id IS NOT NULL AND wrapped_dek IS NOT NULL)
                OR (erased_at IS NOT NULL AND kek_id IS NULL AND wrapped_dek IS NULL
                    AND erased_by_org IS NOT NULL AND erased_by_actor IS NOT NULL
                    AND erasure_reason IS NOT NULL AND erasure_event_id IS NOT NULL)
            )
        )
        """
    )
    # An erased person stays erased: no later write can put a data key back.
    op.execute(
        """
        CREATE FUNCTION person_keys_stay_erased() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'person_keys: case % was erased; its key row cannot change',
                OLD.case_id USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER person_keys_erased_is_final
            BEFORE UPDATE ON person_keys
            FOR EACH ROW WHEN (OLD.erased_at IS NOT NULL)
            EXECUTE FUNCTION person_keys_stay_erased()
        """
    )
    op.execute(
        """
        CREATE TABLE person_fields (
            case_id           text        NOT NULL
                              REFERENCES person_keys (case_id) ON DELETE CASCADE,
            field_name        text        NOT NULL,
            nonce             bytea       NOT NULL,
            ciphertext        bytea       NOT NULL,
            recorded_at       timestamptz NOT NULL,
            recorded_by_org   text        NOT NULL,
            recorded_by_actor text        NOT NULL,
            PRIMARY KEY (case_id, field_name)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE person_notes (
            note_id           uuid        PRIMARY KEY,
            case_id           text        NOT NULL
                              REFERENCES person_keys (case_id) ON DELETE CASCADE,
            kind              text        NOT NULL,
            nonce             bytea       NOT NULL,
            ciphertext        bytea       NOT NULL,
            recorded_at       timestamptz NOT NULL,
            recorded_by_org   text        NOT NULL,
            recorded_by_actor text        NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX person_notes_case_id ON person_notes (case_id, recorded_at)")


def downgrade() -> None:
    op.execute("DROP TABLE person_notes")
    op.execute("DROP TABLE person_fields")
    op.execute("DROP TABLE person_keys")
    op.execute("DROP FUNCTION person_keys_stay_erased()")
