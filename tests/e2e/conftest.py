# ruff: noqa: E402 - sys.path must be fixed before the project imports below
"""The real stack for API tests: a Temporal dev server (start_local, one per session), a
worker per test on its own task queue, a fresh migrated database per test, the FastAPI
app in process (httpx + ASGITransport), and organisations, users and tokens seeded.

Two sets of organisations, so that every test can ask "own case / another
organisation's case": mission-rs → mission-md (+ ngo-md-border) and mission-al →
mission-ua (+ ngo-ua)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)
_shadow = sys.modules.get("workflows")
if _shadow is not None and getattr(_shadow, "__file__", None) is None:
    del sys.modules["workflows"]

import httpx
import pytest
from api_stack import PAYLOAD_KEYRING, VAULT_KEYRING, Stack, seed  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from activities.travel import SimulatedTravelProvider
from api.app import ApiServices, create_app
from store.accounts import Accounts
from store.event_store import EventStore
from store.vault import PersonVault
from workers.codec import EncryptionCodec, make_data_converter
from workflows import WORKFLOWS
from workflows.search_attributes import ALL


class FlakyTravel(SimulatedTravelProvider):
    """The simulated provider, with an outage switch (a transient failure: retried)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def book(self, request):
        if self.down:
            raise ConnectionError("travel provider unreachable")
        return await super().book(request)


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        search_attributes=ALL,
        data_converter=make_data_converter(PAYLOAD_KEYRING),
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def stack(dev_server: WorkflowEnvironment, engine: AsyncEngine) -> AsyncIterator[Stack]:
    store = EventStore(engine)
    accounts = Accounts(engine)
    tokens, ids = await seed(accounts)
    task_queue = f"e2e-{uuid.uuid4()}"
    travel = FlakyTravel()
    services = ApiServices(
        engine=engine, store=store, temporal=dev_server.client, accounts=accounts,
        vault=PersonVault(engine, VAULT_KEYRING, store),
        payload_codec=EncryptionCodec(PAYLOAD_KEYRING), task_queue=task_queue,
        codec_cors_origins=[], allow_journey_config=True,
    )
    app = create_app(services)
    async with Worker(dev_server.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(store, travel)):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://homeward.test") as http:
            yield Stack(http, engine, store, dev_server.client, tokens, services, ids, travel)
