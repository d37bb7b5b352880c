"""accounts: organisations, users with one role each, hashed bearer tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_STATEMENTS = [
    """
    CREATE TABLE organisations (
        org_id       text PRIMARY KEY CHECK (org_id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
        kind         text NOT NULL CHECK (kind IN ('sending_mission', 'receiving_mission',
                         'partner_ngo', 'operator_team', 'analyst')),
        display_name text NOT NULL,
        country      text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
        created_at   timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE users (
        user_id          text PRIMARY KEY CHECK (user_id ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
        org_id           text NOT NULL REFERENCES organisations (org_id),
        role             text NOT NULL CHECK (role IN ('coordinator', 'receiving_officer',
                             'partner_worker', 'operator', 'analyst', 'administrator')),
        created_at       timestamptz NOT NULL DEFAULT now(),
        disabled_at      timestamptz,
        failed_attempts  integer NOT NULL DEFAULT 0,
        locked_until     timestamptz
    )
    """,
    """
    CREATE TABLE api_tokens (
        token_id     uuid PRIMARY KEY,
        user_id      text NOT NULL REFERENCES users (user_id),
        secret_hash  bytea NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT now(),
        expires_at   timestamptz NOT NULL,
        revoked_at   timestamptz,
        last_used_at timestamptz
    )
    """,
    """
    CREATE INDEX api_tokens_user ON api_tokens (user_id)
    """,
]


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in ("api_tokens", "users", "organisations"):
        op.execute(f"DROP TABLE {table}")
