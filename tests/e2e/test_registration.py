"""Registration without waiting on the workflow (decision 0054), against the real stack:
the identity staged in the vault, the workflow started under the case id the API made,
``identity.recorded`` appended before the answer; retries under one Idempotency-Key make
one case; a registration cut between its steps is finished or undone by the repair.

No assertion is about time: waits only wait for the workflow to do its part."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from api_driver import MARKER_NAME, open_task, referral, screening_body
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from api.service.referrals import ReferralService
from domain import boundary as wf
from store.vault import PersonView, ReadPurpose

pytestmark = pytest.mark.asyncio

REFERRED = "case.referral_registered"
RECORDED = "identity.recorded"


async def _types(stack, case_id: str) -> list[str]:
    return [e.event_type for e in await stack.store.read_stream(case_id)]


async def _referred(stack, case_id: str) -> list[str]:
    """The case's event types once the workflow recorded the referral (a wait for the
    workflow, not a measurement: generous, to survive a loaded machine)."""
    for _ in range(1200):
        types = await _types(stack, case_id)
        if REFERRED in types:
            return types
        await asyncio.sleep(0.1)
    raise AssertionError(f"case {case_id} never recorded its referral")


async def _given_names(stack, case_id: str) -> str | None:
    view = await stack.services.vault.read(case_id, purpose=ReadPurpose.CASE_REVIEW,
                                           reader_org="mission-rs", reader_actor="test",
                                           groups=["names"])
    assert isinstance(view, PersonView)
    return view.record.given_names


async def _workflow_exists(stack, case_id: str) -> bool:
    try:
        await stack.client.get_workflow_handle(wf.workflow_id_for(case_id)).describe()
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def _post(stack, body: dict[str, Any], key: str | None = None):
    headers = stack.auth("coord.rs")
    if key is not None:
        headers["Idempotency-Key"] = key
    return stack.http.post("/cases", json=body, headers=headers)


def _code(response) -> str:
    """The refusal's code (problem+json, or the error object before it)."""
    body = response.json()
    return body["code"] if "code" in body else body["error"]["code"]


async def test_fifty_concurrent_registrations_each_make_one_case_with_her_identity(stack):
    keys = [f"concurrent-{uuid.uuid4().hex[:12]}" for _ in range(50)]
    bodies = [referral(identity={"given_names": f"{MARKER_NAME}-{n}", "nationality": "MD"})
              for n in range(50)]
    # Ten of them are sent twice at once: a client retrying while the first is in flight.
    sends = [(b, k) for b, k in zip(bodies, keys, strict=True)] + list(
        zip(bodies[:10], keys[:10], strict=True))
    answers = await asyncio.gather(*(_post(stack, b, k) for b, k in sends))

    assert [a.status_code for a in answers] == [201] * 60, [a.text for a in answers
                                                            if a.status_code != 201]
    assert all(a.json()["identity_recorded"] for a in answers)
    case_of = {k: a.json()["case_id"] for (_, k), a in zip(sends, answers, strict=True)}
    assert len(set(case_of.values())) == 50
    for (_, key), answer in zip(sends, answers, strict=True):
        assert answer.json()["case_id"] == case_of[key]

    # And once more after: the same cases, nothing new.
    again = await asyncio.gather(*(_post(stack, b, k) for b, k in zip(bodies[:5], keys[:5],
                                                                       strict=True)))
    assert [a.json()["case_id"] for a in again] == [case_of[k] for k in keys[:5]]

    for n, key in enumerate(keys):
        types = await _referred(stack, case_of[key])
        assert types.count(REFERRED) == 1 and types.count(RECORDED) == 1, types
        assert await _given_names(stack, case_of[key]) == f"{MARKER_NAME}-{n}"
        registration = await stack.services.vault.registration(case_of[key])
        assert registration is not None and registration.confirmed


