"""Liveness and readiness (decision 0060).

- ``GET /health/live``: the process answers; nothing else is asked, so a database or
  Temporal outage never gets a healthy API restarted.
- ``GET /health/ready`` (and ``GET /health``, the same answer, kept for its callers): the
  database answers, Temporal answers, and the database schema is at the migrations' head
  this code was built with. 503 ``degraded`` names each check that failed, with the error's
  type only (an error's text may quote data).

No check says anything about a case or a person. Every check is bounded by
``CHECK_TIMEOUT_SECONDS`` and they run at once, so a probe gets its answer in seconds even
when a dependency hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import cache
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from api.app import ApiServices

CHECK_TIMEOUT_SECONDS = 3.0
OK = "ok"


@cache
def migration_head() -> str:
    """The newest Alembic revision of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    from store.database import MIGRATIONS_DIR

    heads = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    return heads[0] if len(heads) == 1 else ",".join(sorted(heads))


async def schema_revision(conn: AsyncConnection) -> str | None:
    """The Alembic revision the database is at; None before the first migration."""
    if (await conn.execute(text("SELECT to_regclass('alembic_version')"))).scalar():
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    return None


async def readiness(services: ApiServices) -> dict[str, str]:
    """Each check's answer: ``ok``, ``unavailable: <error type>`` or, for the schema,
    ``behind: database at R, code at H``."""

    async def database() -> str:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return OK

    async def migrations() -> str:
        async with services.engine.connect() as conn:
            revision = await schema_revision(conn)
        head = migration_head()
        if revision == head:
            return OK
        return f"behind: database at {revision or 'none'}, code at {head}"

    async def temporal() -> str:
        await services.temporal.service_client.check_health()
        return OK

    names = ("database", "temporal", "migrations")
    answers = await asyncio.gather(*(_bounded(check) for check in (database, temporal,
                                                                    migrations)))
    return dict(zip(names, answers, strict=True))


async def _bounded(check: Callable[[], Awaitable[str]]) -> str:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"unavailable: no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # noqa: BLE001 - reported by type, never raised
        return f"unavailable: {type(exc).__name__}"


def health_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["health"])

    async def ready() -> JSONResponse:
        checks = await readiness(services)
        healthy = all(answer == OK for answer in checks.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", "checks": checks},
                            status_code=200 if healthy else 503)

    # /health is the API's documented public operation; the two probes are for
    # orchestrators and stay out of the contract (decision 0060).
    router.add_api_route("/health", ready, methods=["GET"], name="health")
    router.add_api_route("/health/ready", ready, methods=["GET"], include_in_schema=False,
                         name="health_ready")

    @router.get("/health/live", include_in_schema=False)
    async def live() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return router
