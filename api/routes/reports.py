"""The statistical report and the caseload snapshot (issue 15, decision 0065): counts only,
over the caller's scope (``api.access.report_scope``), small cells suppressed consistently
across every table of one report (``domain.disclosure``)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from api.access import Action, Decision, ReportScope, report_scope
from api.deps import Caller, mark, now, require, services
from api.errors import ApiError
from api.report_html import render_report, render_snapshot
from domain.disclosure import DEFAULT_K, HIDDEN, TOTAL, Dimension, Table, protect
from store.reports import Period, Reports, Scope, statistical_report

router = APIRouter(tags=["reports"])

MissionQuery = Annotated[str | None, Query(
    pattern=r"^[a-z0-9][a-z0-9._-]{1,62}$",
    description="One mission's caseload (analysts; a mission reads only its own).")]


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
        "never referred are not here. "
        f"Cells counting 1 to {k - 1} persons read \"suppressed\", and so do other cells "
        "chosen so that no suppressed cell can be worked out from the totals or from "
        "another table of this report; a report over fewer than "
        f"{k} persons shows no figure. Zero cells are shown. Every age band (minors and "
        "unknown or disputed ages among them), sex and outcome is listed, at 0 when no "
        "person has it.")


def _scope(caller: Any, action: Action, mission: str | None) -> ReportScope:
    scope = report_scope(caller, action, mission)
    if isinstance(scope, Decision):
        require(scope)
    assert isinstance(scope, ReportScope)
    return scope


def _period(start: date | None, end: date | None, basis: str) -> Period:
    if start is not None and end is not None and end < start:
        raise ApiError(422, "invalid_period", "to is before from")
    return Period(start, end, basis)


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


_FORMATS = {200: {"content": {"application/json": {}, "application/zip": {},
                              "text/csv": {}, "text/html": {}},
                  "description": "The report as JSON, a zip of CSV files (or one CSV with "
                                 "`table`), or a printable HTML page."}}


@router.get("/reports/statistical", responses=_FORMATS,  # type: ignore[arg-type]
            summary="The statistical report over a period: tables, cross-tables, routes")
async def statistical(request: Request, response: Response, caller: Caller,
                      from_: Annotated[date | None, Query(alias="from")] = None,
                      to: date | None = None,
                      basis: Literal["registered", "closed"] = "registered",
                      mission: MissionQuery = None,
                      format: Literal["json", "csv", "html"] = "json",  # noqa: A002
                      table: Annotated[str | None, Query(pattern=r"^[a-z_]{1,80}$")] = None
                      ) -> Response:
    mark(request, Action.REPORT_READ)
    scope = _scope(caller, Action.REPORT_READ, mission)
    period = _period(from_, to, basis)
    svc = services(request)
    lag = await svc.read_models_lag(request, response)
    report = {**await build_report(svc.engine, period, scope), "generated_at": now()}
    headers = {k: v for k, v in response.headers.items() if k.lower().startswith("x-read")}
    if format == "csv":
        body, media, name = report_csv(report, table)
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return Response(body, media_type=media, headers=headers)
    if format == "html":
        return HTMLResponse(render_report(report, lag), headers=headers)
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    return JSONResponse(jsonable_encoder(report), headers=headers)


SNAPSHOT_DIMS = ("mission", "stage", "minor", "blocked_on", "block_age")
SNAPSHOT_TABLES = (("mission", "stage"), ("minor", "stage"), ("blocked_on", "block_age"))


@router.get("/reports/snapshot", responses=_FORMATS,  # type: ignore[arg-type]
            summary="Open cases now: by stage, what blocks them and for how long, minors")
async def snapshot(request: Request, response: Response, caller: Caller,
                   mission: MissionQuery = None,
                   format: Literal["json", "html"] = "json"  # noqa: A002
                   ) -> Response:
    mark(request, Action.SNAPSHOT_READ)
    scope = _scope(caller, Action.SNAPSHOT_READ, mission)
    svc = services(request)
    lag = await svc.read_models_lag(request, response)
    rows = await Reports(svc.engine).snapshot_counts(Scope(scope.side, scope.mission))
    body = {**snapshot_body(rows, scope), "generated_at": now()}
    headers = {k: v for k, v in response.headers.items() if k.lower().startswith("x-read")}
    if format == "html":
        return HTMLResponse(render_snapshot(body, lag), headers=headers)
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    return JSONResponse(jsonable_encoder(body), headers=headers)


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
            "name": t.name, "dimensions": list(t.dims),
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
