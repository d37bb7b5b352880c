"""The HTTP API. This first cut serves health; the user endpoints arrive with issue 6."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client


def create_app(engine: AsyncEngine, temporal: Client) -> FastAPI:
    app = FastAPI(title="homeward", version="0.1.0")

    @app.get("/health", tags=["operations"])
    async def health() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"unavailable: {type(exc).__name__}"
        try:
            await temporal.service_client.check_health()
            checks["temporal"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["temporal"] = f"unavailable: {type(exc).__name__}"
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", "checks": checks},
                            status_code=200 if healthy else 503)

    return app
