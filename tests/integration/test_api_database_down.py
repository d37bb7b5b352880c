"""PostgreSQL down: every request that needs it answers 503 ``database_unavailable`` with
Retry-After, never 500 (issue 13: 153 requests answered 500 during a 15 s outage, because
asyncpg reports a refused connection as a plain ConnectionRefusedError)."""

from __future__ import annotations

import socket

import httpx
import pytest
from api_without_temporal import services_without_temporal

from api.app import create_app
from store.database import create_engine

TOKEN = "hw_" + "0" * 32 + "_" + "a" * 43


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


@pytest.fixture
async def http():
    engine = create_engine(f"postgresql+asyncpg://homeward@127.0.0.1:{closed_port()}/gone")
    services = services_without_temporal(engine, own_projector=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                 base_url="http://homeward.test") as client:
        yield client
    await engine.dispose()


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/tasks"), ("GET", "/cases"), ("GET", "/cases/c-0123456789abcdef0123"),
    ("POST", "/cases"), ("GET", "/statistics"),
])
async def test_a_request_needing_the_database_is_a_503_with_retry_after(http, method, path):
    body = {"receiving_mission": "mission-md"} if method == "POST" else None
    response = await http.request(method, path, json=body,
                                  headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503, response.text
    error = response.json()
    assert error["code"] == "database_unavailable"
    assert error["request_id"] == response.headers["x-request-id"]
    assert int(response.headers["retry-after"]) >= 1


async def test_health_says_the_database_is_down(http):
    response = await http.get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unavailable")
