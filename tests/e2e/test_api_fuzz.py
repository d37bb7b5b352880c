"""Schema-driven fuzzing (schemathesis + hypothesis) of every operation in the OpenAPI
spec, against the API served by uvicorn on the real stack: valid and invalid requests,
with a real case id half of the time. No input may produce a 5xx. Bounded: about 16
examples per operation and mode, a few hundred requests, well under two minutes."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

import pytest
import uvicorn
from api_driver import open_task, register, through_consent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from api.app import create_app

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402

EXAMPLES = 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _user_for(path: str) -> str:
    if path.startswith("/operations"):
        return "operator"
    if path.startswith("/statistics"):
        return "analyst"
    if path.endswith("/audit"):
        return "admin"
    return "coord.rs"


async def test_no_request_makes_the_api_fail(stack):
    case_id = await register(stack)
    await through_consent(stack, case_id)
    task = await open_task(stack, "coord.rs", case_id, "travel_documents")
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
    statuses: Counter[int] = Counter()
    requests = 0

    def checker(strategy, headers):
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def check(case) -> None:
            nonlocal requests
            requests += 1
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: "
                                f"{response.status_code} {response.text[:200]}")

        return check

    def fuzz() -> None:
        for result in schema.get_all_operations():
            operation = result.ok()
            headers = {"Authorization": f"Bearer {stack.tokens[_user_for(operation.path)]}"}
            real = ({"case_id": case_id} if "{case_id}" in operation.path else
                    {"task_id": task["task_id"]} if "{task_id}" in operation.path else None)
            for mode in GenerationMode:
                strategies = [operation.as_strategy(mode)]
                if real is not None:
                    strategies.append(operation.as_strategy(mode, path_parameters=real))
                try:
                    checker(st.one_of(strategies), headers)()
                except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                    pass

    try:
        await asyncio.to_thread(fuzz)
    finally:
        server.should_exit = True
        await serving
    assert requests >= 200
    assert sum(n for status, n in statuses.items() if status < 300) >= 20, statuses
    print("fuzz statuses:", dict(sorted(statuses.items())))
    assert not failures, "\n".join(failures[:20])
