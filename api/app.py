"""The HTTP API: one FastAPI app, built from the services the composition root hands it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog
from fastapi import FastAPI, Request, Response
from fastapi_offline import FastAPIOffline
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.converter import PayloadCodec

from api.auth import authenticate
from api.body_limit import BodySizeLimit
from api.codec import CodecForbidden, codec_router
from api.codec_session import CODEC_ROLES, codec_credentials, codec_session_router
from api.errors import (
    RETRY_AFTER_SECONDS,
    database_unavailable,
    error_response,
    install_error_handlers,
    internal_error,
    log_unexpected,
)
from api.health import health_router
from api.metrics import install_metrics
from api.openapi import install_openapi, operation_id
from api.request_ids import RequestIdMiddleware
from api.routes import case_packages as case_package_routes
from api.routes import cases, follow_up, operations, person, tasks
from api.routes import links as link_routes
from api.routes import reports as report_routes
from api.routes import trafficking as trafficking_routes
from api.routes import transfers as transfer_routes
from api.service.calls import TEMPORAL_DEADLINE_SECONDS
from api.service.cases import CaseService
from api.service.referrals import ReferralService
from api.service.tasks import TaskService
from api.shedding import DEFAULT_MAX_INFLIGHT, LoadShedding
from store.accounts import Accounts, AuthenticationFailed, Principal
from store.audit import AuditEntry, AuditLog
from store.errors import unavailable
from store.event_store import EventStore
from store.projections import ProjectionRunner
from store.read_models import ReadModels, all_projections
from store.vault import PersonVault

log = structlog.get_logger("homeward.api")


@dataclass
class ApiServices:
    engine: AsyncEngine
    store: EventStore
    temporal: Client
    accounts: Accounts
    vault: PersonVault
    payload_codec: PayloadCodec
    task_queue: str
    codec_cors_origins: list[str]
    allow_journey_config: bool = False  # demos and tests: tiny durations per referral
    travel_adapter: str = "simulated"
    max_inflight: int = DEFAULT_MAX_INFLIGHT  # requests in progress before 503 overloaded
    temporal_deadline: float = TEMPORAL_DEADLINE_SECONDS  # one Temporal call, at most
    read_models: ReadModels | None = None
    audit: AuditLog | None = None
    projections: ProjectionRunner | None = None
    # The use cases the routes call (decision 0048).
    cases: CaseService = field(init=False)
    referrals: ReferralService = field(init=False)
    tasks: TaskService = field(init=False)
    # Whether the app runs its own projector while it serves (its lifespan); off where
    # the process runs one already (the dev stack).
    own_projector: bool = True
    # GET /metrics (decision 0060): the bearer token a scraper must send (None: open), and
    # where this process's Temporal SDK exporter serves its temporal_* series.
    metrics_token: str | None = None
    temporal_metrics_url: str | None = None
    _catching_up: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.read_models = self.read_models or ReadModels(self.engine)
        self.audit = self.audit or AuditLog(self.engine)
        self.projections = self.projections or ProjectionRunner(self.engine, all_projections())
        self.cases = CaseService(self.store, self.vault, self.temporal,
                                 self.temporal_deadline)
        self.referrals = ReferralService(
            self.store, self.vault, self.accounts, self.temporal, self.task_queue,
            allow_journey_config=self.allow_journey_config,
            travel_adapter=self.travel_adapter, temporal_deadline=self.temporal_deadline)
        self.tasks = TaskService(self.cases, self.temporal, self.read_models, self.catch_up)

    async def catch_up(self) -> None:
        """Bring the read models up to the newest event now, for a request that must see
        a fact just written (see ``read_models_lag``); one catch-up at a time in this
        process, the requests that ask meanwhile wait for it and share it."""
        assert self.projections is not None
        async with self._catching_up:
            try:
                await self.projections.catch_up()
            except Exception as exc:  # noqa: BLE001 - a lagging answer beats no answer
                log.error("read model catch-up failed", error_type=type(exc).__name__)

    async def read_models_lag(self, request: Request, response: Response) -> int | None:
        """Before an answer read from the read models: how many events they have not
        applied yet (0: current), said in the ``X-Read-Model-Lag`` header. Nothing is
        caught up inline: the projector keeps the read models current. A request that
        must show the caller's own write sends ``X-Read-Model-Max-Lag: 0`` (or another
        bound): when the read models lag more, they are caught up first (decision 0052),
        again until they are within the bound or ``MAX_LAG_WAIT_SECONDS`` have passed: a
        catch-up stops below the oldest write transaction still in flight anywhere in the
        database (decision 0051), so one pass may end short of a write just committed.
        None (and no header) when the lag cannot be read."""
        assert self.projections is not None
        try:
            lag = await self.projections.lag()
            bound = _max_lag(request)
            if bound is not None and lag > bound:
                loop = asyncio.get_running_loop()
                give_up = loop.time() + MAX_LAG_WAIT_SECONDS
                while True:
                    await self.catch_up()
                    lag = await self.projections.lag()
                    if lag <= bound or loop.time() > give_up:
                        break
                    await asyncio.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - the list is still answered
            log.warning("read model lag unknown", error_type=type(exc).__name__)
            return None
        response.headers[READ_MODEL_LAG] = str(lag)
        return lag

    async def run_projector(self, stop: asyncio.Event) -> int:
        """The projector loop over this API's engine (the app runs it for its lifetime,
        ``create_app``): the read models stay current wherever the API runs."""
        assert self.projections is not None
        return await self.projections.run(stop)


READ_MODEL_LAG = "X-Read-Model-Lag"
MAX_LAG_WAIT_SECONDS = 5.0
READ_MODEL_MAX_LAG = "X-Read-Model-Max-Lag"


def _max_lag(request: Request) -> int | None:
    """The request's ``X-Read-Model-Max-Lag``: a whole number of events, else ignored."""
    value = request.headers.get(READ_MODEL_MAX_LAG, "").strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


