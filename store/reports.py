"""The statistical report and the caseload snapshot, counted in SQL over the read models
(decision 0065), and the projection of the facts they need beyond ``rm_cases``.

The report's dimensions and tables are declared here once (``DIMENSIONS``, ``TABLES``);
``report_counts`` counts every cell they print, margins included, in one statement (one
GROUPING SETS over the period's cases for the single-valued dimensions, one over their
unnested lists for the multi-valued ones); ``domain.disclosure.protect`` decides what is
hidden; ``assemble`` lays the result out for JSON, CSV and HTML.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain import catalogue
from domain.disclosure import DEFAULT_K, HIDDEN, TOTAL, Dimension, Key, Protected, Table, protect
from domain.journey import events as ev
from domain.journey.vocabulary import PostArrivalAssistance, ReferralSource
from domain.kernel import AgeCategory
from domain.reintegration import events as rev
from domain.reintegration.vocabulary import RiskIndicator, ServiceKind
from store.events import StoredEvent
from store.projections import catalogued
from store.read_models import _load, _upsert

# --- the projection -------------------------------------------------------------------

_FACT_TYPES = {
    "case_id": "text", "trafficking_status": "text", "follow_up_started": "boolean",
    "check_ins_due": "integer", "check_ins_reached": "integer", "contact_lost": "boolean",
    "risk_indicators": "jsonb", "sustainability_band": "text", "services_delivered": "jsonb",
    "working": "jsonb",
}
_FOLDED = frozenset({
    ev.ScreeningInterviewRecorded.TYPE, rev.ReintegrationStarted.TYPE,
    rev.ReintegrationTaskOpened.TYPE, rev.CheckInReached.TYPE, rev.ContactLost.TYPE,
    rev.RiskRecorded.TYPE, rev.SustainabilityAssessed.TYPE, rev.PlanAgreed.TYPE,
    rev.PlanChanged.TYPE, rev.ServiceDeliveryReported.TYPE,
    # what the operators' series count (api/metrics.py): rebookings, contact lost now
    ev.PostArrivalAssistanceRecorded.TYPE,
    ev.RebookingScheduled.TYPE, rev.ContactRestored.TYPE, rev.ReintegrationClosed.TYPE,
    rev.ReintegrationReopened.TYPE,
})


def sustainability_band(economic: float, social: float, psychosocial: float) -> str:
    """The band of the mean of the three scores (0–1): low under 0.4, high from 0.7."""
    mean = (economic + social + psychosocial) / 3
    return "low" if mean < 0.4 else "medium" if mean < 0.7 else "high"


class ReportFactsProjection:
    """``rm_report_facts``: per case, the screening's trafficking status and what its
    follow-up reached (codes and counts only)."""

    name = "report_facts"

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM rm_report_facts"))

    async def apply_page(self, conn: AsyncConnection, events: Sequence[StoredEvent]) -> None:
        page = [e for e in events if catalogued(e, self.name) and e.event_type in _FOLDED]
        if not page:
            return
        rows = {r["case_id"]: r for r in await _load(
            conn, "rm_report_facts", _FACT_TYPES, "case_id", "text",
            {e.case_id for e in page})}
        for event in page:
            self.fold(rows, event)
        await _upsert(conn, "rm_report_facts", _FACT_TYPES, ("case_id",),
                      [rows[c] for c in sorted({e.case_id for e in page})])

    @staticmethod
    def fold(rows: dict[str, dict[str, Any]], event: StoredEvent) -> None:
        t, p = event.event_type, event.payload
        row = rows.setdefault(event.case_id, {
            "case_id": event.case_id, "trafficking_status": None, "follow_up_started": False,
            "check_ins_due": 0, "check_ins_reached": 0, "contact_lost": False,
            "risk_indicators": [], "sustainability_band": None, "services_delivered": [],
            "working": {}})
        working = row["working"]
        if t == ev.ScreeningInterviewRecorded.TYPE:
            row["trafficking_status"] = p.get("trafficking_status")
        elif t == rev.ReintegrationStarted.TYPE:
            row["follow_up_started"] = True
        elif t == rev.ReintegrationTaskOpened.TYPE and p.get("kind") == "check_in":
            due = set(working.get("due", [])) | {p.get("check_in") or p.get("task_id")}
            working["due"] = sorted(due, key=str)
        elif t == rev.CheckInReached.TYPE:
            reached = set(working.get("reached", [])) | {p.get("check_in")}
            working["reached"] = sorted(reached, key=str)
        elif t == rev.ContactLost.TYPE:
            row["contact_lost"] = True  # ever, for the report
            working["contact_lost_now"] = True  # until restored, reopened or closed
        elif t in (rev.ContactRestored.TYPE, rev.ReintegrationClosed.TYPE,
                   rev.ReintegrationReopened.TYPE):
            working.pop("contact_lost_now", None)
        elif t == ev.PostArrivalAssistanceRecorded.TYPE:
            working["arrival_assistance"] = sorted(
                set(working.get("arrival_assistance", [])) | set(p.get("provided", [])))
        elif t == ev.RebookingScheduled.TYPE:
            working["rebookings"] = working.get("rebookings", 0) + 1
        elif t == rev.RiskRecorded.TYPE:
            row["risk_indicators"] = sorted(set(row["risk_indicators"]) | {p.get("indicator")},
                                            key=str)
        elif t == rev.SustainabilityAssessed.TYPE:
            row["sustainability_band"] = sustainability_band(
                p.get("economic", 0), p.get("social", 0), p.get("psychosocial", 0))
        elif t in (rev.PlanAgreed.TYPE, rev.PlanChanged.TYPE):
            lines = working.setdefault("lines", {})
            for line in p.get("lines", []):
                lines[line.get("line_id")] = [line.get("service"), line.get("status", "planned")]
        elif t == rev.ServiceDeliveryReported.TYPE:
            working.setdefault("lines", {})[p["line_id"]] = [p.get("service"), p.get("status")]
        row["check_ins_due"] = len(working.get("due", []))
        row["check_ins_reached"] = len(working.get("reached", []))
        row["services_delivered"] = sorted({s for s, status in working.get("lines", {}).values()
                                            if status == "delivered" and s})


# --- the report's layout ----------------------------------------------------------------

OUTCOMES = ("open", *sorted(catalogue.outcome_code(t) for t in catalogue.OUTCOME_TYPES))
IDENTIFIED = "identified_victim"


@dataclass(frozen=True)
class Spec:
    """A dimension: its SQL expression over the period's cases (``r``: rm_cases, ``f``:
    rm_report_facts, ``t``: rm_trafficking, ``l``: rm_case_links, ``rf``: the case's
    route flows), the rows always shown, and its title. A multi-valued dimension's
    expression is the case's list of values (no per-case subquery: it is evaluated once
    per case of the period)."""

    title: str
    sql: str
    fixed: tuple[str, ...] = ()
    partition: bool = True
    # A multi-valued dimension's column holds a list: "jsonb" (an array) or "array" (text[]).
    listed_as: str = ""

    def has_values(self, column: str) -> str:
        """SQL: the case has a value of this multi-valued dimension in ``column``."""
        return (f"{column} <> '[]'::jsonb" if self.listed_as == "jsonb"
                else f"cardinality({column}) > 0")

    def values(self, column: str) -> str:
        """SQL: a row per value of this multi-valued dimension in ``column``."""
        return (f"jsonb_array_elements_text({column})" if self.listed_as == "jsonb"
                else f"unnest({column})")


SPECS: dict[str, Spec] = {
    "trafficking_status": Spec(
        "Trafficking status at screening",
        "CASE WHEN f.trafficking_status IN ('ActualVictimOfTrafficking', "
        "'PossibleVictimOfTrafficking') THEN 'identified_victim' "
        "WHEN f.trafficking_status = 'NotAVictimOfTrafficking' THEN 'screened_not_victim' "
        "ELSE 'not_yet_screened' END",
        (IDENTIFIED, "screened_not_victim", "not_yet_screened")),
    "sex": Spec("Sex", "r.sex", ("female", "male", "other", "not_recorded")),
    "age_band": Spec("Age band", "r.age_category", tuple(a.value for a in AgeCategory)),
    "minor": Spec("Minors (age unknown or disputed counted as minors)",
                  "CASE WHEN r.minor THEN 'minor_or_age_unknown' ELSE 'adult' END",
                  ("minor_or_age_unknown", "adult")),
    "referral_source": Spec("Referral source", "r.referral_source",
                            (*(s.value for s in ReferralSource), "unknown")),
    "sending_mission": Spec("Sending mission", "r.sending_mission"),
    "receiving_mission": Spec("Receiving mission", "r.receiving_mission"),
    "host_country": Spec("Host country (where she was found)", "r.host_country"),
    "destination_country": Spec("Destination country", "r.destination_country"),
    "outcome": Spec("Outcome", "COALESCE(r.outcome, 'open')", OUTCOMES),
    # Her cases linked as one person's (decision 0070): a re-trafficking signal.
    "returns": Spec("Returns: persons assisted before (linked cases, counted once)",
                    "CASE WHEN l.person_key IS NULL THEN 'first_known_return' "
                    "ELSE 'repeat_returnee' END", ("first_known_return", "repeat_returnee")),
    "follow_up_reach": Spec(
        "Follow-up reach (check-ins reached of those due)",
        "CASE WHEN NOT COALESCE(f.follow_up_started, false) THEN 'not_in_follow_up' "
        "WHEN f.check_ins_due = 0 THEN 'none_due_yet' "
        "WHEN f.check_ins_reached >= f.check_ins_due THEN 'all_reached' "
        "WHEN f.check_ins_reached > 0 THEN 'some_reached' ELSE 'none_reached' END",
        ("all_reached", "some_reached", "none_reached", "none_due_yet", "not_in_follow_up")),
    "contact_lost": Spec(
        "Contact lost during follow-up",
        "CASE WHEN NOT COALESCE(f.follow_up_started, false) THEN 'not_in_follow_up' "
        "WHEN f.contact_lost THEN 'contact_lost' ELSE 'never_lost' END",
        ("contact_lost", "never_lost", "not_in_follow_up")),
    "sustainability": Spec(
        "Sustainability score band (latest assessment)",
        "COALESCE(f.sustainability_band, 'not_assessed')",
        ("low", "medium", "high", "not_assessed")),
    "recruitment_method": Spec("Recruitment method",
                               "COALESCE(t.recruitment_method, 'not_recorded')",
                               ("not_recorded",)),
    "duration_band": Spec("Duration of exploitation", "COALESCE(t.duration_band, 'not_recorded')",
                          ("not_recorded",)),
    # multi-valued: one person may count in several rows
    "assistance_on_arrival": Spec(
        "Assistance on arrival, by type (persons)",
        "COALESCE(f.working->'arrival_assistance', '[]')",
        tuple(a.value for a in PostArrivalAssistance), partition=False, listed_as="jsonb"),
    "assistance": Spec(
        "Reintegration assistance delivered, by type (persons)",
        "COALESCE(f.services_delivered, '[]')",
        tuple(s.value for s in ServiceKind), partition=False, listed_as="jsonb"),
    "risk_indicator": Spec(
        "Re-trafficking and risk indicators recorded (persons)",
        "COALESCE(f.risk_indicators, '[]')",
        tuple(i.value for i in RiskIndicator), partition=False, listed_as="jsonb"),
    "exploitation_type": Spec("Exploitation types (persons)",
                              "COALESCE(t.exploitation_types, '{}')", partition=False,
                              listed_as="array"),
    "transport_means": Spec("Means of transport (persons)", "COALESCE(t.transport_means, '{}')",
                            partition=False, listed_as="array"),
    "route_flow": Spec("Trafficking routes: country to country (persons)",
                       "COALESCE(rf.flows, '{}')", partition=False, listed_as="array"),
}

TABLE_TITLES: dict[tuple[str, ...], str] = {
    ("minor", "assistance"): "Minors × assistance delivered",
    ("minor", "outcome"): "Minors × outcome",
    ("outcome", "destination_country"): "Outcome × destination country",
}


def report_tables() -> list[Table]:
    """The tables of the report: one per dimension, then the cross-tables."""
    return [Table(d, (d,)) for d in SPECS] + [Table("_by_".join(c), c) for c in TABLE_TITLES]


# --- scope and period -------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Whose cases: every mission (None), a sending mission's referrals, a receiving
    mission's arrivals (cases handed to it), or either side of one mission."""

    side: str | None = None  # "sending" | "receiving" | "either"
    mission: str | None = None

    def sql(self) -> str:
        sending = "r.sending_mission = :mission"
        receiving = "(r.receiving_mission = :mission AND r.receiving_visible_at IS NOT NULL)"
        return {None: "true", "sending": sending, "receiving": receiving,
                "either": f"({sending} OR {receiving})"}[self.side]


