"""``GET /metrics``: the API's Prometheus series (decision 0060).

Three sources, one text:

- HTTP requests, by prometheus-fastapi-instrumentator: ``http_requests_total``,
  ``http_request_duration_seconds`` ... labelled by the route's template
  (``/cases/{case_id}``), never the raw path; a path no route matches is ``none``.
- homeward's own series (``DomainMetrics``), counted from the read models at scrape time:
  codes from the domain's closed vocabularies as labels, never a case id, an organisation
  or a person.
- the Temporal SDK's series of this process's client (``temporal_*``), which the SDK's own
  Prometheus exporter serves on a loopback port (``temporal_metrics_url``): appended as
  they are.

``HOMEWARD_METRICS_TOKEN``, when set, is the bearer token a scraper must send.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import error_response
from domain.journey.vocabulary import EscalationReason, Stage, TaskKind
from domain.reintegration.vocabulary import ReintegrationTaskKind
from store.projections import SKIPPED_UNKNOWN, ProjectionRunner

if TYPE_CHECKING:
    from api.app import ApiServices

log = structlog.get_logger("homeward.api")

CACHE_SECONDS = 5.0
"""A scrape within this long of the last one is answered from its counts."""
SDK_METRICS_TIMEOUT_SECONDS = 2.0
OTHER = "other"  # a stored code this version does not know (a newer one wrote it)

OPEN_STAGES = tuple(s.value for s in Stage if s is not Stage.CLOSED)
TASK_KINDS = tuple(sorted({k.value for k in TaskKind} | {k.value for k in ReintegrationTaskKind}))
ESCALATION_REASONS = tuple(r.value for r in EscalationReason)

_OPEN_CASES = text("""
    SELECT stage, count(*) FROM rm_cases WHERE outcome IS NULL GROUP BY stage
""")
_WAITING = text("""
    SELECT count(*) FILTER (WHERE working->>'hold' IS NOT NULL),
           COALESCE(EXTRACT(EPOCH FROM now() - min((working->>'hold')::timestamptz)), 0),
           count(*) FILTER (WHERE working->>'rebooking' IS NOT NULL)
    FROM rm_cases WHERE outcome IS NULL
""")
_ESCALATIONS = text("""
    SELECT working->'escalation'->>0, count(*) FROM rm_cases
    WHERE outcome IS NULL AND working->'escalation' IS NOT NULL GROUP BY 1
""")
_TASKS = text("""
    SELECT kind, count(*), count(*) FILTER (WHERE due_at < now())
    FROM rm_tasks WHERE status = 'open' GROUP BY kind
""")
# Folded by the report's read model (store/reports.py ReportFactsProjection).
_FROM_REPORT_FACTS = text("""
    SELECT COALESCE(sum((working->>'rebookings')::int), 0),
           count(*) FILTER (WHERE working ? 'contact_lost_now')
    FROM rm_report_facts
