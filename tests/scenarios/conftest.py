"""Time-skipping Temporal test server with homeward's search attributes registered, and a
worker per test against a real event store (the ``engine`` fixture's fresh database)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import temporalio.api.operatorservice.v1 as operatorservice
from converter import TEST_DATA_CONVERTER
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from activities.travel import SimulatedTravelProvider
from store.event_store import EventStore
from workflows import WORKFLOWS
from workflows.search_attributes import ALL

BIN_DIR = Path(sys.executable).parent


async def register_search_attributes(client: Client) -> None:
    """Custom search attributes must exist, or every upsert fails the workflow task."""
    await client.operator_service.add_search_attributes(
        operatorservice.AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in ALL
            },
        )
    )


@pytest.fixture(scope="session")
async def workflow_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN_DIR / "temporal-test-server"),
        data_converter=TEST_DATA_CONVERTER,
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server (real visibility: operator queries run as in the UI), one per
    module so that each module's queries see only its own cases."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN_DIR / "temporal"),
        search_attributes=ALL,
        data_converter=TEST_DATA_CONVERTER,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def store(engine) -> EventStore:
    return EventStore(engine)


@pytest.fixture
def travel() -> SimulatedTravelProvider:
    return SimulatedTravelProvider()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4()}"


@pytest.fixture
async def worker(
    workflow_env: WorkflowEnvironment, store: EventStore, travel, task_queue: str
) -> AsyncIterator[Worker]:
    async with Worker(
        workflow_env.client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(store, travel),
    ) as running:
        yield running
