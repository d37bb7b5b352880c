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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain import catalogue
from domain import outside_events as out
from domain.journey import events as ev
from domain.journey.vocabulary import Sex
from domain.kernel import AgeCategory, treated_as_minor
from domain.reintegration import events as rev
from domain.trafficking import TraffickingAccountRecorded
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


_CASE_TYPES = {  # rm_cases' column → the PostgreSQL type its array is written as
    "case_id": "text", "sending_mission": "text", "receiving_mission": "text",
    "border_partner": "text", "host_country": "text", "destination_country": "text",
    "age_category": "text", "minor": "boolean", "witness": "boolean", "risk_level": "text",
    "referral_source": "text", "stage": "text", "blocked_on": "text",
    "blocked_since": "timestamptz", "escalated": "boolean", "outcome": "text",
    "registered_at": "timestamptz", "receiving_visible_at": "timestamptz",
    "closed_at": "timestamptz", "last_event_at": "timestamptz", "working": "jsonb",
    "sex": "text",
}


class CaseListProjection:
    """``rm_cases``: stage, what the case is blocked on and since when, its parties.

    A page is applied in memory: the rows of the page's cases in one query, every event
    folded into them (``fold``), the changed rows written back in one statement."""

    name = "cases"

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM rm_cases"))

    async def apply_page(self, conn: AsyncConnection, events: Sequence[StoredEvent]) -> None:
        page = [e for e in events if catalogued(e, self.name)]
        if not page:
            return
        rows = {r["case_id"]: r for r in await _load(
            conn, "rm_cases", _CASE_TYPES, "case_id", "text", {e.case_id for e in page})}
        changed: set[str] = set()
        for event in page:
            if self.fold(rows, event):
                changed.add(event.case_id)
        await _upsert(conn, "rm_cases", _CASE_TYPES, ("case_id",),
                      [rows[c] for c in sorted(changed)])

    @staticmethod
    def fold(rows: dict[str, dict[str, Any]], event: StoredEvent) -> bool:
        """Fold one event into the case's row (``working`` as a dict); whether it changed."""
        t, p, at = event.event_type, event.payload, event.occurred_at
        row = rows.get(event.case_id)
        if t == ev.ReferralRegistered.TYPE:
            if row is not None:
                return False  # registered once; a second referral event changes nothing
            age = p.get("age_category", AgeCategory.UNKNOWN.value)  # v1: see the upcaster
            rows[event.case_id] = {
                "case_id": event.case_id, "sending_mission": p["sending_mission"],
                "receiving_mission": p["receiving_mission"], "border_partner": p["border_partner"],
                "host_country": p["host_country"], "destination_country": p["destination_country"],
                "age_category": age, "minor": treated_as_minor(AgeCategory(age)),
                "witness": bool(p.get("witness")), "risk_level": p["risk_level"],
                "referral_source": p.get("source", "unknown"), "stage": "screening",
                "blocked_on": None, "blocked_since": None, "escalated": False, "outcome": None,
                "registered_at": at, "receiving_visible_at": None, "closed_at": None,
                "last_event_at": at, "working": {},
                "sex": p.get("sex", Sex.NOT_RECORDED.value)}  # before sex was asked
            return True
        if row is None:
            return False  # identity events before the referral, or a case without a referral
        working: dict[str, Any] = row["working"]
        stage = row["stage"]
        task_id = p.get("task_id")
        if t == ev.TaskOpened.TYPE:
            working.setdefault("tasks", {})[task_id] = [p["kind"], at.isoformat()]
            stage = _TASK_STAGE.get(p["kind"], stage)
            if p["assignee_org"] == row["receiving_mission"]:
                row["receiving_visible_at"] = row["receiving_visible_at"] or at
        elif (task_id and t not in _NOT_COMPLETING) or t == ev.TaskCancelled.TYPE:
            open_tasks = working.get("tasks", {})
            open_tasks.pop(task_id, None)
            if t == ev.ScreeningInterviewRecorded.TYPE and any(
                    kind == "guardian_appointment" for kind, _ in open_tasks.values()):
                stage = "minor_safeguards"  # a child's decisions wait for her guardian
        if t == ev.HandoffCodeIssued.TYPE:
            row["receiving_visible_at"] = row["receiving_visible_at"] or at
        elif t == ev.TransferAccepted.TYPE:  # the role's new holder (decision 0068)
            row[p["role"]] = p["to_org"]
            if p["role"] == "receiving_mission":
                row["receiving_visible_at"] = row["receiving_visible_at"] or at
        if t == ev.CaseEscalated.TYPE:
            working["escalation"] = [p["reason"], at.isoformat()]
            row["escalated"] = True
        elif t == ev.EscalationResolved.TYPE:
            working.pop("escalation", None)
        elif t == out.OperatorEscalated.TYPE:
            row["escalated"] = True
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
            row["age_category"], row["minor"] = p["result"], bool(p["minor"])
        if t == ev.ConsentWithdrawn.TYPE:
            stage = "to_safety" if p.get("after_departure") else "compensating"
        elif t == ev.JourneyLegFailed.TYPE and "hold" in working:
            pass  # an onward leg failed while she is held: she is still at the border
        elif t in _EVENT_STAGE:
            stage = _EVENT_STAGE[t]
        if t in catalogue.OUTCOME_TYPES:
            stage = "closed"
            row["outcome"] = catalogue.outcome_code(t)
            row["closed_at"] = at
            row["working"] = working = {}
        row["stage"] = stage
        row["blocked_on"], row["blocked_since"] = _blocked(working, stage)
        row["last_event_at"] = at
        return True


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


