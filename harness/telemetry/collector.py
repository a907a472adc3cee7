"""A real OTLP/HTTP receiver on 127.0.0.1 that keeps what processes export, in memory.

The reference services run as separate processes, so an in-memory exporter in the test
process cannot see their spans; they export over OTLP/HTTP (protobuf) to this receiver
instead, and tests read the decoded spans, metric points and log records from it.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from harness.telemetry.otlp_forward import SIGNALS, OtlpForwarder
from harness.waiting import WaitTimeoutError, wait_until

SPAN_KINDS = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass(frozen=True)
class CollectedSpan:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]  # (trace_id, span_id) of each link
    status_code: int  # 0 unset, 1 ok, 2 error
    start_time_unix_nano: int = 0  # when the span started, by the sender's clock
    end_time_unix_nano: int = 0  # when it ended

    @property
    def seconds(self) -> float:
        """How long the span took."""
        return (self.end_time_unix_nano - self.start_time_unix_nano) / 1e9


@dataclass(frozen=True)
class CollectedLog:
    service: str
    body: str
    severity: str
    trace_id: str
    span_id: str
    time_unix_nano: int = 0  # when the record was logged, by the sender's clock


@dataclass
class Collected:
    spans: list[CollectedSpan] = field(default_factory=list)
    logs: list[CollectedLog] = field(default_factory=list)
    metric_points: list[tuple[str, str, dict[str, Any], float]] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # service -> attributes
    metric_units: dict[str, str] = field(default_factory=dict)  # metric name -> unit


def _service(resource_attributes: Iterable[KeyValue]) -> str:
    return str(_attributes(resource_attributes).get("service.name", ""))


def _decode_traces(body: bytes, into: Collected) -> None:
    request = ExportTraceServiceRequest.FromString(body)
    for resource_spans in request.resource_spans:
        service = _service(resource_spans.resource.attributes)
        into.resources[service] = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                into.spans.append(
                    CollectedSpan(
                        service=service,
                        name=span.name,
                        kind=SPAN_KINDS.get(span.kind, str(span.kind)),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                        links=tuple(
                            (link.trace_id.hex(), link.span_id.hex()) for link in span.links
                        ),
                        status_code=span.status.code,
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                    )
                )


def _decode_logs(body: bytes, into: Collected) -> None:
    request = ExportLogsServiceRequest.FromString(body)
    for resource_logs in request.resource_logs:
        service = _service(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                into.logs.append(
                    CollectedLog(
                        service=service,
                        body=str(_value(record.body)),
                        severity=record.severity_text,
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        time_unix_nano=record.time_unix_nano,
                    )
                )


def _decode_metrics(body: bytes, into: Collected) -> None:
    request = ExportMetricsServiceRequest.FromString(body)
    for resource_metrics in request.resource_metrics:
        service = _service(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                into.metric_units[metric.name] = metric.unit
                for point in getattr(metric, kind).data_points:
                    value = (
                        point.count
                        if kind in ("histogram", "exponential_histogram")
                        else getattr(point, point.WhichOneof("value"))
                    )
                    attributes = _attributes(point.attributes)
                    into.metric_points.append((service, metric.name, attributes, float(value)))


DECODERS: dict[str, Callable[[bytes, Collected], None]] = {
    "/v1/traces": _decode_traces,
    "/v1/logs": _decode_logs,
    "/v1/metrics": _decode_metrics,
}


class OtlpCollector:
    """Receives OTLP/HTTP protobuf exports on 127.0.0.1:<free port> until closed, and passes
    them on to the user's OTEL_EXPORTER_OTLP_ENDPOINT, if set
    (harness/telemetry/otlp_forward.py)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.collected = Collected()
        self.lock = threading.Lock()
        self.forwarder = forwarder = OtlpForwarder(environ)
        collector = self

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = received = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                decode = DECODERS.get(self.path)
                try:
                    if decode is None:
                        raise DecodeError(f"unknown OTLP path {self.path}")
                    with collector.lock:
                        decode(body, collector.collected)
                except DecodeError:
                    self.send_response(400)
                    self.end_headers()
                    return
                forwarder.forward(self.path, received, self.headers.get("Content-Encoding"))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        """The OTLP/HTTP base URL (for OTEL_EXPORTER_OTLP_ENDPOINT)."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def service_environment(self) -> dict[str, str]:
        """The variables that send all of a process's telemetry here, over OTLP/HTTP: the
        per-signal endpoints too, which the SDK prefers (the user's still get it all, forwarded)."""
        signals = {
            f"OTEL_EXPORTER_OTLP_{s}_ENDPOINT": f"{self.endpoint}{p}" for p, s in SIGNALS.items()
        }
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            **signals,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        }

    def spans(self) -> list[CollectedSpan]:
        with self.lock:
            return list(self.collected.spans)

    def logs(self) -> list[CollectedLog]:
        with self.lock:
            return list(self.collected.logs)

    def metric_points(self) -> list[tuple[str, str, dict[str, Any], float]]:
        with self.lock:
            return list(self.collected.metric_points)

    def resource(self, service: str) -> dict[str, Any]:
        """The resource attributes the service's spans were exported with."""
        with self.lock:
            return dict(self.collected.resources.get(service, {}))

    def metric_unit(self, name: str) -> str | None:
        with self.lock:
            return self.collected.metric_units.get(name)

    def wait_for_spans(
        self, predicate: Callable[[list[CollectedSpan]], bool], timeout: float = 20.0
    ) -> list[CollectedSpan]:
        """The spans once `predicate` holds for them; AssertionError after `timeout` seconds."""

        def matched() -> tuple[list[CollectedSpan]] | None:
            spans = self.spans()
            return (spans,) if predicate(spans) else None  # a tuple: [] may match too

        try:
            return wait_until("spans to match", matched, timeout, 0.1)[0]
        except WaitTimeoutError:
            names = sorted({f"{span.service}:{span.name}" for span in self.spans()})
            raise AssertionError(f"spans never matched within {timeout}s; got {names}") from None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        self.forwarder.close()
