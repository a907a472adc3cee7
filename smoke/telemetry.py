"""The smoke run's tracing: one trace per run, exported as the standard OTEL_* variables say.

OTEL_TRACES_EXPORTER = otlp | console | none; without it, otlp when OTEL_EXPORTER_OTLP_ENDPOINT
(or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, else none. The SDK's OTLP/HTTP exporter reads
the endpoint, headers and timeout variables itself. The choice is made here, not by the SDK's
own environment handling, for the reasons in reference.telemetry's docstring.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

SERVICE_NAME = "dragonfly-smoke"
EXPORTERS = ("otlp", "console", "none")


class TelemetryConfigError(ValueError):
    """OTEL_TRACES_EXPORTER names an exporter the smoke suite does not have."""


def exporter_choice(env: Mapping[str, str]) -> str:
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if chosen:
        if chosen not in EXPORTERS:
            raise TelemetryConfigError(
                f"OTEL_TRACES_EXPORTER: {chosen!r} is not one of otlp, console, none"
            )
        return chosen
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return "otlp" if any(env.get(name, "").strip() for name in endpoints) else "none"


def configure_tracing(env: Mapping[str, str], mode: str) -> TracerProvider:
    """Install the tracer provider for this process; shut it down to flush the spans."""
    resource = Resource.create(
        {
            "service.name": SERVICE_NAME,
            "service.namespace": "dragonfly",
            "deployment.environment.name": mode,
        }
    )
    provider = TracerProvider(resource=resource)
    choice = exporter_choice(env)
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=5)))
    elif choice == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    trace.set_tracer_provider(provider)
    return provider
