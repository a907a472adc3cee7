"""Each test is a trace: a span per test, the parent of everything the test causes.

The span is current while the test runs (setup, call, teardown), so the HTTP clients the
harness hands out send its `traceparent`, jobs the API queues carry it in their trace context,
and the workers' spans join it. When a test fails, its report gets a `trace` section (and the
JUnit XML a `trace` property): the tree of the spans in its trace that reached `otel_collector`
and the harness's own spans (clone_database, ...; harness/telemetry/tracing.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.trace import SpanKind, Status, StatusCode

from harness.telemetry.collector import CollectedSpan, OtlpCollector
from harness.telemetry.span_query import SpanQuery, render
from harness.telemetry.tracing import TEST_SERVICE, shutdown_tracing, tracing
from harness.waiting import WaitTimeoutError, wait_until

SECTION = "trace"
# The services export every 200 ms in tests (OTEL_BSP_SCHEDULE_DELAY); a failing test's trace is
# drawn once no new span of it arrived for a second, or after SETTLE_TIMEOUT seconds.
SETTLE_QUIET = 1.0  # seconds
SETTLE_TIMEOUT = 10.0  # seconds
SPAN_KEY = pytest.StashKey[Span]()
FAILED_KEY = pytest.StashKey[bool]()
SHOWN_KEY = pytest.StashKey[bool]()


def as_collected(span: ReadableSpan) -> CollectedSpan:
    """A span of this process in the collector's form (a running span ends now)."""
    span_context = span.get_span_context()
    assert span_context is not None
    return CollectedSpan(
        service=str(span.resource.attributes.get("service.name", TEST_SERVICE)),
        name=span.name,
        kind=span.kind.name,
        trace_id=format(span_context.trace_id, "032x"),
        span_id=format(span_context.span_id, "016x"),
        parent_span_id=format(span.parent.span_id, "016x") if span.parent else "",
        attributes=dict(span.attributes or {}),
        links=tuple(
            (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x"))
            for link in span.links
        ),
        status_code=span.status.status_code.value,
        start_time_unix_nano=span.start_time or 0,
        end_time_unix_nano=span.end_time or time.time_ns(),
    )


def _settled(read: Callable[[], list[CollectedSpan]]) -> list[CollectedSpan]:
    """`read()` once it stopped growing for SETTLE_QUIET seconds (or at SETTLE_TIMEOUT)."""
    counts: list[int] = []

    def quiet() -> tuple[list[CollectedSpan]] | None:
        spans = read()
        counts.append(len(spans))
        return (spans,) if len(counts) > 1 and counts[-2] == counts[-1] else None

    try:
        return wait_until("the test's spans to arrive", quiet, SETTLE_TIMEOUT, SETTLE_QUIET)[0]
    except WaitTimeoutError:
        return read()


def trace_of_test(item: pytest.Item) -> SpanQuery | None:
    """The spans of `item`'s trace so far: its own span, the harness's, the services'."""
    span = item.stash.get(SPAN_KEY, None)
    if span is None:
        return None
    root = as_collected(span)
    ours = [
        as_collected(finished)
        for finished in tracing().memory.get_finished_spans()
        if format(finished.context.trace_id, "032x") == root.trace_id
    ]
    collector = getattr(item, "funcargs", {}).get("otel_collector")
    services: list[CollectedSpan] = []
    if isinstance(collector, OtlpCollector):
        services = _settled(lambda: [s for s in collector.spans() if s.trace_id == root.trace_id])
    return SpanQuery([root, *ours, *services])


@pytest.fixture
def otel_collector() -> Iterator[OtlpCollector]:
    """An OTLP/HTTP receiver on 127.0.0.1; what processes export to it stays in memory (and is
    passed on to the user's OTEL_EXPORTER_OTLP_ENDPOINT, if set)."""
    collector = OtlpCollector()
    try:
        yield collector
    finally:
        collector.close()


class TracePlugin:
    """The hooks: a span around each test's run, the `trace` section on a failing report."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        span = tracing().tracer.start_span(
            item.name,
            kind=SpanKind.INTERNAL,
            attributes={"test.case.name": item.nodeid, "code.function.name": item.name},
        )
        assert isinstance(span, Span)  # the SDK's: readable while it runs
        item.stash[SPAN_KEY] = span
        token = context.attach(trace.set_span_in_context(span))
        try:
            return (yield)
        finally:
            failed = item.stash.get(FAILED_KEY, False)
            span.set_attribute("test.case.result.status", "fail" if failed else "pass")
            if failed:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
            context.detach(token)
            tracing().memory.clear()

    @pytest.hookimpl(wrapper=True, trylast=True)  # innermost: the plugin's scrubbing sees it
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        report = yield
        span = item.stash.get(SPAN_KEY, None)
        if report.failed and span is not None:
            item.stash[FAILED_KEY] = True
            span.set_attribute("test.case.result.status", "fail")
            span.set_status(Status(StatusCode.ERROR))
        if report.failed and not item.stash.get(SHOWN_KEY, False):
            query = trace_of_test(item)
            if query is not None and len(query) > 1:  # more than the test's own span
                text = render(query)
                report.sections.append((SECTION, text))
                item.user_properties.append((SECTION, text))  # JUnit XML: a property
                item.stash[SHOWN_KEY] = True
        return report


def register_trace_plugin(config: pytest.Config) -> None:
    """Called by the plugin's pytest_configure: the hooks, and this module for its fixture."""
    config.pluginmanager.register(TracePlugin(), "dragonfly-harness-traces")
    config.pluginmanager.register(sys.modules[__name__], "dragonfly-harness-trace-fixtures")
    config.add_cleanup(shutdown_tracing)
