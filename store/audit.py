"""The audit log: every API request that read or wrote case data — who, from which
organisation, what, when, and how it ended. Append-only (the database refuses UPDATE,
DELETE and TRUNCATE). Rows hold ids and codes only: never a request body."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class AuditEntry:
    request_id: str
    user_id: str | None
    org_id: str | None
    role: str | None
    method: str
    route: str  # the route template (``/cases/{case_id}``), never the raw URL
    action: str
    case_id: str | None
    task_id: uuid.UUID | None
    status: int

    @property
    def outcome(self) -> str:
        if self.status >= 500:
            return "failed"
        return "allowed" if self.status < 400 else "refused"


class AuditLog:
    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def record(self, entry: AuditEntry) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO audit_log (request_id, user_id, org_id, role, method, route, "
                "action, case_id, task_id, status, outcome) VALUES (:request_id, :user_id, "
                ":org_id, :role, :method, :route, :action, :case_id, :task_id, :status, "
                ":outcome)"),
                {**entry.__dict__, "outcome": entry.outcome})

    async def for_case(self, case_id: str, limit: int = 500,
                       after: int = 0) -> list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT audit_id, at, request_id, user_id, org_id, role, method, route, action, "
                "case_id, task_id, status, outcome FROM audit_log WHERE case_id = :c "
                "AND audit_id > :after ORDER BY audit_id LIMIT :limit"),
                {"c": case_id, "after": after, "limit": limit})
            return [dict(r._mapping) for r in rows]

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()


