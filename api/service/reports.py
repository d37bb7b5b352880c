"""The statistical report and the caseload snapshot as the routes answer them (issue 15,
decision 0065): the report's body, its coverage statement, its CSV files, and the
snapshot's tables, suppressed by ``domain.disclosure``."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from api.access import ReportScope
from api.errors import ApiError
from domain.disclosure import DEFAULT_K, HIDDEN, TOTAL, Dimension, Table, protect
from store.reports import Period, Reports, Scope, statistical_report


def coverage(period: Period, scope: ReportScope, k: int) -> str:
    """Whom the figures cover and whom not, the period and the suppression rule."""
    whose = {None: "every mission of the programme",
             "sending": f"the referrals of {scope.mission}",
             "receiving": f"the cases handed to {scope.mission} (arrivals and follow-up)",
             "either": f"the cases {scope.mission} referred or received"}[scope.side]
    basis = "registered" if period.basis == "registered" else "closed"
    when = (f"{basis} from {period.start or 'the start'} to {period.end or 'today'} "
            "inclusive")
    return (
        f"These figures count persons referred to this programme, in {whose}, {when}. "
        "Every referred person is counted, also those who declined assistance, did not "
        "return, took another pathway or went missing; only persons identified as victims "
        "(actual or possible) at screening are counted as assisted, and persons screened "
        "as not victims are their own row. They are not trafficking statistics: persons "
        "never referred are not here. A person whose cases were linked as hers (assisted "
        "before: a repeat returnee) is counted once, by her latest case here. "
        f"Cells counting 1 to {k - 1} persons read \"suppressed\", and so do other cells "
        "chosen so that no suppressed cell can be worked out from the totals or from "
        "another table of this report; a report over fewer than "
        f"{k} persons shows no figure. Zero cells are shown. Every age band (minors and "
        "unknown or disputed ages among them), sex and outcome is listed, at 0 when no "
        "person has it.")


async def build_report(engine: Any, period: Period, scope: ReportScope,
                       k: int = DEFAULT_K) -> dict[str, Any]:
    tables, dimensions, counts = await Reports(engine).report_counts(
        period, Scope(scope.side, scope.mission))
    return {
        "title": "Statistical report",
        "period": {"from": period.start, "to": period.end, "basis": period.basis},
        "scope": {"missions": "all" if scope.side is None else scope.mission,
                  "side": scope.side},
        "coverage": coverage(period, scope, k),
        "suppression": {"k": k, "hidden_reads": HIDDEN},
        **statistical_report(tables, dimensions, counts, k),
    }


def report_csv(report: dict[str, Any], table: str | None) -> tuple[bytes, str, str]:
    """One CSV (``table``) or a zip with one CSV per table, and the coverage."""
    files = {}
    for t in report["tables"]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([*t["dimensions"], "count"])
        for row in [*t["rows"], *t.get("margins", [])]:
            writer.writerow([row.get(d, "all") for d in t["dimensions"]] + [row["count"]])
        if "total" in t:
            writer.writerow(["all"] * len(t["dimensions"]) + [t["total"]])
        files[t["name"]] = out.getvalue()
    if table is not None:
        if table not in files:
            raise ApiError(422, "unknown_table",
                           f"no table {table!r}; the tables: {', '.join(files)}")
        return files[table].encode(), "text/csv; charset=utf-8", f"{table}.csv"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("coverage.txt", report["coverage"] + "\n")
        for name, body in files.items():
            zf.writestr(f"{name}.csv", body)
    return buffer.getvalue(), "application/zip", "statistical-report.zip"


SNAPSHOT_DIMS = ("mission", "stage", "minor", "blocked_on", "block_age")
SNAPSHOT_TABLES = {
    ("mission", "stage"): "Open cases by sending mission and stage",
    ("minor", "stage"): "Open cases of minors and adults by stage",
    ("blocked_on", "block_age"): "What open cases wait for, and for how long",
}


def snapshot_body(rows: list[tuple], scope: ReportScope) -> dict[str, Any]:
    """Open cases by mission × stage, minor × stage and blocked-on × age of the block.
    Suppressed like the report for analysts; counted plainly for the mission's own staff
    and operators, who may list the same cases one by one."""
    counts: dict[frozenset, int] = {}
    values: dict[str, set[str]] = {d: set() for d in SNAPSHOT_DIMS}
    for *vals, n in rows:
        cell = dict(zip(SNAPSHOT_DIMS, vals, strict=True))
        for d, v in cell.items():
            values[d].add(v)
        for dims in ((), *((d,) for d in SNAPSHOT_DIMS), *SNAPSHOT_TABLES):
            k = frozenset((d, cell[d]) for d in dims)
            counts[k] = counts.get(k, 0) + n
    values["minor"] |= {"minor_or_age_unknown", "adult"}
    order = {"minor": ["minor_or_age_unknown", "adult"],
             "block_age": ["not_blocked", "under_1_day", "1_to_7_days", "8_to_30_days",
                           "over_30_days"]}
    dimensions = {d: Dimension(d, tuple(order.get(d, []) + sorted(values[d] - set(
        order.get(d, []))))) for d in SNAPSHOT_DIMS}
    tables = [Table("_by_".join(t), t) for t in SNAPSHOT_TABLES]
    protected = protect(dimensions, tables, counts, DEFAULT_K if scope.suppressed else 1)
    out_tables = []
    for t in tables:
        a, b = t.dims
        out_tables.append({
            "name": t.name, "title": SNAPSHOT_TABLES[t.dims], "dimensions": list(t.dims),
            "rows": [{a: x, b: y, "count": protected.value(frozenset({(a, x), (b, y)}))}
                     for x in dimensions[a].values for y in dimensions[b].values],
            "margins": [{a: x, "count": protected.value(frozenset({(a, x)}))}
                        for x in dimensions[a].values]
            + [{b: y, "count": protected.value(frozenset({(b, y)}))}
               for y in dimensions[b].values],
            "total": protected.value(TOTAL)})
    return {"title": "Caseload snapshot", "open_cases": protected.value(TOTAL),
            "scope": {"missions": "all" if scope.side is None else scope.mission,
                      "side": scope.side},
            "suppressed": scope.suppressed, "tables": out_tables}
