"""The test process's own spans: one tracer provider per pytest process (each xdist worker too).

Not the global provider (in-process API tests install that). Its finished spans stay in memory
for the running test's report (harness/plugin/traces.py); with OTEL_EXPORTER_OTLP_ENDPOINT (or
..._TRACES_ENDPOINT) set they are also exported there by the SDK's OTLP/HTTP exporter, which reads
every standard OTEL_EXPORTER_OTLP_* variable itself; OTEL_TRACES_EXPORTER=none turns that off.

    @harness_span("kill_worker")         # or: with harness_span("clone_database"): ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

TEST_SERVICE = "dragonfly-tests"


def _exports_otlp() -> bool:
    """The user asked for OTLP: an endpoint is set and OTEL_TRACES_EXPORTER is not none."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    chosen = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    return bool(endpoint) and chosen != "none"


class HarnessTracing:
    """The test process's own tracer provider (not the global one: in-process API tests set
    that), keeping the finished spans of the running test in memory."""

    def __init__(self) -> None:
        # Resource.create merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME: the user's win.
        self.provider = TracerProvider(resource=Resource.create({"service.name": TEST_SERVICE}))
        self.memory = InMemorySpanExporter()
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        if _exports_otlp():
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer(__name__)


_tracing: HarnessTracing | None = None


def tracing() -> HarnessTracing:
    """The session's test tracing (made on first use)."""
    global _tracing  # noqa: PLW0603 - one provider per test process
    if _tracing is None:
        _tracing = HarnessTracing()
    return _tracing


@contextmanager
def harness_span(name: str, **attributes: str) -> Iterator[None]:
    """A span for a harness operation (clone_database, a fault, ...) in the current test."""
    with tracing().tracer.start_as_current_span(name, attributes=attributes):
        yield


def shutdown_tracing() -> None:
    """Flush the OTLP export, if any (at the end of the session)."""
    if _tracing is not None:
        _tracing.provider.shutdown()
