"""A request repeated under its Idempotency-Key (api.service.keyed, decision 0073) is
answered from the first one the history holds: its answer when it finished; when it is
still running (accepted, its worker killed before it answered, its step already in the
case's stream) it is waited for under its own id, never sent as a new request; a first
request that was refused, or none, lets the retry go as new; another body is 422."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from api.completions import FirstCompletion
from api.errors import ApiError
from api.service import keyed as keyed_module
from api.service.keyed import Keyed
from domain.journey import messages as msg
from domain.journey.vocabulary import RoadFact

CALLER = SimpleNamespace(org_id="mission-rs", user_id="u-1")
FACT = msg.JourneyFact(organisation_id="mission-rs", actor_id="u-1", fact=RoadFact.DEPARTED)
ANSWER = msg.FactRecorded(fact=RoadFact.DEPARTED, event_types=("journey.departed",),
                          duplicate=False, stage="in_transit")


def keyed() -> Keyed:
    found = Keyed.of("k-12345678", CALLER, "report_fact", "return-c-1", msg.JourneyFact,
                     msg.FactRecorded)
    assert found is not None
    return found


def client(first: FirstCompletion | None, monkeypatch) -> tuple[SimpleNamespace, list]:
    """A Temporal client whose history holds ``first`` under the key's id; the Updates it
    is sent are recorded and answered ANSWER."""
    sent: list = []

    async def first_completion(*args, **kwargs):
        return first

    async def execute_update(update, request, *, id, result_type):
        sent.append((update, request, id))
        return ANSWER

    monkeypatch.setattr(keyed_module, "first_completion", first_completion)
    return SimpleNamespace(get_workflow_handle=lambda workflow_id: SimpleNamespace(
        execute_update=execute_update)), sent


async def call(awaitable, *, what: str):
    return await awaitable


async def test_a_finished_first_request_gives_its_answer(monkeypatch):
    fake, sent = client(FirstCompletion(FACT, ANSWER, failed=False), monkeypatch)
    retry = FACT.model_copy(update={"actor_id": "u-2"})  # a colleague retries it
    assert await keyed().first_answer(call, fake, retry) == ANSWER
    assert sent == []


async def test_a_first_request_still_running_is_waited_for_under_its_id(monkeypatch):
    fake, sent = client(FirstCompletion(FACT, None, failed=False), monkeypatch)
    assert await keyed().first_answer(call, fake, FACT) == ANSWER
    [(update, request, update_id)] = sent
    assert (update, request, update_id) == ("report_fact", FACT, keyed().update_id)


@pytest.mark.parametrize("first", [None, FirstCompletion(FACT, None, failed=True)])
async def test_nothing_applied_under_the_key_lets_the_retry_go_as_new(first, monkeypatch):
    fake, sent = client(first, monkeypatch)
    assert await keyed().first_answer(call, fake, FACT) is None
    assert sent == []


async def test_another_request_under_the_same_key_is_refused(monkeypatch):
    fake, sent = client(FirstCompletion(FACT, None, failed=False), monkeypatch)
    other = FACT.model_copy(update={"fact": RoadFact.ARRIVED_AT_BORDER})
    with pytest.raises(ApiError) as refused:
        await keyed().first_answer(call, fake, other)
    assert (refused.value.status, refused.value.code) == (422, "idempotency_key_reused")
    assert sent == []


def test_the_key_never_reaches_the_update_id():
    update_id = keyed().update_id
    assert "k-12345678" not in update_id and update_id.startswith("report_fact-")
    other_org = Keyed.of("k-12345678", SimpleNamespace(org_id="mission-md"), "report_fact",
                         "return-c-1", msg.JourneyFact, msg.FactRecorded)
    assert other_org is not None and other_org.update_id != update_id
