"""case packages between deployments: trusted keys and the packages imported

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12

Decision 0067. ``package_trust``: the public keys of the deployments this one exchanges
case packages with (``homeward keys trust``), one row per organisation and fingerprint.
``case_packages_imported``: one row per package imported, written in the import's own
transaction, so that a replay answers as the first import did and a case is imported
once. Ids, codes, counts and hashes only, never identity.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE package_trust (
            org_id                text NOT NULL,
            fingerprint           text NOT NULL,
            signing_public_key    bytea NOT NULL CHECK (length(signing_public_key) = 32),
            encryption_public_key bytea NOT NULL CHECK (length(encryption_public_key) = 32),
            trusted_at            timestamptz NOT NULL,
            PRIMARY KEY (org_id, fingerprint)
        )
    """)
    op.execute("""
        CREATE TABLE case_packages_imported (
            package_id             uuid PRIMARY KEY,
            case_id                text NOT NULL UNIQUE,
            source_org             text NOT NULL,
            sender_key_fingerprint text NOT NULL,
            event_count            integer NOT NULL,
            chain_head             text NOT NULL,
            field_groups           text NOT NULL,
            package_digest         bytea NOT NULL,
            imported_at            timestamptz NOT NULL
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE case_packages_imported")
    op.execute("DROP TABLE package_trust")
