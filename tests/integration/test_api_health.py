"""Liveness and readiness (decision 0060): live answers whatever the dependencies do;
ready (and /health) is 503 naming the check that failed when the database is unreachable
or its schema is behind the code's migrations; neither says anything about a case."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import httpx
import pytest
from api_without_temporal import services_without_temporal
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.health import migration_head
from store.database import create_engine


class HealthyTemporal:
    """A Temporal client whose health check passes (the real one: the e2e and dev stack
    tests)."""

    def __init__(self) -> None:
        async def check_health() -> bool:
            return True

        self.service_client = SimpleNamespace(check_health=check_health)


def _client(engine: AsyncEngine, temporal=None) -> httpx.AsyncClient:
    services = services_without_temporal(engine, own_projector=False)
    services.temporal = temporal or HealthyTemporal()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                             base_url="http://homeward.test")


async def test_ready_when_database_temporal_and_migrations_are(engine: AsyncEngine):
    async with _client(engine) as http:
        for path in ("/health/ready", "/health"):
            response = await http.get(path)
            assert response.status_code == 200, response.text
            assert response.json() == {"status": "ok", "checks": {
                "database": "ok", "temporal": "ok", "migrations": "ok"}}
        assert (await http.get("/health/live")).json() == {"status": "ok"}


@pytest.fixture
async def unreachable_engine():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    engine = create_engine(f"postgresql+asyncpg://homeward@127.0.0.1:{port}/gone")
    yield engine
    await engine.dispose()


async def test_not_ready_but_live_when_the_database_is_unreachable(unreachable_engine):
    async with _client(unreachable_engine) as http:
        live = await http.get("/health/live")
        assert live.status_code == 200
        for path in ("/health/ready", "/health"):
            response = await http.get(path)
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["status"] == "degraded"
            assert body["checks"]["database"] == "unavailable: ConnectionRefusedError"
            assert body["checks"]["temporal"] == "ok"
        # The scrape still answers, and says the domain series could not be read.
        metrics = await http.get("/metrics")
        assert metrics.status_code == 200
        assert "homeward_domain_metrics_up 0.0" in metrics.text
        assert "homeward_cases_open" not in metrics.text


async def test_not_ready_when_the_schema_is_behind_the_code(engine: AsyncEngine):
    head = migration_head()
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0010'"))
    async with _client(engine) as http:
        assert (await http.get("/health/live")).status_code == 200
        response = await http.get("/health/ready")
        assert response.status_code == 503, response.text
        assert response.json()["checks"] == {
            "database": "ok", "temporal": "ok",
            "migrations": f"behind: database at 0010, code at {head}"}


async def test_not_ready_when_temporal_does_not_answer(engine: AsyncEngine):
    class DownTemporal:
        def __init__(self) -> None:
            async def check_health() -> bool:
                raise ConnectionError("refused")

            self.service_client = SimpleNamespace(check_health=check_health)

    async with _client(engine, DownTemporal()) as http:
        response = await http.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["temporal"] == "unavailable: ConnectionError"
        assert (await http.get("/health/live")).status_code == 200


async def test_probes_and_metrics_stay_out_of_the_api_contract(engine: AsyncEngine):
    services = services_without_temporal(engine, own_projector=False)
    paths = set(create_app(services).openapi()["paths"])
    assert "/health" in paths
    assert not paths & {"/health/live", "/health/ready", "/metrics"}
