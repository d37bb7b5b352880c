"""Every malformed request is a 4xx with a code and a sentence, never echoes what was
sent (it may be a name), carries the request id, and writes nothing."""

from __future__ import annotations

import uuid

from test_api_statistics import api  # noqa: F401 - the fixture

NAME = "Marker-Name-Never-Echoed"


async def test_malformed_requests_get_a_code_and_a_sentence(api):  # noqa: F811
    http, store, tokens = api
    coord = {"Authorization": f"Bearer {tokens['coord.rs']}"}
    cases = [
        ("POST", "/cases", {"content": b"{not json", "headers": {
            **coord, "content-type": "application/json"}}, 422, "invalid_request"),
        ("POST", "/cases", {"json": {"receiving_mission": NAME}, "headers": coord}, 422,
         "invalid_request"),
        ("POST", "/cases", {"json": [NAME], "headers": coord}, 422, "invalid_request"),
        ("GET", "/cases/x", {"headers": coord}, 422, "invalid_request"),
        ("GET", f"/cases/{'a' * 80}", {"headers": coord}, 422, "invalid_request"),
        ("GET", "/tasks/not-a-uuid", {"headers": coord}, 422, "invalid_request"),
        ("GET", "/tasks?overdue=perhaps", {"headers": coord}, 422, "invalid_request"),
        ("GET", "/nowhere", {"headers": coord}, 404, "not_found"),
        ("DELETE", "/cases", {"headers": coord}, 405, "method_not_allowed"),
        ("PUT", f"/cases/c-{uuid.uuid4().hex[:12]}/person",
         {"json": {"given_names": NAME, "unknown_field": NAME}, "headers": coord}, 422,
         "invalid_request"),
    ]
    for method, path, kwargs, status, code in cases:
        response = await http.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] == code
        assert error["message"] and error["request_id"] == response.headers["x-request-id"]
        assert NAME not in response.text
    assert await store.count_cases() == 0


async def test_a_request_id_offered_by_the_caller_is_replaced(api):  # noqa: F811
    """A caller's id could carry a name into logs and the append-only audit log."""
    http, _, tokens = api
    response = await http.get("/tasks", headers={
        "Authorization": f"Bearer {tokens['coord.rs']}", "X-Request-ID": "maria.popescu.1990"})
    assert response.headers["x-request-id"] != "maria.popescu.1990"
    assert len(response.headers["x-request-id"]) == 32


async def test_a_chunked_body_over_the_limit_is_refused(api):  # noqa: F811
    http, store, tokens = api

    async def chunks():
        for _ in range(9):
            yield b"x" * 2**20

    response = await http.put("/cases/c-0000000000000000000a/person", content=chunks(),
                              headers={"Authorization": f"Bearer {tokens['coord.rs']}",
                                       "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"



async def test_an_oversized_body_is_refused_before_it_is_read(api):  # noqa: F811
    http, store, tokens = api
    response = await http.post("/cases", content=b"x" * (8 * 2**20 + 1), headers={
        "Authorization": f"Bearer {tokens['coord.rs']}", "content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await store.count_cases() == 0
