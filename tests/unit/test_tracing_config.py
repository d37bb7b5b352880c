"""workers.tracing: the OTEL_* variables choose the exporter, off by default; what is
exported holds no URL, statement parameter, error text or exception message (decision
0061)."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from workers.tracing import (
    PrivateSpanExporter,
    Tracing,
    TracingConfigError,
    tracing_from_environment,
)

OTEL = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME",
        "OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL:
        monkeypatch.delenv(name, raising=False)


def exporter_of(tracing: Tracing):
    [processor] = tracing.provider._active_span_processor._span_processors
    return processor.span_exporter.inner


def test_off_unless_asked_no_provider_no_interceptor(monkeypatch) -> None:
    assert not tracing_from_environment().enabled
    for value in ("none", " None ", ""):
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", value)
        tracing = tracing_from_environment()
        assert not tracing.enabled and tracing.interceptors() == []
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing_from_environment().enabled


def test_otlp_to_the_collector_compose_names(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "homeward-worker")
    tracing = tracing_from_environment("homeward")
    exporter = exporter_of(tracing)
    assert isinstance(exporter, OTLPSpanExporter)
    assert exporter._endpoint == "http://otel-collector:4318/v1/traces"
    assert tracing.provider.resource.attributes["service.name"] == "homeward-worker"
    assert len(tracing.interceptors()) == 1
    tracing.shutdown()


def test_console_and_the_process_name_when_no_service_name_is_set(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    tracing = tracing_from_environment("homeward-api")
    assert isinstance(exporter_of(tracing), ConsoleSpanExporter)
    assert tracing.provider.resource.attributes["service.name"] == "homeward-api"


@pytest.mark.parametrize("value", ["jaeger", "zipkin", "console,otlp"])
def test_an_exporter_homeward_does_not_offer_is_named(monkeypatch, value) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", value)
    with pytest.raises(TracingConfigError, match="OTEL_TRACES_EXPORTER"):
        tracing_from_environment()


def test_database_spans_only_inside_a_trace() -> None:
    memory = InMemorySpanExporter()
    tracing = Tracing.exporting_to(memory)
    database = tracing.database_provider.get_tracer("t")
    with database.start_as_current_span("SELECT polled"):
        pass
    with tracing.provider.get_tracer("t").start_as_current_span("POST /cases"), \
            database.start_as_current_span("INSERT"):
        pass
    assert sorted(s.name for s in memory.get_finished_spans()) == ["INSERT", "POST /cases"]


def test_only_allowed_attributes_and_no_error_text_leave_the_process() -> None:
    memory = InMemorySpanExporter()
    tracing = Tracing(_provider_to(PrivateSpanExporter(memory)))
    tracer = tracing.provider.get_tracer("t")
    with tracer.start_as_current_span("GET /cases/{case_id}", kind=SpanKind.SERVER,
                                      attributes={"http.route": "/cases/{case_id}",
                                                  "http.target": "/cases/x?name=Ana-Marker",
                                                  "http.url": "http://h/x?name=Ana-Marker",
                                                  "url.query": "name=Ana-Marker",
                                                  "db.statement.parameters": "('Ana-Marker',)",
                                                  "http.user_agent": "Ana-Marker",
                                                  "homeward.request_id": "r1"}) as span:
        span.record_exception(ValueError('Key (name)=(Ana-Marker) already exists'))
        span.add_event("note", {"text": "Ana-Marker"})
        span.set_status(Status(StatusCode.ERROR, "IntegrityError: (Ana-Marker)"))
    [exported] = memory.get_finished_spans()
    assert "Ana-Marker" not in exported.to_json()
    assert dict(exported.attributes) == {"http.route": "/cases/{case_id}",
                                         "homeward.request_id": "r1"}
    assert exported.status.status_code is StatusCode.ERROR
    assert [dict(e.attributes) for e in exported.events] == [
        {"exception.type": "ValueError", "exception.escaped": "False"}, {}]


def _provider_to(exporter):
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider
