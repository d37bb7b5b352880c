"""accounts: drop the per-user lockout columns, no longer read or written

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Decision 0056: failed authentications are throttled by their source in the API process,
never by the user their token names, so ``users.failed_attempts`` and
``users.locked_until`` are dead. The downgrade brings them back empty (nobody locked).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN failed_attempts, DROP COLUMN locked_until")


def downgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0, "
               "ADD COLUMN locked_until timestamptz")
