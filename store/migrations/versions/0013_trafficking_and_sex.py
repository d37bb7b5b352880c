"""read models of how trafficking occurred (rm_trafficking, rm_trafficking_route) and the
referral's sex on rm_cases

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

Decision 0066. ``rm_cases.sex`` defaults to ``not_recorded``: every referral recorded
before sex was asked reads so, as a rebuild from the events would write it. The route is
one row per country in order: the statistical report draws flows between consecutive
countries (``seq`` n → n + 1).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UPGRADE = [
    "ALTER TABLE rm_cases ADD COLUMN sex text NOT NULL DEFAULT 'not_recorded'",
    """
    CREATE TABLE rm_trafficking (
        case_id             text PRIMARY KEY,
        recruitment_method  text,
        exploitation_types  text[] NOT NULL DEFAULT '{}',
        duration_band       text,
        transport_means     text[] NOT NULL DEFAULT '{}',
        recorded_at         timestamptz
    )
    """,
    """
    CREATE TABLE rm_trafficking_route (
        case_id  text NOT NULL,
        seq      integer NOT NULL,
        role     text NOT NULL CHECK (role IN ('recruitment', 'transit', 'exploitation')),
        country  char(2) NOT NULL,
        PRIMARY KEY (case_id, seq)
    )
    """,
]


def upgrade() -> None:
    for statement in _UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE rm_trafficking_route")
    op.execute("DROP TABLE rm_trafficking")
    op.execute("ALTER TABLE rm_cases DROP COLUMN sex")