@dataclass(frozen=True)
class Period:
    start: date | None = None
    end: date | None = None  # inclusive
    basis: str = "registered"  # or "closed"

    def sql(self) -> tuple[str, dict[str, Any]]:
        column = "r.registered_at" if self.basis == "registered" else "r.closed_at"
        where, params = [f"{column} IS NOT NULL"] if self.basis == "closed" else [], {}
        if self.start is not None:
            where.append(f"{column} >= :period_start")
            params["period_start"] = datetime.combine(self.start, datetime.min.time())
        if self.end is not None:
            where.append(f"{column} < :period_end")
            params["period_end"] = datetime.combine(self.end + timedelta(days=1),
                                                    datetime.min.time())
        return " AND ".join(where) or "true", params


# --- counting ----------------------------------------------------------------------------


# The period's and scope's cases, a person whose cases were linked as hers (decision
# 0070) once: by her latest case of those the period and scope name.
_CASES = """
WITH latest AS (
  SELECT DISTINCT ON (l.person_key) l.person_key, r.case_id
  FROM rm_case_links l JOIN rm_cases r ON r.case_id = l.case_id
  WHERE {where}
  ORDER BY l.person_key, r.registered_at DESC, r.case_id DESC),
flows AS (
  SELECT a.case_id, array_agg(DISTINCT a.country || '>' || b.country) AS flows
  FROM rm_trafficking_route a
  JOIN rm_trafficking_route b ON b.case_id = a.case_id AND b.seq = a.seq + 1
  WHERE a.country <> b.country GROUP BY a.case_id),
c AS MATERIALIZED (
  SELECT r.case_id, {columns}
  FROM rm_cases r
  LEFT JOIN rm_report_facts f ON f.case_id = r.case_id
  LEFT JOIN rm_trafficking t ON t.case_id = r.case_id
  LEFT JOIN rm_case_links l ON l.case_id = r.case_id
  LEFT JOIN flows rf ON rf.case_id = r.case_id
  WHERE {where} AND NOT EXISTS (SELECT 1 FROM latest x
                                WHERE x.person_key = l.person_key AND x.case_id <> r.case_id))
"""


