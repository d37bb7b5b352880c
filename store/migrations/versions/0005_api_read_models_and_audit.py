"""read models for the API (cases, task inbox, sharing) and the append-only audit log

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATEMENTS = [
    # One row per case: what lists and operators need, codes and ids only.
    """
    CREATE TABLE rm_cases (
        case_id               text PRIMARY KEY,
        sending_mission       text NOT NULL,
        receiving_mission     text NOT NULL,
        border_partner        text NOT NULL,
        host_country          text NOT NULL,
        destination_country   text NOT NULL,
        age_category          text NOT NULL,
        minor                 boolean NOT NULL,
        witness               boolean NOT NULL,
        risk_level            text NOT NULL,
        referral_source       text NOT NULL,
        stage                 text NOT NULL,
        blocked_on            text,
        blocked_since         timestamptz,
        escalated             boolean NOT NULL DEFAULT false,
        outcome               text,
        registered_at         timestamptz NOT NULL,
        receiving_visible_at  timestamptz,
        closed_at             timestamptz,
        last_event_at         timestamptz NOT NULL,
        working               jsonb NOT NULL DEFAULT '{}'::jsonb
    )
    """,
    "CREATE INDEX rm_cases_sending ON rm_cases (sending_mission, registered_at)",
    "CREATE INDEX rm_cases_receiving ON rm_cases (receiving_mission, registered_at)",
    "CREATE INDEX rm_cases_blocked ON rm_cases (blocked_since) WHERE outcome IS NULL",
    """
    CREATE TABLE rm_tasks (
        task_id       uuid PRIMARY KEY,
        case_id       text NOT NULL,
        kind          text NOT NULL,
        assignee_org  text NOT NULL,
        assignee_role text NOT NULL,
        status        text NOT NULL CHECK (status IN ('open', 'completed', 'cancelled')),
        opened_at     timestamptz NOT NULL,
        due_at        timestamptz NOT NULL,
        escalated     boolean NOT NULL DEFAULT false,
        closed_at     timestamptz,
        closed_by_org text,
        assignee_user text,
        reassigned_by text
    )
    """,
    "CREATE INDEX rm_tasks_inbox ON rm_tasks (assignee_org, status, due_at)",
    "CREATE INDEX rm_tasks_case ON rm_tasks (case_id)",
    """
    CREATE TABLE rm_sharing (
        case_id            text NOT NULL,
        org_id             text NOT NULL,
        consent_record_id  text NOT NULL,
        granted_at         timestamptz NOT NULL,
        granted_by_org     text NOT NULL,
        granted_by_actor   text NOT NULL,
        revoked_at         timestamptz,
        revocation_reason  text,
        PRIMARY KEY (case_id, org_id)
    )
    """,
    # Who did what to which case, when, and how it ended. Append-only, like events.
    """
    CREATE TABLE audit_log (
        audit_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at          timestamptz NOT NULL DEFAULT now(),
        request_id  text NOT NULL,
        user_id     text,
        org_id      text,
        role        text,
        method      text NOT NULL,
        route       text NOT NULL,
        action      text NOT NULL,
        case_id     text,
        task_id     uuid,
        status      integer NOT NULL,
        outcome     text NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed'))
    )
    """,
    "CREATE INDEX audit_log_case ON audit_log (case_id, audit_id)",
    """
    CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_log_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()
    """,
    "ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only",
]


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE audit_log")
    op.execute("DROP FUNCTION audit_log_refuse_change()")
    for table in ("rm_sharing", "rm_tasks", "rm_cases"):
        op.execute(f"DROP TABLE {table}")
