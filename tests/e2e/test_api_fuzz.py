"""Schema-driven fuzzing (schemathesis + hypothesis) of every operation in the OpenAPI
spec, against the API served by uvicorn on the real stack: valid and invalid requests,
with a real case id half of the time. No input may produce a 5xx, and every answer must
be one the spec declares (decision 0058): its status, its content type, its headers and
its body's schema (schemathesis' conformance checks). Bounded: about 16 examples per
operation and mode, a few hundred requests, well under two minutes.

schemathesis is a dev dependency: imported plainly, so that a missing one fails the suite
instead of skipping it. Every operation is fuzzed in every mode; the only exception is
negative mode for an operation with nothing to make invalid (no parameter, no body),
named in ``NOTHING_TO_NEGATE`` so that a new one is a decision, not a silent skip."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

import schemathesis
import uvicorn
from api_driver import open_task, register, through_consent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.routes.case_packages import PACKAGE_MEDIA_TYPE

# A case package is opaque bytes to the fuzzer, like any binary body.
schemathesis.serializer.alias(PACKAGE_MEDIA_TYPE, "application/octet-stream")

EXAMPLES = 16
# Operations without a parameter or a body: negative mode has nothing to make invalid.
# (An operation behind the bearer scheme has one: its Authorization header.)
NOTHING_TO_NEGATE = {"GET /health"}
# What every answer is checked against: the spec says what the API answers, truthfully.
CONFORMANCE = [status_code_conformance, content_type_conformance,
               response_headers_conformance, response_schema_conformance]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _user_for(path: str) -> str:
    if path.startswith(("/operations", "/codec")):
        return "operator"
    if path.startswith(("/statistics", "/reports")):
        return "analyst"
    if path.endswith("/audit") or path.startswith("/admin"):
        return "admin"
    return "coord.rs"


async def test_no_request_makes_the_api_fail(stack):
    case_id = await register(stack)
    await through_consent(stack, case_id)
    task = await open_task(stack, "coord.rs", case_id, "travel_documents")
    # Negative examples send malformed tokens by the hundred from one address: the
    # throttle would answer 429 to everything after five (tests/integration/test_accounts).
    stack.services.accounts.throttle.max_failures = 1_000_000
    app = create_app(stack.services)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    base_url = f"http://127.0.0.1:{port}"
    schema = schemathesis.openapi.from_dict(app.openapi())
    failures: list[str] = []
    nonconforming: Counter[str] = Counter()  # "METHOD /path status: what" → how often
    statuses: Counter[int] = Counter()
    requests: Counter[str] = Counter()  # per "METHOD /path mode"
    dropped: list[str] = []
    not_negated: set[str] = set()

    def checker(strategy, headers, label):
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case) -> None:
            requests[label] += 1
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: "
                                f"{response.status_code} {response.text[:200]}")
            try:
                case.validate_response(response, checks=CONFORMANCE)
            except (AssertionError, BaseExceptionGroup) as error:  # one failure, or more
                for failure in getattr(error, "exceptions", [error]):
                    what = getattr(failure, "title", type(failure).__name__)
                    nonconforming[f"{case.method} {case.operation.path} "
                                  f"{response.status_code}: {what}"] += 1

        return check

    operations = [result.ok() for result in schema.get_all_operations()]
    planned = []
    for operation in operations:
        name = f"{operation.method.upper()} {operation.path}"
        negatable = bool(list(operation.iter_parameters())) or bool(operation.body)
        for mode in GenerationMode:
            if mode is GenerationMode.NEGATIVE and not negatable:
                not_negated.add(name)
            else:
                planned.append((operation, mode, f"{name} {mode.value}"))

    def fuzz() -> None:
        for operation, mode, label in planned:
            headers = {"Authorization": f"Bearer {stack.tokens[_user_for(operation.path)]}"}
            real = ({"case_id": case_id} if "{case_id}" in operation.path else
                    {"task_id": task["task_id"]} if "{task_id}" in operation.path else None)
            strategies = [operation.as_strategy(mode)]
            if real is not None:
                strategies.append(operation.as_strategy(mode, path_parameters=real))
            try:
                checker(st.one_of(strategies), headers, label)()
            except Unsatisfiable as error:
                dropped.append(f"{label}: {type(error).__name__}")

    try:
        await asyncio.to_thread(fuzz)
    finally:
        server.should_exit = True
        await serving
    print("fuzz statuses:", dict(sorted(statuses.items())))
    print("not conforming:", dict(sorted(nonconforming.items())))
    assert not dropped, "operations schemathesis could not generate a request for:\n" + \
        "\n".join(dropped)
    assert not_negated == NOTHING_TO_NEGATE, not_negated
    unexercised = [label for _, _, label in planned if requests[label] == 0]
    assert not unexercised, f"operations never requested: {unexercised}"
    assert len(operations) >= 30 and sum(requests.values()) >= 200, requests
    assert sum(n for status, n in statuses.items() if status < 300) >= 20, statuses
    assert not failures, "\n".join(failures[:20])
    assert not nonconforming, "answers the spec does not declare:\n" + "\n".join(
        f"{n:4d}× {what}" for what, n in sorted(nonconforming.items()))