def _count_sql(tables: list[Table], used: list[str], where: str, scope: Scope) -> str:
    """One GROUPING SETS over the cases for the single-valued dimensions (each, and each
    cross-table of them), one over every multi-valued dimension's values (each value a
    person has once; with its cross-table partners)."""
    single = [d for d in used if SPECS[d].partition]
    multi = [d for d in used if not SPECS[d].partition]
    sets = ["()", *(f"({d})" for d in single),
            *(f"({', '.join(t.dims)})" for t in tables
              if len(t.dims) > 1 and all(d in single for d in t.dims))]
    parts = [f"SELECT jsonb_strip_nulls(jsonb_build_object("
             f"{', '.join(f'{chr(39)}{d}{chr(39)}, {d}' for d in single)})) AS cell, "
             f"count(*) AS n FROM c GROUP BY GROUPING SETS ({', '.join(sets)})"]
    if multi:
        partners = {m: [d for t in tables if m in t.dims and len(t.dims) > 1
                        for d in t.dims if d != m] for m in multi}
        every = list(dict.fromkeys(p for ps in partners.values() for p in ps))
        # per case, each (dimension, value) once (UNION), and the partners of that
        # dimension's cross-tables (NULL for a dimension they are not crossed with)
        values = " UNION ".join(
            "SELECT " + ", ".join([f"'{m}' AS d", "v", *(
                f"{f'c.{p}' if p in partners[m] else 'NULL::text'} AS p_{p}" for p in every)])
            + f" FROM {SPECS[m].values(f'c.{m}')} AS v"
            for m in multi)
        msets = ", ".join(["(m.d, m.v)", *(f"(m.d, m.v, m.p_{p})" for p in every)])
        pairs = ", ".join(["m.d, m.v", *(f"'{p}', m.p_{p}" for p in every)])
        unused = " OR ".join(f"(GROUPING(m.p_{p}) = 0 AND m.p_{p} IS NULL)" for p in every)
        parts.append(
            f"SELECT jsonb_strip_nulls(jsonb_build_object({pairs})) AS cell, count(*) AS n "
            f"FROM c CROSS JOIN LATERAL ({values}) AS m "
            f"WHERE {' OR '.join(SPECS[m].has_values(f'c.{m}') for m in multi)} "
            f"GROUP BY GROUPING SETS ({msets})"
            + (f" HAVING NOT ({unused})" if every else ""))
    columns = ", ".join(f"{SPECS[d].sql} AS {d}" for d in used)
    return (_CASES.format(where=f"{where} AND {scope.sql()}", columns=columns)
            + " UNION ALL ".join(parts))