_TASK_TYPES = {
    "task_id": "uuid", "case_id": "text", "kind": "text", "assignee_org": "text",
    "assignee_role": "text", "status": "text", "opened_at": "timestamptz",
    "due_at": "timestamptz", "escalated": "boolean", "closed_at": "timestamptz",
    "closed_by_org": "text", "assignee_user": "text", "reassigned_by": "text",
}
_TASK_OVERDUE = frozenset({ev.TaskOverdueEscalated.TYPE, rev.ReintegrationTaskOverdue.TYPE})
_TASK_CANCELLED = frozenset({ev.TaskCancelled.TYPE, rev.ReintegrationTaskCancelled.TYPE})
_TRANSFER_ACCEPTED = ev.TransferAccepted.TYPE


class TaskInboxProjection:
    """``rm_tasks``: every human task, who it is assigned to, open or how it ended."""

    name = "tasks"

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM rm_tasks"))

    async def apply_page(self, conn: AsyncConnection, events: Sequence[StoredEvent]) -> None:
        page = [e for e in events if catalogued(e, self.name) and e.payload.get("task_id")]
        if not page:
            return
        # A transfer accepted moves the open tasks it names too (decision 0068).
        pairs = [(task, e) for e in page for task in (
            e.payload["task_id"], *(e.payload.get("reassigned_tasks") or ()
                                    if e.event_type == _TRANSFER_ACCEPTED else ()))]
        ids = [uuid.UUID(task) for task, _ in pairs]
        page = [e for _, e in pairs]
        rows = {r["task_id"]: r for r in await _load(
            conn, "rm_tasks", _TASK_TYPES, "task_id", "uuid", set(ids))}
        changed: set[uuid.UUID] = set()
        for task_id, event in zip(ids, page, strict=True):
            if self.fold(rows, task_id, event):
                changed.add(task_id)
        await _upsert(conn, "rm_tasks", _TASK_TYPES, ("task_id",),
                      [rows[t] for t in sorted(changed)])

    @staticmethod
    def fold(rows: dict[uuid.UUID, dict[str, Any]], task_id: uuid.UUID,
             event: StoredEvent) -> bool:
        """Fold one event of task ``task_id`` into its row; whether the row changed."""
        t, p, at = event.event_type, event.payload, event.occurred_at
        row = rows.get(task_id)
        if t in (ev.TaskOpened.TYPE, rev.ReintegrationTaskOpened.TYPE):
            if row is not None:
                return False  # opened once
            rows[task_id] = {
                "task_id": task_id, "case_id": event.case_id, "kind": p["kind"],
                "assignee_org": p["assignee_org"],
                # the follow-up's tasks are the receiving mission's, but a provider's report
                "assignee_role": p["assignee_role"] if t == ev.TaskOpened.TYPE
                else "partner" if p["kind"] == "service_delivery" else "receiving_mission",
                "status": "open", "opened_at": at, "due_at": datetime.fromisoformat(p["due_at"]),
                "escalated": False, "closed_at": None, "closed_by_org": None,
                "assignee_user": None, "reassigned_by": None}
            return True
        if row is None:
            return False
        if t == _TRANSFER_ACCEPTED and str(task_id) != p["task_id"]:
            if row["status"] != "open":
                return False
            row["assignee_org"], row["assignee_user"] = p["to_org"], None
        elif t in _TASK_OVERDUE:
            row["escalated"] = True
        elif row["status"] != "open":
            return False
        elif t in _TASK_CANCELLED:
            row["status"], row["closed_at"] = "cancelled", at
        elif t == out.OperatorTaskReassigned.TYPE:
            row["assignee_user"], row["reassigned_by"] = p.get("to_user"), event.actor
        elif t not in _NOT_COMPLETING and t not in catalogue.IDENTITY_TYPES:
            row["status"], row["closed_at"], row["closed_by_org"] = ("completed", at,
                                                                     event.author_org)
        else:
            return False
        return True


