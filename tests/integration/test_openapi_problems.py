"""The OpenAPI description says what the API answers (decision 0057): every error with
the one ``Problem`` schema, for each status an operation can give; the 202 of a pending
task completion; the bearer scheme; readable operation ids; no FastAPI
``HTTPValidationError`` (the API never sends it). And the answers the API does send
match it."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import MagicMock

import jsonschema_rs  # schemathesis brings it
from test_api_statistics import api  # noqa: F401 - the fixture

from api.app import create_app
from api.errors import PROBLEM_JSON
from api.openapi import PENDING, PROBLEM_SCHEMA

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
ERROR_STATUSES = {"400", "401", "403", "404", "409", "410", "413", "422", "429", "503"}


def _spec() -> dict[str, Any]:
    services = MagicMock()
    services.codec_cors_origins = []
    return create_app(services).openapi()


def _operations(spec: dict[str, Any]):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def test_fastapis_validation_error_is_gone_and_problem_declared():
    spec = _spec()
    text = json.dumps(spec)
    assert "HTTPValidationError" not in text and "#/components/schemas/ValidationError" \
        not in text
    assert spec["components"]["schemas"]["Problem"]["required"] == [
        "type", "title", "status", "detail", "code", "request_id"]


def test_every_operation_declares_the_problems_it_can_answer():
    spec = _spec()
    for method, path, operation in _operations(spec):
        name = f"{method.upper()} {path}"
        responses = operation["responses"]
        declared = set(responses)
        if path == "/health":
            assert declared == {"200", "503"}, name
            continue
        expected = {"401", "403", "429", "503"}
        if "{case_id}" in path or "{task_id}" in path:
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"413"} | ({"400"} if path in ("/codec/encode", "/codec/decode")
                                   else {"422"})
            if "application/json" in operation["requestBody"]["content"]:
                expected.add("400")  # not UTF-8: FastAPI cannot even parse it
        if method in ("post", "put") and not path.startswith("/codec"):
            expected.add("409")
        if path.endswith("/handoff-code"):
            expected.add("409")  # the workflow has issued none yet
        assert expected <= declared, (name, expected - declared)
        for status, answer in responses.items():
            if status[0] in "45":
                assert status in ERROR_STATUSES, (name, status)
                assert answer["content"] == {PROBLEM_JSON: answer["content"][PROBLEM_JSON]}
                assert answer["content"][PROBLEM_JSON]["schema"] == PROBLEM_REF, (name, status)
                assert answer["description"], (name, status)
        for status in ("429", "503"):
            assert "Retry-After" in responses[status]["headers"], name


def test_the_examples_are_problems():
    spec = _spec()
    for method, path, operation in _operations(spec):
        for status, answer in operation["responses"].items():
            example = answer.get("content", {}).get(PROBLEM_JSON, {}).get("example")
            if example is not None:
                jsonschema_rs.validate(PROBLEM_SCHEMA, example)
                assert example["status"] == int(status), (method, path, status)


def test_task_completions_may_answer_202_pending():
    spec = _spec()
    pending = {(method, path) for method, path, operation in _operations(spec)
               if "202" in operation["responses"] and operation["responses"]["202"]
               .get("content", {}).get("application/json", {}).get("schema")
               == {"$ref": "#/components/schemas/CompletionPending"}}
    assert pending == set(PENDING)
    assert ("post", "/tasks/{task_id}/complete") in pending


def test_operation_ids_read_like_the_functions():
    spec = _spec()
    ids = [operation["operationId"] for _, _, operation in _operations(spec)]
    assert len(ids) == len(set(ids))
    assert {"list_cases", "complete_task", "register_referral", "health"} <= set(ids)
    assert not [i for i in ids if i.endswith(("_get", "_post", "_put", "_delete"))], ids


def test_bearer_authentication_is_declared_for_all_but_health_and_the_codec_session():
    spec = _spec()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"]}
    assert spec["security"] == [{"bearer": []}]
    public = {(method, path) for method, path, operation in _operations(spec)
              if operation.get("security") == []}
    assert public == {("get", "/health"), ("post", "/codec/session")}


async def test_the_answers_sent_are_the_problems_declared(api):  # noqa: F811
    """Each operation asked without a token answers 401 as described, and the body
    matches the Problem schema; so do a 404 and a 422."""
    http, _, tokens = api
    spec = (await http.get("/openapi.json")).json()
    assert spec == http.app.openapi()
    for method, path, operation in _operations(spec):
        if operation.get("security") == []:
            continue
        concrete = path.replace("{case_id}", "c-0000000000000000000a").replace(
            "{task_id}", "00000000-0000-0000-0000-000000000000").replace("{org_id}", "ngo-x")
        response = await http.request(method.upper(), concrete)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        jsonschema_rs.validate(PROBLEM_SCHEMA, response.json())
    coord = {"Authorization": f"Bearer {tokens['coord.rs']}"}
    for (method, path), response in (
            (("get", "/cases/{case_id}"),
             await http.get("/cases/c-0000000000000000000a", headers=coord)),
            (("post", "/cases"), await http.post("/cases", json={}, headers=coord))):
        assert str(response.status_code) in spec["paths"][path][method]["responses"]
        assert response.status_code in (404, 422), response.text
        jsonschema_rs.validate(PROBLEM_SCHEMA, response.json())
