"""The HTTP API: one FastAPI app, built from the services the composition root hands it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.converter import PayloadCodec

from api.auth import make_authenticator
from api.codec import codec_router
from api.errors import install_error_handlers
from api.request_ids import RequestIdMiddleware
from store.accounts import Accounts, Principal, UserRole
from store.event_store import EventStore
from store.vault import PersonVault


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


CODEC_ROLES = frozenset({UserRole.OPERATOR, UserRole.ADMINISTRATOR})


def create_app(services: ApiServices) -> FastAPI:
    app = FastAPI(
        title="homeward",
        version="0.1.0",
        description="Assisted return and reintegration of trafficked persons. "
        "Every endpoint but /health needs `Authorization: Bearer <token>`.",
    )
    app.state.services = services
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    authenticate = make_authenticator(services.accounts)

    async def operator_only(request: Request) -> Principal | None:
        principal = await authenticate(request)
        return principal if principal is not None and principal.role in CODEC_ROLES else None

    app.include_router(
        codec_router(services.payload_codec, operator_only, services.codec_cors_origins)
    )

    @app.get("/health", tags=["operations"])
    async def health() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            async with services.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"unavailable: {type(exc).__name__}"
        try:
            await services.temporal.service_client.check_health()
            checks["temporal"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["temporal"] = f"unavailable: {type(exc).__name__}"
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", "checks": checks},
                            status_code=200 if healthy else 503)

    return app
