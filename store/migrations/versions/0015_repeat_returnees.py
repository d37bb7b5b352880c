"""repeat returnees: the vault's blind index and the read model of linked cases

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-13

Decision 0070. ``person_blind_index``: per case, keyed digests (HMAC-SHA256 under a key
derived from the master key, named by that key's id) of her normalised name and birth
date and of each identity document; digests and case ids only, deleted with her identity
(erasure deletes them, a discarded registration's key row takes them with it). Existing
identities are indexed by ``homeward vault reindex`` (and by every master key rotation).

``rm_case_links``: a projection of ``case.linked``: each linked case and the person
(``person_key``, the smallest case id of her linked cases) it counts as, so that the
statistical report counts a person once and shows her as a repeat returnee.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE person_blind_index (
            case_id text  NOT NULL REFERENCES person_keys (case_id) ON DELETE CASCADE,
            key_id  text  NOT NULL,
            kind    text  NOT NULL,
            digest  bytea NOT NULL,
            PRIMARY KEY (case_id, key_id, kind, digest)
        )
    """)
    op.execute("CREATE INDEX person_blind_index_digest ON person_blind_index "
               "(key_id, digest)")
    op.execute("""
        CREATE TABLE rm_case_links (
            case_id    text PRIMARY KEY,
            person_key text NOT NULL
        )
    """)
    op.execute("CREATE INDEX rm_case_links_person ON rm_case_links (person_key)")


def downgrade() -> None:
    op.execute("DROP TABLE rm_case_links")
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'case_links'")
    op.execute("DROP TABLE person_blind_index")