MAX_BODY_BYTES = 8 * 2**20  # a few photos at most


def create_app(services: ApiServices) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        """While the app serves, its projector keeps the read models current (beside the
        worker's: the checkpoint locks serialise them), so that lists never catch up
        inline. A server started without its lifespan relies on another projector."""
        stop = asyncio.Event()
        # Registrations an earlier process left half done are finished or undone now and
        # every few minutes, not only when a new registration comes in (decision 0054).
        background = [asyncio.create_task(services.referrals.run_repairs(stop),
                                          name="api-registration-repair")]
        if services.own_projector:
            background.append(asyncio.create_task(services.run_projector(stop),
                                                  name="api-projector"))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*background)

    # Swagger UI (/docs) and ReDoc (/redoc) from assets the API serves itself (the
    # fastapi-offline package's, under /docs/assets): field missions work offline.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="homeward",
        version="0.1.0",
        description="Assisted return and reintegration of trafficked persons. "
        "Every endpoint but /health needs `Authorization: Bearer <token>`. Every error is "
        "an RFC 9457 problem (`application/problem+json`) with a machine-readable `code` "
        "and the `request_id` to quote.",
        static_url="/docs/assets",
        generate_unique_id_function=operation_id,
        swagger_ui_parameters={"displayOperationId": True},
    )
    app.state.services = services

    @app.middleware("http")
    async def audit_case_access(request: Request, call_next):
        """Every request that marked itself (``api.deps.mark``) is recorded, allowed or
        refused. No record, no answer: if the audit cannot be written, the response is
        withheld (503).

        An unexpected error is answered here, not re-raised: the server would log the
        exception's text, and that may quote data (a database error quotes the row it
        refused). Its type, where it was raised and the request id find it."""
        try:
            response = await call_next(request)
            status = response.status_code
        except Exception as exc:
            if unavailable(exc):  # a fault a retry cures: 503, never 500
                log.warning("database unavailable", error_type=type(exc).__name__)
                await _record(request, 503)
                return database_unavailable(request)
            log_unexpected(request, exc)
            await _record(request, 500)
            return internal_error(request)
        if not await _record(request, status):
            return error_response(request, 503, "audit_unavailable",
                                  "the request could not be audited, so it is not answered; "
                                  "try again", retry_after=RETRY_AFTER_SECONDS)
        return response

    async def _record(request: Request, status: int) -> bool:
        audit_mark = getattr(request.state, "audit", None)
        if audit_mark is None:
            return True
        who = getattr(request.state, "principal", None)
        route = request.scope.get("route")
        try:
            await services.audit.record(AuditEntry(
                request_id=getattr(request.state, "request_id", "") or "",
                user_id=who.user_id if who else None, org_id=who.org_id if who else None,
                role=who.role.value if who else None, method=request.method,
                route=getattr(route, "path", request.url.path), action=audit_mark.action,
                case_id=audit_mark.case_id, task_id=audit_mark.task_id, status=status))
            return True
        except Exception as exc:  # noqa: BLE001 - reported, and the answer withheld
            log.error("audit write failed", error_type=type(exc).__name__)
            return False

    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(LoadShedding, max_inflight=services.max_inflight)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)

    async def operator_only(request: Request) -> Principal | None:
        credentials = codec_credentials(request)
        if credentials is None:
            return None
        try:
            principal = await authenticate(services.accounts, request, credentials)
        except AuthenticationFailed:
            return None
        if principal.role not in CODEC_ROLES:
            raise CodecForbidden("only operators and administrators see decoded payloads")
        return principal

    app.include_router(
        codec_router(services.payload_codec, operator_only, services.codec_cors_origins)
    )
    app.include_router(codec_session_router(services.accounts))

    for module in (cases, person, tasks, operations, follow_up):
        app.include_router(module.router)
    app.include_router(trafficking_routes.router)
    app.include_router(report_routes.router)
    app.include_router(case_package_routes.router)
    app.include_router(transfer_routes.router)
    app.include_router(link_routes.router)

    app.include_router(health_router(services))
    install_metrics(app, services)

    install_openapi(app)
    return app
