"""A road fact reported while the workflow trails its own stream (the booking's event is
stored, the workflow task that takes in the booking has not run yet: a killed worker's
tasks moving to another) is sent again until the workflow accepts it; a fact the stream
does not expect either is refused at once (409), and a workflow that never catches up is
answered 503 ``case_catching_up``, never a 409 that contradicts the case's stage."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from test_domain_case import booking, ok, ready_to_book

from api.errors import ApiError
from api.service import cases as case_service
from api.service.cases import CaseService
from domain.journey import messages as msg
from domain.journey.vocabulary import RoadFact

CALLER = SimpleNamespace(org_id="mission-rs", user_id="u-1")
NOT_NOW = ApiError(409, "fact_not_expected_now", "'departed' is not expected now",
                   stage="booking")


def service(stream_state, answers: list) -> tuple[CaseService, list]:
    """A case service whose stream folds to ``stream_state`` and whose Update calls
    answer ``answers`` in turn (an ApiError is raised)."""
    svc = CaseService.__new__(CaseService)
    sent: list = []

    async def call(update, *, what: str):
        update.close()  # the coroutine of execute_update: never awaited here
        sent.append(what)
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def load(case_id: str):
        return SimpleNamespace(state=stream_state)

    svc.call = call
    svc.load = load
    svc.temporal = SimpleNamespace(get_workflow_handle=lambda workflow_id: SimpleNamespace(
        execute_update=lambda *args, **kwargs: asyncio.sleep(0)))
    return svc, sent


def booked():
    return ok(ready_to_book(), booking())


async def test_a_fact_the_stream_expects_is_sent_again_until_the_workflow_takes_it():
    recorded = msg.FactRecorded.__new__(msg.FactRecorded)
    svc, sent = service(booked(), [NOT_NOW, NOT_NOW, recorded])
    assert await svc.report_fact(CALLER, "c-1", RoadFact.DEPARTED, None) is recorded
    assert len(sent) == 3


async def test_a_fact_the_stream_does_not_expect_is_refused_at_once():
    svc, sent = service(ready_to_book(), [NOT_NOW])  # not booked: departure is not expected
    with pytest.raises(ApiError) as refused:
        await svc.report_fact(CALLER, "c-1", RoadFact.DEPARTED, None)
    assert (refused.value.status, refused.value.code) == (409, "fact_not_expected_now")
    assert len(sent) == 1


async def test_a_workflow_that_does_not_catch_up_is_a_503_to_retry(monkeypatch):
    monkeypatch.setattr(case_service, "CATCH_UP_SECONDS", 0.3)
    svc, sent = service(booked(), [NOT_NOW])
    with pytest.raises(ApiError) as behind:
        await svc.report_fact(CALLER, "c-1", RoadFact.DEPARTED, None)
    assert (behind.value.status, behind.value.code) == (503, "case_catching_up")
    assert behind.value.retry_after
    assert len(sent) >= 2



async def test_with_a_key_the_history_is_read_once_not_on_every_round(monkeypatch):
    from api.completions import FirstCompletion
    from api.service import keyed as keyed_module

    recorded = msg.FactRecorded(fact=RoadFact.DEPARTED, event_types=("journey.departed",),
                                duplicate=False, stage="in_transit")
    reads: list[str] = []

    async def first_completion(client, workflow_id, update_id, **kwargs):
        reads.append(update_id)
        return FirstCompletion(msg.JourneyFact(organisation_id="mission-rs", actor_id="u-1",
                                               fact=RoadFact.DEPARTED), recorded, False)

    monkeypatch.setattr(keyed_module, "first_completion", first_completion)
    svc, sent = service(booked(), [NOT_NOW, NOT_NOW, NOT_NOW, recorded])
    answer = await svc.report_fact(CALLER, "c-1", RoadFact.DEPARTED, None, "k-12345678")
    assert answer == recorded
    assert len(sent) == 4 and len(reads) == 1  # the answer's read-back only
