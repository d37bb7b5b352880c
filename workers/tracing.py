"""OpenTelemetry traces (decision 0061): one trace per request, from the HTTP server span
through the Temporal client call, the workflow and its activities, to the statements
they run.

:func:`configure_tracing` reads the standard variables once per process:
``OTEL_TRACES_EXPORTER`` (``none``, the default: no provider, no interceptor, no
instrumentation; ``console``; ``otlp``: OTLP over HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``),
``OTEL_SERVICE_NAME`` (else the process's own name), ``OTEL_SDK_DISABLED``; the SDK reads
the rest itself (``OTEL_EXPORTER_OTLP_*``, ``OTEL_BSP_*``, ``OTEL_TRACES_SAMPLER``,
``OTEL_RESOURCE_ATTRIBUTES``).

Nothing a person could be identified by leaves the process in a span: every exported span
passes :class:`PrivateSpanExporter`, which keeps only the attributes of
:data:`EXPORTED_ATTRIBUTES` (no URL, query string, header, client address or statement
parameter), and drops error descriptions and exception messages (a database error quotes
the row it refused). The TracingInterceptor puts no payload in a span: only workflow,
run, activity and update ids and type names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import Attributes
from temporalio.contrib.opentelemetry import TracingInterceptor

from api.request_ids import SPAN_ATTRIBUTE as REQUEST_ID_ATTRIBUTE

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger("homeward.tracing")

EXPORTERS = ("none", "console", "otlp")

# Not traced unless the operator says otherwise (OTEL_PYTHON_FASTAPI_EXCLUDED_URLS):
# probes and scrapes, every few seconds, would bury the requests people make.
EXCLUDED_URLS = "/health,/metrics"

EXPORTED_ATTRIBUTES = frozenset({
    REQUEST_ID_ATTRIBUTE,
    # HTTP server spans: the route template, never the URL (it may carry a query string
    # or a raw path with anything in it), the headers or the client's address.
    "http.route", "http.method", "http.request.method", "http.status_code",
    "http.response.status_code", "http.scheme", "url.scheme", "http.flavor",
    "network.protocol.version", "http.server_name", "server.address", "server.port",
    "net.host.port",
    # Database spans: the statement is SQLAlchemy's text with placeholders; the
    # parameters are never recorded.
    "db.system", "db.system.name", "db.name", "db.namespace", "db.statement",
    "db.query.text", "db.operation", "db.operation.name", "db.user", "net.peer.name",
    "net.peer.port", "net.transport",
    # temporalio.contrib.opentelemetry: ids and type names, never a payload.
    "temporalWorkflowID", "temporalRunID", "temporalActivityID", "temporalActivityType",
    "temporalUpdateID",
    # Events: the kind of exception, not its message or stack (which quote values).
    "exception.type", "exception.escaped",
})


class TracingConfigError(ValueError):
    """The OTEL_* variables ask for something homeward does not do; says which."""


class PrivateSpanExporter(SpanExporter):
    """Exports each span through ``inner`` with only :data:`EXPORTED_ATTRIBUTES` (on the
    span, its events and links) and no status description."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([private(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def private(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` with what :class:`PrivateSpanExporter` exports."""
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=_allowed(span.attributes),
        events=[Event(e.name, _allowed(e.attributes), e.timestamp) for e in span.events],
        links=[Link(link.context, _allowed(link.attributes)) for link in span.links],
        kind=span.kind, status=Status(span.status.status_code),
        start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _allowed(attributes: Attributes) -> dict:
    return {k: v for k, v in (attributes or {}).items() if k in EXPORTED_ATTRIBUTES}


