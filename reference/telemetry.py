"""OpenTelemetry setup: the one module that touches the SDK.

Everything else calls `trace.get_tracer(__name__)` / `metrics.get_meter(__name__)` only.
Exporters follow the standard variables (via Settings): OTEL_{TRACES,METRICS,LOGS}_EXPORTER =
otlp | console | none; with OTEL_EXPORTER_OTLP_ENDPOINT set they default to otlp (HTTP),
otherwise to none. Processes that export nothing still create spans, so tests can read them.
The OTLP exporters read their endpoints (OTEL_EXPORTER_OTLP_ENDPOINT and the per-signal
OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT), headers and timeouts themselves.

Why the choice of exporter is made here, not by the SDK's own environment handling: that lives in
the private `opentelemetry.sdk._configuration` (no public API to call), reads `otlp` as gRPC
unless OTEL_EXPORTER_OTLP_PROTOCOL says http/protobuf (only the HTTP exporter is installed), and
exports nothing unless OTEL_*_EXPORTER is set, where setting only the endpoint turns export on
here. Settings also rejects a misspelt exporter with a clear message at startup.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from opentelemetry import _logs, metrics, trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from reference.config import OtelExporter, Settings

DISTRIBUTION = "dragonfly-harness"
SHUTDOWN_TIMEOUT = 5.0  # seconds a stopping process gives its telemetry to flush
LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [trace_id=%(otelTraceID)s span_id=%(otelSpanID)s] "
    "%(message)s"
)


@dataclass
class Telemetry:
    """The providers this process installed; shut them down to flush before exit."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Flush and stop all three at once, waiting `timeout` seconds at most.

        With the collector gone each exporter retries until its own deadline (10 s by default),
        one after the other; a process told to stop must not wait for that.
        """
        deadline = time.monotonic() + timeout
        stopping = [
            threading.Thread(target=shutdown, name=f"telemetry-shutdown-{index}", daemon=True)
            for index, shutdown in enumerate(
                (
                    self.tracer_provider.shutdown,
                    self.meter_provider.shutdown,
                    self.logger_provider.shutdown,
                )
            )
        ]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join(max(deadline - time.monotonic(), 0.0))


def _choice(explicit: OtelExporter | None, settings: Settings) -> OtelExporter:
    if explicit is not None:
        return explicit
    return "otlp" if settings.otel_exporter_otlp_endpoint else "none"


def _tracer_provider(resource: Resource, settings: Settings) -> TracerProvider:
    provider = TracerProvider(resource=resource)
    choice = _choice(settings.otel_traces_exporter, settings)
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter())  # endpoint: from the OTEL_* variables
        )
    elif choice == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    return provider


def _metric_readers(settings: Settings) -> list[MetricReader]:
    choice = _choice(settings.otel_metrics_exporter, settings)
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )

        exporter = OTLPMetricExporter()
        return [PeriodicExportingMetricReader(exporter)]
    if choice == "console":
        return [PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stderr))]
    return []


def _logger_provider(resource: Resource, settings: Settings) -> tuple[LoggerProvider, bool]:
    provider = LoggerProvider(resource=resource)
    choice = _choice(settings.otel_logs_exporter, settings)
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
            OTLPLogExporter,
        )

        exporter = OTLPLogExporter()
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    elif choice == "console":
        provider.add_log_record_processor(
            BatchLogRecordProcessor(ConsoleLogRecordExporter(out=sys.stderr))
        )
    return provider, choice != "none"


def service_version() -> str:
    """The installed distribution's version (service.version)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def service_resource(service_name: str, settings: Settings) -> Resource:
    """Our resource attributes as defaults: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win."""
    from_environment = OTELResourceDetector().detect().attributes
    ours = {
        "service.name": service_name,
        "service.namespace": "dragonfly",
        "service.version": service_version(),
        "deployment.environment.name": settings.environment.value,
    }
    return Resource.create({k: v for k, v in ours.items() if k not in from_environment})


def configure_telemetry(service_name: str, settings: Settings) -> Telemetry:
    """Install tracer, meter and logger providers, instrument psycopg and logging."""
    # The instrumentations read this variable themselves, once; the user's value wins.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", settings.otel_semconv_stability_opt_in)
    resource = service_resource(service_name, settings)
    tracer_provider = _tracer_provider(resource, settings)
    trace.set_tracer_provider(tracer_provider)
    meter_provider = MeterProvider(resource=resource, metric_readers=_metric_readers(settings))
    metrics.set_meter_provider(meter_provider)
    logger_provider, export_logs = _logger_provider(resource, settings)
    _logs.set_logger_provider(logger_provider)

    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    # The SDK's own records (e.g. "Failed to export", when the collector is down) go to stderr
    # only: exported through the SDK itself, each failure would make another record to export.
    sdk_logger = logging.getLogger("opentelemetry")
    sdk_logger.propagate = False
    sdk_handler = logging.StreamHandler(sys.stderr)
    sdk_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    sdk_logger.handlers = [sdk_handler]
    LoggingInstrumentor().instrument(
        tracer_provider=tracer_provider,
        inject_trace_context=True,
        enable_log_auto_instrumentation=export_logs,
    )
    # Before any connection or pool opens: the instrumentor wraps psycopg.connect.
    PsycopgInstrumentor().instrument(tracer_provider=tracer_provider, enable_commenter=False)
    return Telemetry(tracer_provider, meter_provider, logger_provider)


def instrument_app(app: FastAPI) -> None:
    """HTTP server spans and metrics for the API, without the noisy ASGI send/receive spans."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=trace.get_tracer_provider(),
        meter_provider=metrics.get_meter_provider(),
        exclude_spans=["receive", "send"],
    )
