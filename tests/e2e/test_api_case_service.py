"""The case service reads a case's stream once per request and reuses what it folded for
every check of that request (decision 0048)."""

from __future__ import annotations

from typing import Any

import pytest
from api_driver import open_task, register, screening_body

import api.service.cases as case_service_module

pytestmark = pytest.mark.asyncio


class CountingStore:
    """The event store, counting the reads of a case's stream."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.stream_reads = 0
        self.case_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def read_stream(self, *args: Any, **kwargs: Any) -> Any:
        self.stream_reads += 1
        return await self._store.read_stream(*args, **kwargs)

    async def read_case(self, case_id: str, page_size: int = 500) -> Any:
        # The store's own paging, through the counted read_stream.
        self.case_reads += 1
        events: list[Any] = []
        while True:
            page = await self.read_stream(case_id, from_version=len(events) + 1,
                                          limit=page_size)
            events.extend(page)
            if len(page) < page_size:
                return events


async def test_screening_reads_the_case_stream_once_and_decides_once(stack, monkeypatch):
    case_id = await register(stack)
    await open_task(stack, "coord.rs", case_id, "screening_interview")
    counting = CountingStore(stack.store)
    monkeypatch.setattr(stack.services.cases, "store", counting)
    decided = []
    real_decide = case_service_module.decide
    monkeypatch.setattr(case_service_module, "decide",
                        lambda *args: decided.append(args) or real_decide(*args))

    response = await stack.http.post(f"/cases/{case_id}/screening", json=screening_body(),
                                     headers=stack.auth("coord.rs"))

    assert response.status_code == 200, response.text
    assert response.json()["event_types"]
    # Before the case service: four reads (authorise, may-complete, precheck,
    # may-complete again) and the precheck's decide.
    assert (counting.case_reads, counting.stream_reads) == (1, 1)
    assert len(decided) == 1


async def test_a_refused_screening_reads_once_and_stores_no_answer(stack, monkeypatch):
    """A child's screening without who sat with her is refused by the precheck, before her
    answers reach the vault, on the one read of the request."""
    case_id = await register(stack, age_category="12_17")
    await open_task(stack, "coord.rs", case_id, "screening_interview")
    counting = CountingStore(stack.store)
    monkeypatch.setattr(stack.services.cases, "store", counting)
    notes_before = await stack.count("person_notes")

    response = await stack.http.post(f"/cases/{case_id}/screening", json=screening_body(),
                                     headers=stack.auth("coord.rs"))

    assert (response.status_code, response.json()["code"]) == (
        409, "child_unaccompanied")
    assert counting.case_reads == 1
    assert await stack.count("person_notes") == notes_before
