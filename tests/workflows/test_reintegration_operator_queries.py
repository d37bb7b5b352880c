"""On the Temporal dev server (real visibility, no time skipping): the operator queries the
README gives find the cases that lost contact, have a payment failing, or a risk."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from case_driver import RECEIVING
from converter import TEST_DATA_CONVERTER
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from test_reintegration import FollowUp, K, failed, not_reached

from activities import build_activities
from activities.travel import SimulatedTravelProvider
from domain import reintegration_messages as rm
from domain.config import ReintegrationConfig
from domain.reintegration_vocabulary import RiskIndicator
from store.event_store import EventStore
from workflows import WORKFLOWS, ReintegrationWorkflow
from workflows.search_attributes import ALL

S = timedelta(seconds=1)
FAST = ReintegrationConfig(check_ins_after_arrival=(1 * S, 2 * S), payment_retry_after=600 * S,
                           payment_retry_max=600 * S)


@pytest.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        search_attributes=ALL,
        data_converter=TEST_DATA_CONVERTER,
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def found(env: WorkflowEnvironment, query: str) -> list[str]:
    ids: list[str] = []
    for _ in range(50):  # visibility is eventually consistent
        ids = [w.id async for w in env.client.list_workflows(query)]
        if ids:
            break
        await asyncio.sleep(0.2)
    return ids


async def test_operators_find_contact_lost_payment_failing_and_risk(dev_server, engine,
                                                                    task_queue):
    store = EventStore(engine)
    async with Worker(dev_server.client, task_queue=task_queue, workflows=WORKFLOWS,
                      activities=build_activities(store, SimulatedTravelProvider())):
        f = await FollowUp.start(dev_server, task_queue, store, config=FAST,
                                 pre_departure_instalment_paid=True)
        try:
            await f.complete(K.GRANT_PAYMENT, failed(), instalment=1)
            assert await found(dev_server, "HomewardBlockedOn = 'grant_payment_failing' AND "
                               f"HomewardReceivingMission = '{RECEIVING}'") == [f.handle.id]

            await f.complete(K.CHECK_IN, not_reached(), check_in=1)
            await f.complete(K.CHECK_IN, not_reached(), check_in=2)
            await f.task(K.TRACING)
            assert await found(dev_server, "HomewardContactLost = true AND "
                               "HomewardReintegrationStage = 'contact_lost'") == [f.handle.id]

            await f.update(ReintegrationWorkflow.record_risk, rm.RiskReport(
                organisation_id=RECEIVING, actor_id="u-1",
                indicator=RiskIndicator.OFFER_TO_WORK_ABROAD))
            assert await found(dev_server, "HomewardRiskEscalated = 'offer_to_work_abroad'") \
                == [f.handle.id]
        finally:
            await f.handle.terminate("test over")