_SHARING_TYPES = {
    "case_id": "text", "org_id": "text", "consent_record_id": "text",
    "granted_at": "timestamptz", "granted_by_org": "text", "granted_by_actor": "text",
    "revoked_at": "timestamptz", "revocation_reason": "text",
}
CONSENT_WITHDRAWN_ROW = "*"
"""``rm_sharing.org_id`` of a case's own row, written when her consent is withdrawn
(``revoked_at``: when): a grant appended after it is void. No organisation has this id;
``ReadModels.sharing`` leaves the row out."""
_SHARING_EVENTS = frozenset({out.SharingGranted.TYPE, out.SharingRevoked.TYPE,
                             ev.ConsentWithdrawn.TYPE})


class SharingProjection:
    """``rm_sharing``: which organisations may read a case's identity, on which consent.
    A consent withdrawal revokes every grant of the case, and voids any grant after it
    (as in api.access.case_facts): the case's row ``CONSENT_WITHDRAWN_ROW`` remembers it,
    so that the projection never reads the events table back."""

    name = "sharing"

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM rm_sharing"))

    async def apply_page(self, conn: AsyncConnection, events: Sequence[StoredEvent]) -> None:
        page = [e for e in events if catalogued(e, self.name)
                and e.event_type in _SHARING_EVENTS]
        if not page:
            return
        rows: dict[str, dict[str, dict[str, Any]]] = {}
        for r in await _load(conn, "rm_sharing", _SHARING_TYPES, "case_id", "text",
                             {e.case_id for e in page}):
            rows.setdefault(r["case_id"], {})[r["org_id"]] = r
        changed: set[tuple[str, str]] = set()
        for event in page:
            changed |= self.fold(rows.setdefault(event.case_id, {}), event)
        await _upsert(conn, "rm_sharing", _SHARING_TYPES, ("case_id", "org_id"),
                      [rows[c][o] for c, o in sorted(changed)])

    @staticmethod
    def fold(grants: dict[str, dict[str, Any]], event: StoredEvent) -> set[tuple[str, str]]:
        """Fold one event into the case's rows (org id → row); the keys of changed rows."""
        t, p, at = event.event_type, event.payload, event.occurred_at
        if t == out.SharingGranted.TYPE:
            if CONSENT_WITHDRAWN_ROW in grants:
                return set()  # void: after a withdrawal only a new consent could share
            grants[p["org_id"]] = {
                "case_id": event.case_id, "org_id": p["org_id"],
                "consent_record_id": p["consent_record_id"], "granted_at": at,
                "granted_by_org": event.author_org, "granted_by_actor": event.actor,
                "revoked_at": None, "revocation_reason": None}
            return {(event.case_id, p["org_id"])}
        if t == out.SharingRevoked.TYPE:
            org, why = p.get("org_id"), p["reason"]
        else:  # her consent withdrawn
            org, why = None, "consent_withdrawn"
        changed = set()
        for org_id, row in grants.items():
            if (row["revoked_at"] is None and org_id != CONSENT_WITHDRAWN_ROW
                    and org in (None, org_id)):
                row["revoked_at"], row["revocation_reason"] = at, why
                changed.add((event.case_id, org_id))
        if t == ev.ConsentWithdrawn.TYPE and CONSENT_WITHDRAWN_ROW not in grants:
            grants[CONSENT_WITHDRAWN_ROW] = {
                "case_id": event.case_id, "org_id": CONSENT_WITHDRAWN_ROW,
                "consent_record_id": "", "granted_at": at, "granted_by_org": event.author_org,
                "granted_by_actor": event.actor, "revoked_at": at,
                "revocation_reason": "consent_withdrawn"}
            changed.add((event.case_id, CONSENT_WITHDRAWN_ROW))
        return changed


