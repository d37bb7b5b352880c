"""rm_report_facts: what the statistical report needs beyond rm_cases

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10

Decision 0065: one row per case that has a screening result or a follow-up, folded by
store.reports.ReportFactsProjection: the trafficking status of the screening, whether
follow-up started, the check-ins due and reached, whether contact was ever lost, the
re-trafficking indicators recorded, the latest sustainability band and the services
delivered. Codes and counts only, never identity. A projection: rebuilt from the log.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE rm_report_facts (
            case_id             text PRIMARY KEY,
            trafficking_status  text,
            follow_up_started   boolean NOT NULL DEFAULT false,
            check_ins_due       integer NOT NULL DEFAULT 0,
            check_ins_reached   integer NOT NULL DEFAULT 0,
            contact_lost        boolean NOT NULL DEFAULT false,
            risk_indicators     jsonb NOT NULL DEFAULT '[]'::jsonb,
            sustainability_band text,
            services_delivered  jsonb NOT NULL DEFAULT '[]'::jsonb,
            working             jsonb NOT NULL DEFAULT '{}'::jsonb
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE rm_report_facts")
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'report_facts'")