class Tracing:
    """A process's tracing: the interceptor for its Temporal client (workers built from
    that client take it too), and the instrumentation of its app and engine. Off (no
    provider): every method does nothing."""

    def __init__(self, provider: TracerProvider | None = None,
                 database_provider: TracerProvider | None = None) -> None:
        self.provider = provider
        # Statements are traced only inside a trace (a request, an activity): the
        # projector's and the repair loop's polls would each make a trace of their own.
        self.database_provider = database_provider
        self._interceptor = (TracingInterceptor(provider.get_tracer("homeward.temporal"))
                             if provider is not None else None)

    @classmethod
    def exporting_to(cls, exporter: SpanExporter, service: str = "homeward",
                     batch: bool = False) -> Tracing:
        """Tracing that exports every span privately to ``exporter``, one span at a time
        or (``batch``) in the background."""
        processor = (BatchSpanProcessor if batch else SimpleSpanProcessor)(
            PrivateSpanExporter(exporter))
        resource = Resource.create({SERVICE_NAME: service})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(processor)
        database = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
        database.add_span_processor(_Shared(processor))
        return cls(provider, database)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def interceptors(self) -> list[TracingInterceptor]:
        return [self._interceptor] if self._interceptor is not None else []

    def instrument_app(self, app: FastAPI) -> FastAPI:
        if self.provider is not None:
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

            FastAPIInstrumentor.instrument_app(
                app, tracer_provider=self.provider,
                excluded_urls=os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS",
                                             EXCLUDED_URLS),
                exclude_spans=["receive", "send"])
        return app

    def instrument_engine(self, engine: AsyncEngine) -> AsyncEngine:
        if self.database_provider is not None:
            # What SQLAlchemyInstrumentor().instrument(engine=...) builds, for this engine
            # only: the instrumentor is a process-wide singleton that also patches every
            # create_engine (the migrations' too) and instruments once.
            from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

            usage = NoOpMeter("homeward").create_up_down_counter("db.client.connections.usage")
            EngineTracer(self.database_provider.get_tracer("homeward.database"),
                         engine.sync_engine, usage)
            self._instrument_asyncpg()
        return engine

    def _instrument_asyncpg(self) -> None:
        """The event store appends through the engine's asyncpg connections, not through
        SQLAlchemy (store/event_store.py): their statements need the asyncpg
        instrumentation, which patches asyncpg for the whole process, once. Without the
        package (opentelemetry-instrumentation-asyncpg), traces show no event append."""
        try:
            from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        except ImportError:
            log.warning("tracing without the event store's statements: "
                        "opentelemetry-instrumentation-asyncpg is not installed")
            return
        instrumentor = AsyncPGInstrumentor(capture_parameters=False)
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()  # bound to an earlier configuration's provider
        instrumentor.instrument(tracer_provider=self.database_provider)

    def shutdown(self) -> None:
        """Export what is still queued; the CLI calls it before the process exits."""
        if self.provider is not None:
            self.provider.shutdown()


class _Shared(SpanProcessor):
    """The main provider's processor, for the database provider's spans; shut down with
    the main provider only."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span, parent_context=None) -> None:
        self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.inner.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


_process: Tracing | None = None


def tracing_from_environment(service: str = "homeward") -> Tracing:
    """Tracing as the OTEL_* variables ask (module docstring), not yet the process's."""
    env = os.environ
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "none").split(",")
             if n.strip()] or ["none"]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={env['OTEL_TRACES_EXPORTER']}: homeward exports traces "
            f"to {', '.join(EXPORTERS[1:])} or none, not {unknown[0]}")
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or names == ["none"]:
        return Tracing()
    if len(set(names) - {"none"}) > 1:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={env['OTEL_TRACES_EXPORTER']}: choose one exporter")
    service = env.get("OTEL_SERVICE_NAME", "").strip() or service
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The endpoint and headers from OTEL_EXPORTER_OTLP_*, read by the exporter.
        return Tracing.exporting_to(OTLPSpanExporter(), service, batch=True)
    return Tracing.exporting_to(ConsoleSpanExporter(service_name=service), service)


def configure_tracing(service: str = "homeward") -> Tracing:
    """The process's tracing, made on the first call (``service``: its name when
    OTEL_SERVICE_NAME is unset), the same on every later call; on, it is also the
    process's global tracer provider."""
    global _process
    if _process is None:
        _process = tracing_from_environment(service)
        if _process.provider is not None:
            trace.set_tracer_provider(_process.provider)
            log.info("tracing on", exporter=os.environ.get("OTEL_TRACES_EXPORTER"),
                     service=_process.provider.resource.attributes.get(SERVICE_NAME))
    return _process


def shutdown_tracing() -> None:
    """Export the spans the process's tracing still holds, if it was made."""
    if _process is not None:
        _process.shutdown()
