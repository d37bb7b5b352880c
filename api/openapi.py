"""The OpenAPI description says what the API answers (decision 0057).

FastAPI describes each route's success answer and, for any route with parameters, a 422
``HTTPValidationError`` the API never sends. ``complete`` rewrites that description once,
after FastAPI built it, from what every operation shows there (its method, its path
parameters, whether it takes a body): the error answers each one can give, all with the
one ``Problem`` schema (``application/problem+json``, ``api.errors``); the 202 a task
completion answers when no worker confirmed it in time; the bearer scheme, so that
Swagger's Authorize button works. The routes themselves stay as they are: a route added
later is described by the same rules, and ``tests/integration/test_api_contract.py``
checks that every operation is.

The rules, per status:

- 401, 403, 429: every authenticated operation (all but ``/health``); a token is checked
  on each request (401), throttled by the client's address (429), and every route decides
  access (``api.access``: 403 for the role or organisation refused).
- 404: a path with ``{case_id}`` or ``{task_id}`` (no such case, or not one for you).
- 409: every POST and PUT outside ``/codec``: the workflow, the vault or the case's state
  refuses it (a closed case, a completed task, a fact not expected now); and the GETs that
  query the workflow (``WORKFLOW_QUERIES``: no handoff code yet, the case not running).
  A DELETE (ending a sharing) is refused only as not found.
- 410: the person's vault routes (her identity erased).
- 413: every operation with a body; 422: every one with parameters or a body, except the
  codec's, which answer 400 for a body that is not Payloads; 400 also for a JSON body
  that cannot be read at all (not UTF-8: FastAPI's ``bad_request``, before validation).
- 503: every operation but ``/health`` (whose 503 is its own ``degraded`` body): past the
  in-flight limit any request is shed, and every other touches PostgreSQL or Temporal.
- 202: the operations that forward a task completion (``PENDING``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.errors import PROBLEM_JSON, PROBLEM_TYPES, problem

BEARER = "bearer"
CODEC_SESSION = "codecSession"
PUBLIC = frozenset({("get", "/health"), ("post", "/codec/session")})
PENDING = frozenset({
    ("post", "/tasks/{task_id}/complete"),
    ("post", "/cases/{case_id}/screening"),
    ("post", "/cases/{case_id}/decision"),
    ("post", "/cases/{case_id}/consent"),
})
"""The operations that forward a task completion to the workflow (``api.service.cases``
``forward_completion``, ``pending_if_unconfirmed``)."""
WRITES = frozenset({"post", "put"})
WORKFLOW_QUERIES = frozenset({("get", "/cases/{case_id}/handoff-code")})
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")

_REQUEST_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 9457 problem (`application/problem+json`): every error answer. "
                   "Switch on `code`; quote `request_id` when reporting one. Further "
                   "members give details (`problems` for an invalid request, `expected` "
                   "and `stage` for a refused fact, `fields`, ...).",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string", "format": "uri",
                 "description": f"`{PROBLEM_TYPES}<code>`: an identifier, not a link"},
        "title": {"type": "string", "description": "the code in words"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "what happened, for a person; never "
                                                    "echoes a value sent"},
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$",
                 "description": "machine-readable: what clients switch on"},
        "request_id": {"type": "string", "description": "as in the X-Request-ID header"},
        "problems": {
            "type": "array",
            "description": "`invalid_request`: each field refused and the rule it broke",
            "items": {"type": "object", "required": ["field", "rule", "message"],
                      "properties": {"field": {"type": "string"}, "rule": {"type": "string"},
                                     "message": {"type": "string"}}},
        },
    },
    "additionalProperties": True,
}
PENDING_SCHEMA: dict[str, Any] = {
    "title": "CompletionPending",
    "type": "object",
    "description": "The completion was sent to the case's workflow but no worker confirmed "
                   "it in time. It is applied exactly once if it arrives: `GET` the task "
                   "(`check`, also in `Location`) to see it completed, or send the same "
                   "completion again later.",
    "required": ["status", "task_id", "check", "message", "request_id"],
    "properties": {
        "status": {"type": "string", "enum": ["pending"]},
        "task_id": {"type": "string"},
        "check": {"type": "string", "description": "the task's path"},
        "message": {"type": "string"},
        "request_id": {"type": "string"},
    },
}

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                                "schema": {"type": "integer", "minimum": 1}}}
# status: (description, example code, example detail, headers)
_ANSWERS: dict[int, tuple[str, str, str, dict[str, Any]]] = {
    400: ("the body cannot be read as JSON at all (not UTF-8: `bad_request`)",
          "bad_request", "There was an error parsing the body", {}),
    401: ("no valid bearer token: `unauthenticated`, `token_expired`, `token_revoked`, "
          "`token_bad_secret`, ...", "unauthenticated",
          "this endpoint needs an `Authorization: Bearer <token>` header",
          {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}),
    403: ("the role, the organisation or the consent does not allow it: `forbidden`, "
          "`consent_required`, `not_your_task`, ...", "forbidden",
          "a coordinator may not read the audit", {}),
    404: ("no such case or task, or none this organisation may know of (`not_found`)",
          "not_found", "there is no such task", {}),
    409: ("refused by the case's state or its workflow; the code says why "
          "(`task_already_completed`, `case_closed`, `fact_not_expected_now`, ...): do not "
          "send it again unchanged", "task_already_completed",
          "the task was completed with another result", {}),
    410: ("the person's identity was erased (`erased`)", "erased",
          "the identity of this case was erased", {}),
    413: ("the body is over the limit (`payload_too_large`)", "payload_too_large",
          "a request body may hold at most 8 MiB", {}),
    422: ("the request is not valid: `invalid_request` (each field in `problems`), or a "
          "precise code (`unknown_record`, `unknown_organisation`, "
          "`idempotency_key_reused`, ...)", "invalid_request",
          "the request is not valid: receiving_mission: Field required", {}),
    429: ("too many failed authentications from this address (`too_many_failures`): try "
          "again after `Retry-After`", "too_many_failures",
          "too many failed attempts from this address", _RETRY_AFTER),
    503: ("a fault that trying again cures, nothing was done: `database_unavailable`, "
          "`temporal_unavailable`, `worker_unavailable`, `overloaded`, "
          "`audit_unavailable`, `case_catching_up`; try again after `Retry-After`",
          "database_unavailable",
          "the database cannot be reached now; nothing was lost or written by this "
          "request; try again", _RETRY_AFTER),
}


def operation_id(route: APIRoute) -> str:
    """Operation ids are the route functions' names (``list_cases``, ``complete_task``)."""
    return route.name


