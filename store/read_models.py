"""Read models the API lists from: cases, the task inbox of every organisation, and the
identity-sharing grants. Each is a projection of the event store (``ProjectionRunner``),
rebuildable from position zero; none holds identity data (codes, ids and times only).

Projections read payloads as stored JSON, and name event types only through the
catalogue (``Model.TYPE`` or its sets, ``domain.catalogue``). A type the catalogue does not
hold is skipped explicitly, first thing (``store.projections.catalogued``); catalogued
types a projection does not fold (the vault's identity events) fall through.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain import catalogue
from domain import outside_events as out
from domain.journey import events as ev
from domain.kernel import AgeCategory, treated_as_minor
from domain.reintegration import events as rev
from store.events import StoredEvent
from store.projections import catalogued

# Names api/routes/ still imports from here; the catalogue is their home.
API_EVENT_TYPES = catalogue.API_TYPES

_TASK_STAGE = {
    "screening_interview": "screening",
    "options_decision": "options",
    "informed_consent": "consent",
    "guardian_appointment": "minor_safeguards",
    "best_interest_determination": "minor_safeguards",
    "travel_documents": "documents",
    "medical_clearance": "clearances",
    "prosecutor_notice": "clearances",
    "security_assessment": "clearances",
    "enter_booking": "booking",
    "reception_handoff": "reception",
    "guardian_handover": "guardian_handover",
    "safe_place": "to_safety",
    "tracing": "tracing",
}
_EVENT_STAGE = {
    ev.DocumentsRequested.TYPE: "documents",
    ev.JourneyBooked.TYPE: "awaiting_departure",
    ev.JourneyDeparted.TYPE: "in_transit",
    ev.ArrivedAtBorder.TYPE: "border",
    ev.JourneyLegFailed.TYPE: "booking",
    ev.RebookingScheduled.TYPE: "booking",
    ev.BorderEntryRefused.TYPE: "booking",
    ev.BorderCleared.TYPE: "reception",
    ev.DidNotArrive.TYPE: "tracing",
}
# Task-lifecycle events carry a task id but do not complete the task.
_NOT_COMPLETING = frozenset({ev.TaskOpened.TYPE, ev.TaskOverdueEscalated.TYPE,
                             ev.TaskCancelled.TYPE, rev.ReintegrationTaskOpened.TYPE,
                             rev.ReintegrationTaskOverdue.TYPE,
                             rev.ReintegrationTaskCancelled.TYPE,
                             ev.RepeatInterviewRequested.TYPE}) | catalogue.OPERATOR_TYPES
_BORDER_HOLD_ENDS = frozenset({ev.BorderHoldLifted.TYPE, ev.BorderEntryRefused.TYPE,
                               ev.BorderCleared.TYPE})


class CaseListProjection:
    """``rm_cases``: stage, what the case is blocked on and since when, its parties."""

    name = "cases"

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM rm_cases"))

    async def apply(self, conn: AsyncConnection, event: StoredEvent) -> None:
        if not catalogued(event, self.name):
            return
        t, p, at = event.event_type, event.payload, event.occurred_at
        if t == ev.ReferralRegistered.TYPE:
            age = p.get("age_category", AgeCategory.UNKNOWN.value)  # v1: see the upcaster
            await conn.execute(text(
                "INSERT INTO rm_cases (case_id, sending_mission, receiving_mission, "
                "border_partner, host_country, destination_country, age_category, minor, "
                "witness, risk_level, referral_source, stage, registered_at, last_event_at) "
                "VALUES (:c, :s, :r, :b, :h, :d, :a, :m, :w, :rl, :src, 'screening', :at, :at) "
                "ON CONFLICT (case_id) DO NOTHING"),
                {"c": event.case_id, "s": p["sending_mission"], "r": p["receiving_mission"],
                 "b": p["border_partner"], "h": p["host_country"],
                 "d": p["destination_country"], "a": age,
                 "m": treated_as_minor(AgeCategory(age)),
                 "w": bool(p.get("witness")), "rl": p["risk_level"],
                 "src": p.get("source", "unknown"), "at": at})
            return
        row = (await conn.execute(text(
            "SELECT receiving_mission, stage, working, outcome FROM rm_cases "
            "WHERE case_id = :c FOR UPDATE"), {"c": event.case_id})).first()
        if row is None:
            return  # identity events before the referral, or a case without a referral
        working: dict[str, Any] = dict(row.working or {})
        stage = row.stage
        sets: dict[str, Any] = {}
        task_id = p.get("task_id")
        if t == ev.TaskOpened.TYPE:
            working.setdefault("tasks", {})[task_id] = [p["kind"], at.isoformat()]
            stage = _TASK_STAGE.get(p["kind"], stage)
            if p["assignee_org"] == row.receiving_mission:
                sets["receiving_visible_at"] = at
        elif (task_id and t not in _NOT_COMPLETING) or t == ev.TaskCancelled.TYPE:
            working.get("tasks", {}).pop(task_id, None)
            if t == ev.ScreeningInterviewRecorded.TYPE and any(
                    kind == "guardian_appointment" for kind, _ in working["tasks"].values()):
                stage = "minor_safeguards"  # a child's decisions wait for her guardian
        if t == ev.HandoffCodeIssued.TYPE:
            sets["receiving_visible_at"] = at
        if t == ev.CaseEscalated.TYPE:
            working["escalation"] = [p["reason"], at.isoformat()]
            sets["escalated"] = True
        elif t == ev.EscalationResolved.TYPE:
            working.pop("escalation", None)
        elif t == out.OperatorEscalated.TYPE:
            sets["escalated"] = True
        elif t == ev.BorderHoldStarted.TYPE:
            working["hold"] = at.isoformat()
        elif t in _BORDER_HOLD_ENDS:
            working.pop("hold", None)
        elif t == ev.RebookingScheduled.TYPE:
            working["rebooking"] = at.isoformat()
        elif t == ev.JourneyBooked.TYPE:
            working.pop("rebooking", None)
        elif t == ev.DidNotArrive.TYPE:
            working["tracing"] = [p["fact"], at.isoformat(), stage]
        elif t == ev.TracingConcluded.TYPE:
            _, _, before = working.pop("tracing", [None, None, stage])
            if (working.get("escalation") or [None])[0] == "person_missing":
                working.pop("escalation")
            stage = before
        elif t == ev.AgeAssessed.TYPE:
            sets.update(age_category=p["result"], minor=bool(p["minor"]))
        if t == ev.ConsentWithdrawn.TYPE:
            stage = "to_safety" if p.get("after_departure") else "compensating"
        elif t == ev.JourneyLegFailed.TYPE and "hold" in working:
            pass  # an onward leg failed while she is held: she is still at the border
        elif t in _EVENT_STAGE:
            stage = _EVENT_STAGE[t]
        if t in catalogue.OUTCOME_TYPES:
            stage = "closed"
            sets["outcome"] = catalogue.outcome_code(t)
            sets["closed_at"] = at
            working = {}
        blocked_on, blocked_since = _blocked(working, stage)
        sets.update(stage=stage, working=json.dumps(working), blocked_on=blocked_on,
                    blocked_since=blocked_since, last_event_at=at)
        if "receiving_visible_at" in sets:
            assignments = ["receiving_visible_at = "
                           "COALESCE(receiving_visible_at, :receiving_visible_at)"]
        else:
            assignments = []
        assignments += [f"{k} = :{k}" for k in sets if k not in ("receiving_visible_at",
                                                                 "working")]
        assignments.append("working = CAST(:working AS jsonb)")
        await conn.execute(text(f"UPDATE rm_cases SET {', '.join(assignments)} "
                                "WHERE case_id = :case_id"),
                           {**sets, "case_id": event.case_id})


def _blocked(working: dict[str, Any], stage: str) -> tuple[str | None, datetime | None]:
    """What the case waits for: an escalation, a border hold, a rebooking, else its oldest
    open task. Folded from the case's own events only (``working``), so that the result
    never depends on how far another projection has caught up."""
    if stage == "closed":
        return None, None
    if "tracing" in working:
        fact, since, _ = working["tracing"]
        return f"tracing:{fact}", datetime.fromisoformat(since)
    if "escalation" in working:
        reason, since = working["escalation"]
        return f"escalation:{reason}", datetime.fromisoformat(since)
    if "hold" in working:
        return "border_hold", datetime.fromisoformat(working["hold"])
    if "rebooking" in working:
        return "rebooking", datetime.fromisoformat(working["rebooking"])
    tasks = sorted((opened, kind) for kind, opened in working.get("tasks", {}).values()
                   if kind != "border_companion")
    if not tasks:
        return None, None
    opened, kind = tasks[0]
    return f"task:{kind}", datetime.fromisoformat(opened)


class TaskInboxProjection:
    """``rm_tasks``: every human task, who it is assigned to, open or how it ended."""

    name = "tasks"

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM rm_tasks"))

    async def apply(self, conn: AsyncConnection, event: StoredEvent) -> None:
        if not catalogued(event, self.name):
            return
        t, p, at = event.event_type, event.payload, event.occurred_at
        if t == ev.TaskOpened.TYPE:
            await conn.execute(text(
                "INSERT INTO rm_tasks (task_id, case_id, kind, assignee_org, assignee_role, "
                "status, opened_at, due_at) VALUES (:t, :c, :k, :o, :r, 'open', :at, :due) "
                "ON CONFLICT (task_id) DO NOTHING"),
                {"t": uuid.UUID(p["task_id"]), "c": event.case_id, "k": p["kind"],
                 "o": p["assignee_org"], "r": p["assignee_role"], "at": at,
                 "due": datetime.fromisoformat(p["due_at"])})
        elif t == rev.ReintegrationTaskOpened.TYPE:  # follow-up: the receiving mission's tasks
            await conn.execute(text(
                "INSERT INTO rm_tasks (task_id, case_id, kind, assignee_org, assignee_role, "
                "status, opened_at, due_at) VALUES (:t, :c, :k, :o, 'receiving_mission', "
                "'open', :at, :due) ON CONFLICT (task_id) DO NOTHING"),
                {"t": uuid.UUID(p["task_id"]), "c": event.case_id, "k": p["kind"],
                 "o": p["assignee_org"], "at": at, "due": datetime.fromisoformat(p["due_at"])})
        elif t in (ev.TaskOverdueEscalated.TYPE, rev.ReintegrationTaskOverdue.TYPE):
            await conn.execute(text("UPDATE rm_tasks SET escalated = true WHERE task_id = :t"),
                               {"t": uuid.UUID(p["task_id"])})
        elif t in (ev.TaskCancelled.TYPE, rev.ReintegrationTaskCancelled.TYPE):
            await conn.execute(text(
                "UPDATE rm_tasks SET status = 'cancelled', closed_at = :at "
                "WHERE task_id = :t AND status = 'open'"),
                {"t": uuid.UUID(p["task_id"]), "at": at})
        elif t == out.OperatorTaskReassigned.TYPE:
            await conn.execute(text(
                "UPDATE rm_tasks SET assignee_user = :u, reassigned_by = :by "
                "WHERE task_id = :t AND status = 'open'"),
                {"t": uuid.UUID(p["task_id"]), "u": p.get("to_user"), "by": event.actor})
        elif p.get("task_id") and t not in _NOT_COMPLETING and t not in catalogue.IDENTITY_TYPES:
            await conn.execute(text(
                "UPDATE rm_tasks SET status = 'completed', closed_at = :at, "
                "closed_by_org = :o WHERE task_id = :t AND status = 'open'"),
                {"t": uuid.UUID(p["task_id"]), "at": at, "o": event.author_org})


class SharingProjection:
    """``rm_sharing``: which organisations may read a case's identity, on which consent.
    A consent withdrawal revokes every grant of the case."""

    name = "sharing"

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM rm_sharing"))

    async def apply(self, conn: AsyncConnection, event: StoredEvent) -> None:
        if not catalogued(event, self.name):
            return
        t, p, at = event.event_type, event.payload, event.occurred_at
        if t == out.SharingGranted.TYPE:
            withdrawn_before = (await conn.execute(text(
                "SELECT 1 FROM events WHERE case_id = :c AND event_type = :withdrawn "
                "AND position < :pos LIMIT 1"),
                {"c": event.case_id, "pos": event.position,
                 "withdrawn": ev.ConsentWithdrawn.TYPE})).scalar()
            if withdrawn_before:  # void, as in api.access.case_facts
                return
            await conn.execute(text(
                "INSERT INTO rm_sharing (case_id, org_id, consent_record_id, granted_at, "
                "granted_by_org, granted_by_actor) VALUES (:c, :o, :r, :at, :bo, :ba) "
                "ON CONFLICT (case_id, org_id) DO UPDATE SET consent_record_id = :r, "
                "granted_at = :at, granted_by_org = :bo, granted_by_actor = :ba, "
                "revoked_at = NULL, revocation_reason = NULL"),
                {"c": event.case_id, "o": p["org_id"], "r": p["consent_record_id"], "at": at,
                 "bo": event.author_org, "ba": event.actor})
        elif t == out.SharingRevoked.TYPE:
            await conn.execute(text(
                "UPDATE rm_sharing SET revoked_at = :at, revocation_reason = :why "
                "WHERE case_id = :c AND revoked_at IS NULL "
                "AND (CAST(:o AS text) IS NULL OR org_id = :o)"),
                {"c": event.case_id, "o": p.get("org_id"), "at": at, "why": p["reason"]})
        elif t == ev.ConsentWithdrawn.TYPE:
            await conn.execute(text(
                "UPDATE rm_sharing SET revoked_at = :at, revocation_reason = 'consent_withdrawn' "
                "WHERE case_id = :c AND revoked_at IS NULL"), {"c": event.case_id, "at": at})


def all_projections() -> list[Any]:
    return [TaskInboxProjection(), CaseListProjection(), SharingProjection()]


# --- queries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRow:
    task_id: uuid.UUID
    case_id: str
    kind: str
    assignee_org: str
    assignee_role: str
    status: str
    opened_at: datetime
    due_at: datetime
    escalated: bool
    closed_at: datetime | None
    closed_by_org: str | None
    assignee_user: str | None
    reassigned_by: str | None


_CASE_COLUMNS = (
    "case_id, sending_mission, receiving_mission, border_partner, host_country, "
    "destination_country, age_category, minor, witness, risk_level, referral_source, stage, "
    "blocked_on, blocked_since, escalated, outcome, registered_at, receiving_visible_at, "
    "closed_at, last_event_at"
)
_TASK_COLUMNS = ("task_id, case_id, kind, assignee_org, assignee_role, status, opened_at, "
                 "due_at, escalated, closed_at, closed_by_org, assignee_user, reassigned_by")


class ReadModels:
    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def _rows(self, sql: str, params: dict[str, Any]) -> Sequence[Any]:
        async with self._engine.connect() as conn:
            return (await conn.execute(text(sql), params)).all()

    async def cases(self, *, sending: str | None = None, receiving: str | None = None,
                    partner: str | None = None, stage: str | None = None,
                    open_only: bool = False, limit: int = 100,
                    after: str | None = None) -> list[dict[str, Any]]:
        where, params = ["true"], {"limit": limit}
        if sending is not None:
            where.append("sending_mission = :sending")
            params["sending"] = sending
        if receiving is not None:
            where.append("receiving_mission = :receiving AND receiving_visible_at IS NOT NULL")
            params["receiving"] = receiving
        if partner is not None:
            where.append("case_id IN (SELECT case_id FROM rm_tasks WHERE assignee_org = :p)")
            params["p"] = partner
        if stage is not None:
            where.append("stage = :stage")
            params["stage"] = stage
        if open_only:
            where.append("outcome IS NULL")
        if after is not None:
            where.append("case_id > :after")
            params["after"] = after
        rows = await self._rows(
            f"SELECT {_CASE_COLUMNS} FROM rm_cases WHERE {' AND '.join(where)} "
            "ORDER BY case_id LIMIT :limit", params)
        return [dict(r._mapping) for r in rows]

    async def case(self, case_id: str) -> dict[str, Any] | None:
        rows = await self._rows(f"SELECT {_CASE_COLUMNS} FROM rm_cases WHERE case_id = :c",
                                {"c": case_id})
        return dict(rows[0]._mapping) if rows else None

    async def stuck_cases(self, *, now: datetime, blocked_for_seconds: int,
                          blocked_on_prefix: str | None, limit: int) -> list[dict[str, Any]]:
        """Open cases blocked for at least ``blocked_for_seconds``, or with an overdue or
        escalated open task; the longest-blocked first."""
        rows = await self._rows(
            f"SELECT {_CASE_COLUMNS}, (SELECT count(*) FROM rm_tasks t WHERE t.case_id = "
            "c.case_id AND t.status = 'open' AND t.due_at < :now) AS overdue_tasks "
            "FROM rm_cases c WHERE outcome IS NULL AND ("
            "  (blocked_since IS NOT NULL AND blocked_since <= :cutoff) OR escalated OR "
            "  EXISTS (SELECT 1 FROM rm_tasks t WHERE t.case_id = c.case_id AND "
            "          t.status = 'open' AND (t.due_at < :now OR t.escalated))) "
            "AND (CAST(:prefix AS text) IS NULL OR blocked_on LIKE :prefix || '%') "
            "ORDER BY blocked_since NULLS LAST, case_id LIMIT :limit",
            {"now": now, "cutoff": now - timedelta(seconds=blocked_for_seconds),
             "prefix": blocked_on_prefix, "limit": limit})
        return [dict(r._mapping) for r in rows]

    async def tasks(self, *, org: str, kind: str | None, overdue: bool | None,
                    due_before: datetime | None, now: datetime, status: str = "open",
                    limit: int = 100) -> list[TaskRow]:
        where = ["assignee_org = :org", "status = :status"]
        params: dict[str, Any] = {"org": org, "status": status, "limit": limit, "now": now}
        if kind is not None:
            where.append("kind = :kind")
            params["kind"] = kind
        if overdue is True:
            where.append("due_at < :now")
        elif overdue is False:
            where.append("due_at >= :now")
        if due_before is not None:
            where.append("due_at < :due_before")
            params["due_before"] = due_before
        rows = await self._rows(
            f"SELECT {_TASK_COLUMNS} FROM rm_tasks WHERE {' AND '.join(where)} "
            "ORDER BY due_at, task_id LIMIT :limit", params)
        return [TaskRow(**r._mapping) for r in rows]

    async def tasks_of_case(self, case_id: str) -> list[TaskRow]:
        rows = await self._rows(
            f"SELECT {_TASK_COLUMNS} FROM rm_tasks WHERE case_id = :c ORDER BY opened_at, "
            "task_id", {"c": case_id})
        return [TaskRow(**r._mapping) for r in rows]

    async def task(self, task_id: uuid.UUID) -> TaskRow | None:
        rows = await self._rows(f"SELECT {_TASK_COLUMNS} FROM rm_tasks WHERE task_id = :t",
                                {"t": task_id})
        return TaskRow(**rows[0]._mapping) if rows else None

    async def sharing(self, case_id: str) -> list[dict[str, Any]]:
        rows = await self._rows(
            "SELECT org_id, consent_record_id, granted_at, granted_by_org, revoked_at, "
            "revocation_reason FROM rm_sharing WHERE case_id = :c ORDER BY org_id",
            {"c": case_id})
        return [dict(r._mapping) for r in rows]

    async def statistics_counts(self) -> dict[str, Counter[str]]:
        """Cases per value of each published dimension, counted in the database. A value
        no case has is absent here: the API adds the rows it always shows, at zero."""
        rows = await self._rows(" UNION ALL ".join(
            f"(SELECT '{name}' AS dimension, {expr} AS value, count(*) AS n FROM rm_cases "
            "GROUP BY 2)" for name, expr in _STATISTICS_DIMENSIONS.items()), {})
        counts: dict[str, Counter[str]] = {name: Counter() for name in _STATISTICS_DIMENSIONS}
        for row in rows:
            counts[row.dimension][row.value] = row.n
        return counts


# Each published table: its name and the SQL expression of a case's value in it.
_STATISTICS_DIMENSIONS = {
    "by_outcome": "COALESCE(outcome, 'open')",
    "by_age_band": "age_category",
    "minor_or_age_unknown": "CASE WHEN minor THEN 'minor_or_unknown' ELSE 'adult' END",
    "by_destination_country": "destination_country",
    "by_host_country": "host_country",
}