async def test_the_case_is_there_from_the_answer_on(stack):
    """The answer does not wait for the referral event: the case is seen (its parties as
    registered) by the very next request."""
    created = await _post(stack, referral())
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    seen = await stack.http.get(f"/cases/{case_id}", headers=stack.auth("coord.rs"))
    assert seen.status_code == 200, seen.text
    assert seen.json()["receiving_mission"] == "mission-md"
    other = await stack.http.get(f"/cases/{case_id}", headers=stack.auth("coord.al"))
    assert other.status_code in (403, 404)  # another sending mission's case: refused
    await _referred(stack, case_id)


async def test_a_retry_with_the_same_key_and_another_identity_is_refused_and_hers_kept(
        stack):
    """The key is bound to the whole body, her identity included (decision 0058): another
    identity under it is a 422, not the first case answered as if it were hers."""
    key = f"keep-{uuid.uuid4().hex[:12]}"
    first = await _post(stack, referral(), key)
    again = await _post(stack, referral(identity={"given_names": "Someone Else"}), key)
    assert first.status_code == 201, first.text
    assert again.status_code == 422, again.text
    assert _code(again) == "idempotency_key_reused"
    assert "Someone" not in again.text
    case_id = first.json()["case_id"]
    types = await _referred(stack, case_id)
    assert types.count(RECORDED) == 1
    assert await _given_names(stack, case_id) == MARKER_NAME
    same = await _post(stack, referral(), key)  # the identical body: the same case
    assert same.status_code == 201 and same.json()["case_id"] == case_id, same.text


async def test_a_key_reused_for_another_referral_is_refused_before_the_workflow(stack):
    key = f"reuse-{uuid.uuid4().hex[:12]}"
    first = await _post(stack, referral(), key)
    reused = await _post(stack, referral(age_category="unknown"), key)
    assert reused.status_code == 422, reused.text
    assert reused.json()["code"] == "idempotency_key_reused"
    types = await _referred(stack, first.json()["case_id"])
    assert types.count(RECORDED) == 1


async def test_a_registration_without_identity_is_unchanged(stack):
    key = f"plain-{uuid.uuid4().hex[:12]}"
    body = referral()
    del body["identity"]
    first, again = await _post(stack, body, key), await _post(stack, body, key)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["identity_recorded"] is again.json()["identity_recorded"] is False
    case_id = first.json()["case_id"]
    assert again.json()["case_id"] == case_id
    assert await stack.services.vault.registration(case_id) is None
    assert RECORDED not in await _referred(stack, case_id)
    # Her identity sent later under the same key is another body (decision 0058): 422;
    # it is recorded with PUT /cases/{case_id}/person.
    late = await _post(stack, referral(), key)
    assert late.status_code == 422, late.text
    assert _code(late) == "idempotency_key_reused"
    assert RECORDED not in await _types(stack, case_id)


async def test_a_start_that_fails_after_the_vault_write_is_undone_by_the_repair(
        stack, monkeypatch):
    """Temporal down after the identity was staged: 503; no workflow; the repair (past
    its grace) destroys the staged identity; a retry with the key registers it anew."""
    referrals = stack.services.referrals

    async def unreachable(self, referral):
        raise ApiError(503, "temporal_unavailable", "starting the return: unreachable")

    key = f"crash-{uuid.uuid4().hex[:12]}"
    with monkeypatch.context() as patch:
        patch.setattr(ReferralService, "_start", unreachable)
        failed = await _post(stack, referral(), key)
    assert failed.status_code == 503, failed.text
    case_id = (await _checked(stack, referral(), key))[1].case_id
    assert not await _workflow_exists(stack, case_id)
    assert (await stack.services.vault.registration(case_id)).confirmed is False

    # Within the grace an interrupted attempt is left alone: a retry may still finish it.
    untouched = await referrals.repair()
    assert case_id not in untouched.discarded + untouched.confirmed
    repaired = await referrals.repair(idle_for=timedelta(0))
    assert repaired.discarded == (case_id,)
    assert await stack.services.vault.registration(case_id) is None
    assert await stack.count("person_keys") == 0
    assert await _types(stack, case_id) == []  # no identity without its case

    retried = await _post(stack, referral(), key)
    assert retried.status_code == 201, retried.text
    assert retried.json()["case_id"] == case_id
    types = await _referred(stack, case_id)
    assert types.count(RECORDED) == 1 and await _given_names(stack, case_id) == MARKER_NAME