class Reports:
    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def report_counts(self, period: Period, scope: Scope
                            ) -> tuple[list[Table], dict[str, Dimension], dict[Key, int]]:
        """Every cell the report prints, counted in one statement."""
        tables = report_tables()
        used = list(dict.fromkeys(d for t in tables for d in t.dims))
        where, params = period.sql()
        params["mission"] = scope.mission
        async with self._engine.connect() as conn:
            rows = (await conn.execute(text(_count_sql(tables, used, where, scope)),
                                       params)).all()
        counts: dict[Key, int] = {}
        seen: dict[str, set[str]] = {d: set() for d in used}
        for cell, n in rows:
            values = cell if isinstance(cell, dict) else json.loads(cell)
            counts[frozenset(values.items())] = n
            for d, v in values.items():
                seen[d].add(v)
        dimensions = {
            d: Dimension(d, (*SPECS[d].fixed, *sorted(seen[d] - set(SPECS[d].fixed))),
                         SPECS[d].partition) for d in used}
        counts.setdefault(TOTAL, 0)
        return tables, dimensions, counts

    async def snapshot_counts(self, scope: Scope) -> list[tuple[str, str, str, str, int]]:
        """Open cases now: (mission, stage, minor, blocked_on, block age band) → count."""
        sql = (
            "SELECT r.sending_mission AS mission, r.stage, "
            "CASE WHEN r.minor THEN 'minor_or_age_unknown' ELSE 'adult' END AS minor, "
            "COALESCE(split_part(r.blocked_on, ':', 1), 'nothing') AS blocked_on, "
            "CASE WHEN r.blocked_since IS NULL THEN 'not_blocked' "
            "WHEN r.blocked_since > now() - interval '1 day' THEN 'under_1_day' "
            "WHEN r.blocked_since > now() - interval '7 days' THEN '1_to_7_days' "
            "WHEN r.blocked_since > now() - interval '30 days' THEN '8_to_30_days' "
            "ELSE 'over_30_days' END AS block_age, count(*) AS n "
            f"FROM rm_cases r WHERE r.outcome IS NULL AND {scope.sql()} "
            "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5")
        async with self._engine.connect() as conn:
            rows = (await conn.execute(text(sql), {"mission": scope.mission})).all()
        return [tuple(r) for r in rows]


