"""The statistical report and the caseload snapshot (issue 15, decision 0065): counts only,
over the caller's scope (``api.access.report_scope``), small cells suppressed consistently
across every table of one report (``domain.disclosure``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse

from api.access import Action, Decision, ReportScope, report_scope
from api.deps import Caller, mark, now, require, services
from api.errors import ApiError
from api.report_html import render_report, render_snapshot
from api.schemas import SnapshotOut, StatisticalReportOut
from api.service.reports import build_report, report_csv, snapshot_body
from store.reports import Period, Reports, Scope

router = APIRouter(tags=["reports"])

MissionQuery = Annotated[str | None, Query(
    pattern=r"^[a-z0-9][a-z0-9._-]{1,62}$",
    description="One mission's caseload (analysts; a mission reads only its own).")]


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


_REPORT_FORMATS = {200: {
    "model": StatisticalReportOut,
    "content": {"application/zip": {}, "text/csv": {}, "text/html": {}},
    "description": "The report as JSON (`format=json`), a zip of CSV files (or one CSV "
                   "with `table`), or a printable HTML page."}}
_SNAPSHOT_FORMATS = {200: {
    "model": SnapshotOut, "content": {"text/html": {}},
    "description": "The snapshot as JSON (`format=json`) or a printable HTML page."}}


@router.get("/reports/statistical", responses=_REPORT_FORMATS,  # type: ignore[arg-type]
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
    return JSONResponse(jsonable_encoder(report), headers=headers)


@router.get("/reports/snapshot", responses=_SNAPSHOT_FORMATS,  # type: ignore[arg-type]
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
    return JSONResponse(jsonable_encoder(body), headers=headers)
