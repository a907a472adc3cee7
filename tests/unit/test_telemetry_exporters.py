"""reference.telemetry leaves the OTLP endpoints to the SDK's exporters, which read the standard
variables themselves: the per-signal OTEL_EXPORTER_OTLP_TRACES_ENDPOINT beats the base one."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource

from harness.network import free_port
from harness.telemetry.collector import OtlpCollector
from reference.config import load_settings
from reference.telemetry import _tracer_provider

FLUSH_TIMEOUT_MS = 5_000


def test_the_traces_endpoint_variable_beats_the_base_endpoint(
    otel_collector: OtlpCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens: spans sent there are lost
    environment = {
        "DATABASE_URL": "postgresql://app@127.0.0.1/app",
        "OTEL_EXPORTER_OTLP_ENDPOINT": nobody,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otel_collector.endpoint}/v1/traces",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2",  # seconds: the lost export gives up quickly
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    provider = _tracer_provider(Resource.create({"service.name": "exporter-test"}), load_settings())
    try:
        provider.get_tracer(__name__).start_span("routed").end()
        provider.force_flush(FLUSH_TIMEOUT_MS)
        spans = otel_collector.wait_for_spans(bool, timeout=5.0)
    finally:
        provider.shutdown()
    assert [span.name for span in spans] == ["routed"]
