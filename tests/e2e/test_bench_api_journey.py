"""The load generator of `homeward bench scale` (bench/api_journey.py) drives cases the
way the API's users do, on the real stack: every case it reports reached reception did,
and its client waits out a 503 for its Retry-After and sends the request again, and follows
a completion the API could not confirm yet (202) at its check URL, instead of counting a
failure."""

from __future__ import annotations

import asyncio

import httpx

from bench.api_journey import Api, Board, to_reception


async def test_the_scale_driver_takes_cases_to_reception_through_the_api(stack):
    api = Api(stack.http, stack.tokens)
    board = Board(api, interval=0.2)
    watching = asyncio.create_task(board.run())
    try:
        case_ids = await asyncio.gather(*(to_reception(api, board) for _ in range(3)))
    finally:
        watching.cancel()
    assert len(set(case_ids)) == 3
    for case_id in case_ids:
        types = [e.event_type for e in await stack.store.read_stream(case_id)]
        assert types.count("reception.handoff_confirmed") == 1, types
    # Watching a case costs the board's list requests, not requests per case.
    assert board.requests > 0


def _client(answers: list, keys: list | None = None) -> tuple[Api, list[str]]:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if keys is not None:
            keys.append(request.headers.get("idempotency-key"))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://api")
    return Api(http, {"u": "token"}), seen


async def test_a_503_is_waited_out_and_sent_again():
    api, seen = _client([httpx.Response(503, headers={"Retry-After": "0"}),
                         httpx.ConnectError("refused"), httpx.Response(200, json={"ok": 1})])
    response = await api.call("POST", "/cases/c-1/facts", "u", json={"fact": "departed"})
    assert response.status_code == 200 and response.json() == {"ok": 1}
    assert seen == ["/cases/c-1/facts"] * 3 and api.retries == 2


async def test_a_step_sent_again_carries_its_first_key():
    keys: list = []
    api, _ = _client([httpx.Response(503, headers={"Retry-After": "0"}),
                      httpx.Response(200, json={"ok": 1})], keys)
    await api.call("POST", "/cases/c-1/decision", "u", json={},
                   headers={"Idempotency-Key": "k-12345678"})
    assert keys == ["k-12345678", "k-12345678"]


async def test_a_pending_completion_is_followed_at_its_check_url_not_sent_twice():
    pending = httpx.Response(202, headers={"Retry-After": "0"},
                             json={"status": "pending", "check": "/tasks/t-1"})
    api, seen = _client([pending, httpx.Response(200, json={"status": "open"}),
                         httpx.Response(200, json={"status": "completed"})])
    response = await api.call("POST", "/cases/c-1/screening", "u", json={})
    assert response.json() == {"status": "completed"}
    assert seen == ["/cases/c-1/screening", "/tasks/t-1", "/tasks/t-1"]


async def test_a_refusal_is_answered_at_once_not_retried():
    api, seen = _client([httpx.Response(409, json={"code": "wrong_stage"})])
    response = await api.call("POST", "/cases/c-1/facts", "u", json={"fact": "departed"})
    assert response.status_code == 409 and len(seen) == 1 and api.retries == 0