# --- layout ------------------------------------------------------------------------------


def assemble(tables: list[Table], dimensions: dict[str, Dimension],
             protected: Protected) -> list[dict[str, Any]]:
    """Each table: its rows (every value, the fixed ones at zero too), its margins and
    its total, every cell a count or "suppressed"."""
    out = []
    for table in tables:
        def cell(values: dict[str, str]) -> dict[str, Any]:
            return {**values, "count": protected.value(frozenset(values.items()))}
        full = _combos(table.dims, dimensions)
        margins: list[dict[str, Any]] = []
        if len(table.dims) > 1:
            for d in table.dims:
                rest = tuple(x for x in table.dims if x != d)
                if dimensions[d].partition:
                    margins += [cell(v) for v in _combos(rest, dimensions)]
        entry: dict[str, Any] = {
            "name": table.name,
            "title": TABLE_TITLES.get(table.dims) or SPECS[table.dims[0]].title,
            "dimensions": list(table.dims),
            "rows": [cell(v) for v in full],
        }
        if margins:
            entry["margins"] = margins
        if all(dimensions[d].partition for d in table.dims):
            entry["total"] = protected.value(TOTAL)
        else:
            entry["note"] = "One person may count in several rows: the rows add up to no total."
        out.append(entry)
    return out


def _combos(dims: Sequence[str], dimensions: dict[str, Dimension]) -> list[dict[str, str]]:
    combos: list[dict[str, str]] = [{}]
    for d in dims:
        combos = [{**c, d: v} for c in combos for v in dimensions[d].values]
    return combos


def statistical_report(tables: list[Table], dimensions: dict[str, Dimension],
                       counts: dict[Key, int], k: int = DEFAULT_K) -> dict[str, Any]:
    """The protected report body (without period, scope and coverage)."""
    protected = protect(dimensions, tables, counts, k)
    return {
        "persons_referred": protected.value(TOTAL),
        "persons_assisted": protected.value(frozenset({("trafficking_status", IDENTIFIED)})),
        "screened_not_victim": protected.value(
            frozenset({("trafficking_status", "screened_not_victim")})),
        "withheld": protected.withheld,
        "tables": assemble(tables, dimensions, protected),
    }


__all__ = ["HIDDEN", "Period", "Reports", "Scope", "statistical_report"]
