"""person vault: the identity a registration stored before its workflow started

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-02

Decision 0054: ``POST /cases`` with an identity writes the ciphertexts first (person_keys,
person_fields) with a row here, starts the return workflow, then appends
``identity.recorded`` from this row (its event id, fields, author and time, so that any
later attempt appends the identical event) and marks the row confirmed. A row stays
unconfirmed only if the API stopped between the steps; the repair pass confirms it when
the workflow exists and discards the identity when it never started. No identity data
here: field names, ids and the referral's codes only.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE person_registrations (
            case_id           text        PRIMARY KEY,
            event_id          uuid        NOT NULL UNIQUE,
            fields            jsonb       NOT NULL,
            recorded_at       timestamptz NOT NULL,
            recorded_by_org   text        NOT NULL,
            recorded_by_actor text        NOT NULL,
            referral          jsonb       NOT NULL,
            attempted_at      timestamptz NOT NULL DEFAULT now(),
            confirmed_at      timestamptz
        )
        """
    )
    op.execute(
        "CREATE INDEX person_registrations_unconfirmed ON person_registrations "
        "(attempted_at) WHERE confirmed_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP TABLE person_registrations")