""")



@dataclass
class Counts:
    """One reading of the read models: codes and numbers only."""

    open_cases: dict[str, int] = field(default_factory=dict)
    border_holds: int = 0
    oldest_hold_seconds: float = 0.0
    awaiting_rebooking: int = 0
    escalations: dict[str, int] = field(default_factory=dict)
    open_tasks: dict[str, int] = field(default_factory=dict)
    overdue_tasks: dict[str, int] = field(default_factory=dict)
    rebookings: int = 0
    contact_lost: int = 0
    read_model_lag: int = 0


def _closed(rows: Iterable[tuple[str | None, int]], vocabulary: tuple[str, ...]) -> dict[str, int]:
    """Counts by code, every code of the vocabulary present (zeros are shown); a code
    outside it is counted as ``other``, so that a label never carries a stored string."""
    counts = dict.fromkeys(vocabulary, 0)
    for code, n in rows:
        key = code if code in counts else OTHER
        counts[key] = counts.get(key, 0) + int(n)
    return counts


class DomainMetrics:
    """A prometheus_client collector of homeward's series. ``refresh`` (async, called by
    the scrape before the text is rendered) reads the read models at most once per
    ``ttl``; ``collect`` renders the last reading."""

    def __init__(self, engine: AsyncEngine, projections: ProjectionRunner,
                 ttl: float = CACHE_SECONDS):
        self._engine = engine
        self._projections = projections
        self.ttl = ttl
        self._counts: Counts | None = None
        self._read_at = float("-inf")
        self._took = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at < self.ttl:
                return
            started = time.monotonic()
            try:
                self._counts = await self._read()
            except Exception as exc:  # noqa: BLE001 - the scrape still answers, without them
                log.warning("domain metrics unavailable", error_type=type(exc).__name__)
                self._counts = None
            self._read_at = time.monotonic()
            self._took = self._read_at - started

    async def _read(self) -> Counts:
        c = Counts()
        async with self._engine.connect() as conn:
            c.open_cases = _closed((await conn.execute(_OPEN_CASES)).all(), OPEN_STAGES)
            c.border_holds, c.oldest_hold_seconds, c.awaiting_rebooking = (
                await conn.execute(_WAITING)).one()
            c.escalations = _closed((await conn.execute(_ESCALATIONS)).all(),
                                    ESCALATION_REASONS)
            tasks = (await conn.execute(_TASKS)).all()
            c.open_tasks = _closed(((kind, n) for kind, n, _ in tasks), TASK_KINDS)
            c.overdue_tasks = _closed(((kind, n) for kind, _, n in tasks), TASK_KINDS)
            c.rebookings, c.contact_lost = (await conn.execute(_FROM_REPORT_FACTS)).one()
        c.read_model_lag = await self._projections.lag()
        return c

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "homeward_domain_metrics_up",
            "1 when the homeward_ series below were read from the read models at this "
            "scrape (or within the cache's seconds), 0 when the database did not answer")
        up.add_metric([], 0 if self._counts is None else 1)
        yield up
        took = GaugeMetricFamily("homeward_domain_metrics_read_seconds",
                                 "How long the last reading of the read models took")
        took.add_metric([], self._took)
        yield took
        skipped = CounterMetricFamily(
            "homeward_events_skipped_unknown",
            "Events of a type this version's catalogue does not hold, skipped by a reader "
            "in this process (a newer version wrote them)", labels=["reader"])
        by_reader: dict[str, int] = {}
        for (reader, _type), n in SKIPPED_UNKNOWN.items():
            by_reader[reader] = by_reader.get(reader, 0) + n
        for reader, n in sorted(by_reader.items()):
            skipped.add_metric([reader], n)
        yield skipped
        c = self._counts
        if c is None:
            return
        yield _by("homeward_cases_open", "Open cases by journey stage", "stage",
                  c.open_cases)
        yield _gauge("homeward_border_holds_open", "Cases held at a border now",
                     c.border_holds)
        yield _gauge("homeward_border_hold_oldest_age_seconds",
                     "How long the longest border hold open now has lasted (0: none)",
                     float(c.oldest_hold_seconds))
        yield _gauge("homeward_cases_awaiting_rebooking",
                     "Open cases whose journey failed and waits for a rebooking",
                     c.awaiting_rebooking)
        rebookings = CounterMetricFamily(
            "homeward_rebookings", "Rebookings scheduled since the first event (a failed "
            "leg or a refused entry)")
        rebookings.add_metric([], c.rebookings)
        yield rebookings
        yield _by("homeward_escalations_open", "Open cases escalated and not resolved, by "
                  "reason", "reason", c.escalations)
        yield _by("homeward_tasks_open", "Open human tasks by kind", "kind", c.open_tasks)
        yield _by("homeward_tasks_overdue", "Open human tasks past their due time, by kind",
                  "kind", c.overdue_tasks)
        yield _gauge("homeward_reintegration_contact_lost",
                     "Reintegration cases whose contact with her is lost now",
                     c.contact_lost)
        yield _gauge("homeward_read_model_lag_events",
                     "Events the slowest read model has not applied yet (counted up to "
                     "10000)", c.read_model_lag)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    metric = GaugeMetricFamily(name, documentation)
    metric.add_metric([], value)
    return metric


def _by(name: str, documentation: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    metric = GaugeMetricFamily(name, documentation, labels=[label])
    for code, n in counts.items():
        metric.add_metric([code], n)
    return metric


def _authorised(request: Request, token: str) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode())


async def _sdk_metrics(url: str) -> bytes:
    """The Temporal SDK exporter's text, or nothing (logged) when it does not answer."""
    try:
        async with httpx.AsyncClient(timeout=SDK_METRICS_TIMEOUT_SECONDS) as http:
            response = await http.get(url)
            response.raise_for_status()
            return response.content
    except httpx.HTTPError as exc:
        log.warning("temporal sdk metrics unavailable", error_type=type(exc).__name__)
        return b""


def install_metrics(app: FastAPI, services: ApiServices) -> DomainMetrics:
    """Instrument ``app``'s requests and add ``GET /metrics`` (outside the OpenAPI
    contract: it is for Prometheus). Each app has its own registry."""
    assert services.projections is not None
    disable_created_metrics()  # no *_created twin of every counter: Prometheus ignores them
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    Instrumentator(registry=registry, should_group_untemplated=True,
                   excluded_handlers=["^/metrics$"]).instrument(app)
    domain = DomainMetrics(services.engine, services.projections)
    registry.register(domain)
    app.state.domain_metrics = domain

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        token = services.metrics_token
        if token and not _authorised(request, token):
            return error_response(request, 401, "unauthenticated",
                                  "/metrics needs the bearer token HOMEWARD_METRICS_TOKEN",
                                  headers={"WWW-Authenticate": "Bearer"})
        await domain.refresh()
        body = generate_latest(registry)
        if services.temporal_metrics_url:
            body += await _sdk_metrics(services.temporal_metrics_url)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return domain
