"""person vault: a keyed digest of each registration request, to refuse a reused key

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09

Decision 0058: ``POST /cases`` with an ``Idempotency-Key`` keeps, per case id (made from
the organisation and the key), an HMAC of the whole request body as parsed (her identity
included), under a key derived from the vault's master key and bound to the case id. A
retry whose body has the same digest answers with the case; another body is refused (422
``idempotency_key_reused``). No identity data here: the digest cannot be read back, and
without the master key it cannot be checked against a guess. It is deleted with the
identity (erasure, or a staged identity discarded because its case never began).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE registration_requests (
            case_id     text        PRIMARY KEY,
            key_id      text        NOT NULL,
            digest      bytea       NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE registration_requests")