async def _load(conn: AsyncConnection, table: str, types: dict[str, str], key: str,
                key_type: str, keys: set[Any]) -> list[dict[str, Any]]:
    """The rows of ``table`` whose ``key`` is one of ``keys``, in one query; a jsonb
    column is decoded into a dict."""
    columns = ", ".join(f"{c}::text AS {c}" if t == "jsonb" else c for c, t in types.items())
    result = await conn.execute(text(
        f"SELECT {columns} FROM {table} WHERE {key} = ANY(CAST(:keys AS {key_type}[]))"),
        {"keys": list(keys)})
    rows = [dict(r._mapping) for r in result]
    for column in (c for c, t in types.items() if t == "jsonb"):
        for row in rows:
            row[column] = json.loads(row[column])
    return rows


async def _upsert(conn: AsyncConnection, table: str, types: dict[str, str],
                  key: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (every column) in one statement: one array per column, unnested."""
    if not rows:
        return
    arrays = ", ".join(f"CAST(:{c} AS text[])::jsonb[]" if t == "jsonb"
                       else f"CAST(:{c} AS {t}[])" for c, t in types.items())
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in types if c not in key)
    params = {c: [json.dumps(r[c]) if t == "jsonb" else r[c] for r in rows]
              for c, t in types.items()}
    await conn.execute(text(
        f"INSERT INTO {table} ({', '.join(types)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"), params)


class TraffickingProjection:
    """``rm_trafficking``: each case's account of how trafficking occurred, and
    ``rm_trafficking_route``: its route, one row per country in order (``seq`` from 1), for
    the report's country → country flows (decision 0066). A later account replaces the
    case's rows whole."""

    name = "trafficking"

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM rm_trafficking_route"))
        await conn.execute(text("DELETE FROM rm_trafficking"))

    async def apply_page(self, conn: AsyncConnection, events: Sequence[StoredEvent]) -> None:
        latest: dict[str, StoredEvent] = {}
        for event in events:  # in position order: the last account of a case wins
            if catalogued(event, self.name) and event.event_type == _ACCOUNT_RECORDED:
                latest[event.case_id] = event
        if not latest:
            return
        cases = sorted(latest)
        rows = [self.row(latest[c]) for c in cases]
        # The arrays are joined with a separator no code holds: unnest cannot take arrays
        # of arrays, and one statement writes the page.
        await conn.execute(text(
            "INSERT INTO rm_trafficking (case_id, recruitment_method, exploitation_types, "
            "duration_band, transport_means, recorded_at) "
            "SELECT c, m, COALESCE(string_to_array(NULLIF(e, ''), ','), '{}'), d, "
            "COALESCE(string_to_array(NULLIF(t, ''), ','), '{}'), a "
            "FROM unnest(CAST(:c AS text[]), "
            "CAST(:m AS text[]), CAST(:e AS text[]), CAST(:d AS text[]), CAST(:t AS text[]), "
            "CAST(:a AS timestamptz[])) AS x(c, m, e, d, t, a) "
            "ON CONFLICT (case_id) DO UPDATE SET "
            "recruitment_method = EXCLUDED.recruitment_method, "
            "exploitation_types = EXCLUDED.exploitation_types, "
            "duration_band = EXCLUDED.duration_band, "
            "transport_means = EXCLUDED.transport_means, recorded_at = EXCLUDED.recorded_at"),
            {"c": cases, "m": [r["recruitment_method"] for r in rows],
             "e": [",".join(r["exploitation_types"]) for r in rows],
             "d": [r["duration_band"] for r in rows],
             "t": [",".join(r["transport_means"]) for r in rows],
             "a": [r["recorded_at"] for r in rows]})
        await conn.execute(text(
            "DELETE FROM rm_trafficking_route WHERE case_id = ANY(CAST(:cases AS text[]))"),
            {"cases": cases})
        stops = [(row["case_id"], seq, role, country) for row in rows
                 for seq, (role, country) in enumerate(row["route"], start=1)]
        if stops:
            case_ids, seqs, roles, countries = (list(column) for column in zip(*stops,
                                                                                strict=True))
            await conn.execute(text(
                "INSERT INTO rm_trafficking_route (case_id, seq, role, country) "
                "SELECT * FROM unnest(CAST(:c AS text[]), CAST(:s AS int[]), "
                "CAST(:r AS text[]), CAST(:k AS text[]))"),
                {"c": case_ids, "s": seqs, "r": roles, "k": countries})

    @staticmethod
    def row(event: StoredEvent) -> dict[str, Any]:
        """The account's row, and its route as (role, country) pairs in order."""
        p = event.payload
        return {"case_id": event.case_id, "recruitment_method": p.get("recruitment_method"),
                "exploitation_types": list(p.get("exploitation_types", [])),
                "duration_band": p.get("duration_band"),
                "transport_means": list(p.get("transport_means", [])),
                "recorded_at": event.occurred_at,
                "route": [(s["role"], s["country"]) for s in p.get("route", [])]}


_ACCOUNT_RECORDED = TraffickingAccountRecorded.TYPE


def all_projections() -> list[Any]:
    from store.case_links import CaseLinksProjection
    from store.reports import ReportFactsProjection  # imports this module's helpers

    return [TaskInboxProjection(), CaseListProjection(), SharingProjection(),
            ReportFactsProjection(), TraffickingProjection(), CaseLinksProjection()]


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
    "closed_at, last_event_at, sex"
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
        """Cases by case id; ``after``: the case id of the last case of the page before
        (a keyset)."""
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
                          blocked_on_prefix: str | None, limit: int,
                          after: tuple[datetime | None, str] | None = None
                          ) -> list[dict[str, Any]]:
        """Open cases blocked for at least ``blocked_for_seconds``, or with an overdue or
        escalated open task; the longest-blocked first (cases blocked on nothing last),
        then by case id. ``after``: the (blocked_since, case_id) of the last case of the
        page before (a keyset: the next page starts after it)."""
        params: dict[str, Any] = {
            "now": now, "cutoff": now - timedelta(seconds=blocked_for_seconds),
            "prefix": blocked_on_prefix, "limit": limit}
        keyset = ""
        if after is not None:
            since, params["after_case"] = after
            if since is None:  # among the cases blocked on nothing, which sort last
                keyset = "AND blocked_since IS NULL AND case_id > :after_case "
            else:
                params["after_since"] = since
                keyset = ("AND (blocked_since > :after_since OR blocked_since IS NULL OR "
                          "(blocked_since = :after_since AND case_id > :after_case)) ")
        rows = await self._rows(
            f"SELECT {_CASE_COLUMNS}, (SELECT count(*) FROM rm_tasks t WHERE t.case_id = "
            "c.case_id AND t.status = 'open' AND t.due_at < :now) AS overdue_tasks "
            "FROM rm_cases c WHERE outcome IS NULL AND ("
            "  (blocked_since IS NOT NULL AND blocked_since <= :cutoff) OR escalated OR "
            "  EXISTS (SELECT 1 FROM rm_tasks t WHERE t.case_id = c.case_id AND "
            "          t.status = 'open' AND (t.due_at < :now OR t.escalated))) "
            "AND (CAST(:prefix AS text) IS NULL OR blocked_on LIKE :prefix || '%') "
            f"{keyset}ORDER BY blocked_since NULLS LAST, case_id LIMIT :limit", params)
        return [dict(r._mapping) for r in rows]

    async def tasks(self, *, org: str, kind: str | None, overdue: bool | None,
                    due_before: datetime | None, now: datetime, status: str = "open",
                    limit: int = 100,
                    after: tuple[datetime, uuid.UUID] | None = None) -> list[TaskRow]:
        """An organisation's tasks, the soonest due first, then by task id. ``after``: the
        (due_at, task_id) of the last task of the page before (a keyset)."""
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
        if after is not None:
            where.append("(due_at, task_id) > "
                         "(CAST(:after_due AS timestamptz), CAST(:after_task AS uuid))")
            params["after_due"], params["after_task"] = after
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

    async def sharing(self, case_id: str, *, after: str | None = None,
                      limit: int | None = None) -> list[dict[str, Any]]:
        """The case's sharing grants by organisation id; ``after``: the organisation of
        the last grant of the page before; ``limit``: at most so many (None: all)."""
        rows = await self._rows(
            "SELECT org_id, consent_record_id, granted_at, granted_by_org, revoked_at, "
            "revocation_reason FROM rm_sharing WHERE case_id = :c AND org_id <> :withdrawn "
            "AND (CAST(:after AS text) IS NULL OR org_id > :after) "
            "ORDER BY org_id LIMIT :limit",
            {"c": case_id, "withdrawn": CONSENT_WITHDRAWN_ROW, "after": after,
             "limit": limit})
        return [dict(r._mapping) for r in rows]