def install_openapi(app: FastAPI) -> None:
    """``app.openapi()`` (and ``/openapi.json``) answer the completed description."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses (and 202) an operation can answer, by the rules above."""
    codec = path.startswith("/codec/")
    has_body = "requestBody" in operation
    answers: set[int] = set()
    if (method, path) != ("get", "/health"):
        answers |= {401, 403, 429, 503}
    if "{case_id}" in path or "{task_id}" in path:
        answers.add(404)
    if (method in WRITES and not codec) or (method, path) in WORKFLOW_QUERIES:
        answers.add(409)
    if path.startswith("/cases/{case_id}/person"):
        answers.add(410)
    if has_body:
        answers.add(413)
    if (operation.get("parameters") or has_body) and not _is_codec_conversion(path):
        answers.add(422)
    if _is_codec_conversion(path) or "application/json" in operation.get(
            "requestBody", {}).get("content", {}):
        answers.add(400)
    if (method, path) in PENDING:
        answers.add(202)
    return answers


def _is_codec_conversion(path: str) -> bool:
    return path in ("/codec/encode", "/codec/decode")


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in FASTAPI_VALIDATION:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["CompletionPending"] = PENDING_SCHEMA
    components["securitySchemes"] = {
        BEARER: {"type": "http", "scheme": "bearer",
                 "description": "a token from `homeward token create` (or the demo's "
                                "`.homeward/demo-tokens.env`)"},
        CODEC_SESSION: {"type": "apiKey", "in": "cookie", "name": "homeward_codec",
                        "description": "the codec session `POST /codec/session` sets"},
    }
    spec["security"] = [{BEARER: []}]
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            _describe(method, path, operation)
    return spec


def _describe(method: str, path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if (method, path) in PUBLIC:
        operation["security"] = []
    elif _is_codec_conversion(path):
        operation["security"] = [{BEARER: []}, {CODEC_SESSION: []}]
    if (method, path) == ("get", "/health"):
        responses["503"] = {"description": "the database or Temporal cannot be reached: "
                                           "`status: degraded`, each check said",
                            "content": {"application/json": {"schema": _HEALTH}}}
        responses.get("200", {}).setdefault("content", {})["application/json"] = {
            "schema": _HEALTH}
    answers = statuses(method, path, operation)
    if 202 in answers:
        responses["202"] = {
            "description": "sent to the workflow but not confirmed in time: applied once "
                           "when it arrives; `GET` the task to see it",
            "headers": {"Location": {"description": "the task to look at",
                                     "schema": {"type": "string"}}, **_RETRY_AFTER},
            "content": {"application/json": {"schema": _ref("CompletionPending")}}}
    for status in sorted(answers - {202}):
        description, code, detail, headers = _ANSWERS[status]
        if status == 400 and _is_codec_conversion(path):
            code, detail = "not_payloads", "the body is not a Payloads message in protobuf JSON"
        answer = responses.setdefault(str(status), {})
        answer.setdefault("description", description)
        if headers:
            answer["headers"] = {**answer.get("headers", {}), **headers}
        answer["content"] = {PROBLEM_JSON: {
            "schema": _ref("Problem"),
            "example": problem(status, code, detail, _REQUEST_ID)}}
    if path == "/health":
        return
    for status, answer in responses.items():  # a route's own description of an error
        if status[0] in "45" and PROBLEM_JSON not in answer.get("content", {}):
            answer["content"] = {PROBLEM_JSON: {"schema": _ref("Problem")}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_HEALTH: dict[str, Any] = {
    "title": "Health",
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "`database`, `temporal`: `ok` or `unavailable: <type>`"},
    },
}