async def test_an_api_stopped_after_the_start_is_finished_by_the_repair(stack, monkeypatch):
    """The workflow started, then the API stopped before recording the identity: the
    repair finds the workflow and appends the staged identity.recorded."""
    referrals = stack.services.referrals

    async def stopped(self, caller, referral):
        raise asyncio.CancelledError  # the process went away mid-request

    key = f"stop-{uuid.uuid4().hex[:12]}"
    with monkeypatch.context() as patch:
        patch.setattr(ReferralService, "_confirm", stopped)
        with pytest.raises(asyncio.CancelledError):
            await referrals.register(*await _checked(stack, referral(), key))
    [registration] = await stack.services.vault.unconfirmed(timedelta(0))
    case_id = registration.case_id
    types = await _referred(stack, case_id)
    assert RECORDED not in types  # a case without its identity, until the repair

    repaired = await referrals.repair(idle_for=timedelta(0))
    assert repaired.confirmed == (case_id,)
    types = await _types(stack, case_id)
    assert types.count(REFERRED) == 1 and types.count(RECORDED) == 1
    assert await _given_names(stack, case_id) == MARKER_NAME
    assert (await referrals.repair(idle_for=timedelta(0))).confirmed == ()


async def test_a_vault_write_that_fails_starts_no_workflow(stack, monkeypatch):
    async def broken(*args, **kwargs):
        raise ConnectionRefusedError("database down")

    key = f"vault-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(stack.services.vault, "stage", broken)
    failed = await _post(stack, referral(), key)
    assert failed.status_code == 503, failed.text
    case_id = (await _checked(stack, referral(), key))[1].case_id
    assert not await _workflow_exists(stack, case_id)
    assert await _types(stack, case_id) == []


async def test_a_step_finds_its_open_task_in_the_stream_not_by_querying(stack, monkeypatch):
    created = await _post(stack, referral())
    case_id = created.json()["case_id"]
    await open_task(stack, "coord.rs", case_id, "screening_interview")

    async def no_queries(*args, **kwargs):
        raise AssertionError("the API queried the workflow")

    monkeypatch.setattr(WorkflowHandle, "query", no_queries)
    response = await stack.http.post(f"/cases/{case_id}/screening", json=screening_body(),
                                     headers=stack.auth("coord.rs"))
    assert response.status_code == 200, response.text


async def _checked(stack, body: dict[str, Any], key: str):
    """What the route hands ``register``: the caller and the checked referral."""
    from api.service.referrals import ReferralIn

    caller = await stack.services.accounts.authenticate(stack.tokens["coord.rs"])
    checked = await stack.services.referrals.check(caller, ReferralIn.model_validate(body),
                                                   key)
    return caller, checked


async def test_a_server_starting_finishes_what_an_earlier_one_left_half_done(
        stack, monkeypatch):
    """The repair runs when the API starts (and every minute after), not only when a new
    registration comes in: a server restarted after a crash repairs on its own."""
    from api.app import create_app

    referrals = stack.services.referrals

    async def stopped(self, caller, referral):
        raise asyncio.CancelledError

    with monkeypatch.context() as patch:
        patch.setattr(ReferralService, "_confirm", stopped)
        with pytest.raises(asyncio.CancelledError):
            await referrals.register(*await _checked(stack, referral(),
                                                     f"restart-{uuid.uuid4().hex[:12]}"))
    [registration] = await stack.services.vault.unconfirmed(timedelta(0))
    real_repair = referrals.repair
    monkeypatch.setattr(referrals, "repair", lambda: real_repair(idle_for=timedelta(0)))
    app = create_app(stack.services)
    async with app.router.lifespan_context(app):
        for _ in range(600):
            if RECORDED in await _types(stack, registration.case_id):
                break
            await asyncio.sleep(0.1)
    assert (await _types(stack, registration.case_id)).count(RECORDED) == 1
