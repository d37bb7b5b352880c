"""One trace per request, through Temporal and the event store, and no identity in it
(decision 0061).

The stack is wired as the composition roots wire it (``connect_with`` with the process's
tracing, ``build_worker`` from that client, ``api_services``, the app and the engine
instrumented by ``workers.tracing``), the spans exported privately to memory. A referral
with a full identity block (marker values found nowhere else) goes in through the API, then
an Update (the screening interview, with marker answers); a query string and a raw path
carry markers too. Every exported span is searched for them.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import date
from types import SimpleNamespace

import httpx
import pytest
from api_driver import open_task, referral, screening_body
from api_stack import PAYLOAD_KEYRING, VAULT_KEYRING, Stack, seed
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

import workers.tracing
from api.app import create_app
from api.request_ids import HEADER, SPAN_ATTRIBUTE
from store.accounts import Accounts
from store.event_store import EventStore
from workers.services import api_services
from workers.settings import Settings
from workers.temporal import connect_with
from workers.tracing import Tracing
from workers.worker import build_worker

# A bound on every wait, never a timing assertion (the machine is shared).
WAIT = 120.0


@pytest.fixture
async def traced(dev_server: WorkflowEnvironment, engine: AsyncEngine,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimpleNamespace]:
    exporter = InMemorySpanExporter()
    tracing = Tracing.exporting_to(exporter, "homeward-test")
    monkeypatch.setattr(workers.tracing, "_process", tracing)  # this process's tracing
    settings = Settings(
        temporal_address=dev_server.client.service_client.config.target_host,
        temporal_namespace=dev_server.client.namespace,
        payload_key=PAYLOAD_KEYRING.current.to_base64(),
        master_key=VAULT_KEYRING.current.to_base64(),
        task_queue=f"tracing-{uuid.uuid4()}", api_allow_journey_config=True,
    )
    client = await connect_with(settings)
    tracing.instrument_engine(engine)
    store = EventStore(engine)
    tokens, ids = await seed(Accounts(engine))
    services = api_services(settings, engine, client)
    app = tracing.instrument_app(create_app(services))
    async with (build_worker(client, store, settings.task_queue, "simulated", settings),
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://homeward.test") as http):
        yield SimpleNamespace(stack=Stack(http, engine, store, client, tokens, services, ids),
                              exporter=exporter, tracing=tracing, client=client)


def marker_identity(token: str, birth: date) -> dict:
    """An identity block in which every value a person could be known by holds ``token``
    (the birth date aside: it is searched for in its own forms)."""
    return {
        "given_names": f"Ilinca{token}G",
        "family_name": f"Moraru{token}F",
        "aliases": [f"Lina{token}A"],
        "date_of_birth": birth.isoformat(),
        "nationality": "MD",
        "identity_documents": [{"kind": "passport", "number": f"P{token}N",
                                "issuing_country": "MD"}],
        "contact_details": [{"kind": "phone", "value": f"+373{token}"}],
        "family_contacts": [{"relationship": "mother", "name": f"Mama{token}M",
                             "contact_details": [{"kind": "email",
                                                  "value": f"m{token}@example.org"}]}],
        "photos": [{"reference": f"cabinet {token} photo"}],
        "shelter_address": {"lines": [f"Strada {token} 4"], "locality": f"Loc{token}",
                            "postal_code": f"PC{token}", "country": "RS"},
    }


def of_trace(spans: list[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context.trace_id == trace_id]


async def until(exporter: InMemorySpanExporter, trace_id: int, *wanted) -> list[ReadableSpan]:
    """The trace's spans once, for each predicate of ``wanted``, one of them satisfies it
    (the workflow's activities run after the response)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        spans = of_trace(list(exporter.get_finished_spans()), trace_id)
        if all(any(want(s) for s in spans) for want in wanted):
            return spans
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("trace incomplete: " + ", ".join(sorted(s.name for s in spans)))
        await asyncio.sleep(0.1)


def server_span(spans, route: str, request_id: str) -> ReadableSpan:
    [span] = [s for s in spans if s.kind is SpanKind.SERVER
              and (s.attributes or {}).get(SPAN_ATTRIBUTE) == request_id]
    assert span.attributes["http.route"] == route
    return span


def named(prefix: str):
    return lambda span: span.name.startswith(prefix)


def appends_event(span: ReadableSpan) -> bool:
    return "INSERT INTO events" in str((span.attributes or {}).get("db.statement", ""))


def in_activity(spans: list[ReadableSpan]):
    """A statement run by an activity: its parent is a RunActivity span."""
    activities = {s.context.span_id for s in spans if s.name.startswith("RunActivity:")}
    return lambda span: appends_event(span) and span.parent is not None \
        and span.parent.span_id in activities


async def register(stack: Stack, identity: dict) -> tuple[str, str]:
    """Her referral through the API: its case id and the request's id."""
    response = await stack.http.post("/cases", json=referral(identity=identity),
                                     headers=stack.auth("coord.rs"))
    assert response.status_code == 201, response.text
    return response.json()["case_id"], response.headers[HEADER]


def trace_of(exporter: InMemorySpanExporter, request_id: str) -> int:
    [span] = [s for s in exporter.get_finished_spans()
              if (s.attributes or {}).get(SPAN_ATTRIBUTE) == request_id]
    return span.context.trace_id


async def test_a_referral_and_an_update_are_each_one_trace_without_identity(traced) -> None:
    stack, exporter = traced.stack, traced.exporter
    token = secrets.token_hex(5)
    birth = date(1990 + secrets.randbelow(15), 1 + secrets.randbelow(12),
                 1 + secrets.randbelow(28))

    case_id, request_id = await register(stack, marker_identity(token, birth))
    trace_id = trace_of(exporter, request_id)
    spans = await until(exporter, trace_id, named("StartWorkflow:"), named("RunWorkflow:"),
                        named("StartActivity:"), named("RunActivity:"))
    http = server_span(spans, "/cases", request_id)
    [start] = [s for s in spans if s.name.startswith("StartWorkflow:")]
    assert start.attributes["temporalWorkflowID"] == f"return-{case_id}"
    # Her identity went into the vault within the request: the statements are its children.
    assert any(s.parent is not None and s.parent.span_id == http.context.span_id
               and "INSERT INTO person_fields" in s.attributes.get("db.statement", "")
               for s in spans)

    # An Update: its request's trace holds the client's call; the workflow handles it
    # in the workflow's own trace (the referral's), linked to that call, and the activity
    # it runs is there too (TracingInterceptor: one trace per workflow).
    await open_task(stack, "coord.rs", case_id, "screening_interview", timeout=WAIT)
    screening = await stack.http.post(
        f"/cases/{case_id}/screening",
        json=screening_body(answers=f"She named the recruiter Marker{token}R"),
        headers=stack.auth("coord.rs"))
    assert screening.status_code == 200, screening.text
    update_trace = trace_of(exporter, screening.headers[HEADER])
    assert update_trace != trace_id
    update_spans = await until(exporter, update_trace, named("StartWorkflowUpdate:"))
    server_span(update_spans, "/cases/{case_id}/screening", screening.headers[HEADER])
    [call] = [s for s in update_spans if s.name.startswith("StartWorkflowUpdate:")]

    def linked_to_the_call(span: ReadableSpan) -> bool:
        return any(link.context.span_id == call.context.span_id for link in span.links)

    def after_the_update(span: ReadableSpan) -> bool:
        return span.name.startswith("RunActivity:") and span.start_time > call.start_time

    spans = await until(exporter, trace_id, lambda s: s.name.startswith("ValidateUpdate:")
                        and linked_to_the_call(s), lambda s: s.name.startswith(
                            "HandleUpdate:") and linked_to_the_call(s), after_the_update)

    # Markers in a query string and in a path no route matches.
    listed = await stack.http.get("/tasks", params={"kind": "informed_consent",
                                                    "q": f"Moraru{token}F"},
                                  headers=stack.auth("coord.rs"))
    assert listed.status_code in (200, 422), listed.text
    stray = await stack.http.get(f"/people/Ilinca{token}G", headers=stack.auth("coord.rs"))
    assert stray.status_code == 404
    trace_of(exporter, stray.headers[HEADER])  # traced, and searched below

    exported = "\n".join(s.to_json() for s in exporter.get_finished_spans())
    assert case_id in exported and request_id in exported  # the search searches something
    for needle in (token, birth.isoformat(), birth.strftime("%d.%m.%Y"),
                   birth.strftime("%Y%m%d")):
        assert needle not in exported, f"{needle} in an exported span"


async def test_the_event_append_is_a_statement_of_the_activity(traced) -> None:
    stack, exporter = traced.stack, traced.exporter
    token = secrets.token_hex(5)
    _case_id, request_id = await register(stack, marker_identity(token, date(1999, 9, 9)))
    trace_id = trace_of(exporter, request_id)
    spans = await until(exporter, trace_id, named("RunActivity:"))
    spans = await until(exporter, trace_id, in_activity(spans))
    exported = "\n".join(s.to_json() for s in exporter.get_finished_spans())
    assert token not in exported and "1999-09-09" not in exported


async def test_workers_built_from_the_client_take_its_tracing_interceptor(traced) -> None:
    [interceptor] = traced.tracing.interceptors()
    assert traced.client.config()["interceptors"] == [interceptor]
