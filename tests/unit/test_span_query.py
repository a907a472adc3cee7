"""Questions about a trace's spans, and the tree a failing test's report shows."""

from __future__ import annotations

from typing import Any

import pytest

from harness.telemetry.collector import CollectedSpan
from harness.telemetry.otlp_forward import forward_targets
from harness.telemetry.span_query import SpanQuery, render

TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(
    span_id: str,
    name: str,
    parent: str = "",
    service: str = "dragonfly-api",
    start: int = 0,
    *,
    status: int = 0,
    **attributes: Any,
) -> CollectedSpan:
    return CollectedSpan(
        service=service,
        name=name,
        kind="INTERNAL",
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        attributes=attributes,
        links=(),
        status_code=status,
        start_time_unix_nano=start * 1_000_000,
        end_time_unix_nano=(start + 2) * 1_000_000,
    )


TEST = span("t", "test_upload", service="dragonfly-tests")
REQUEST = span("r", "POST /upload", "t", start=1, **{"http.route": "/upload"})
SEND = span("s", "send ops.job_queue", "r", start=2, **{"messaging.message.id": "j1"})
PROCESS = span("p", "process ops.job_queue", "s", "dragonfly-ingest_processor", 5, status=2)
POLLS = [span(f"g{n}", "GET /batches", "t", start=10 + n) for n in range(3)]
QUERIES = [
    span(f"q{n}", "dragonfly_db", "p", "dragonfly-ingest_processor", 6 + n, **{"db.query.text": q})
    for n, q in enumerate(["select 1", "SELECT 2", "insert into t values (1)"])
]
SPANS = [TEST, REQUEST, SEND, PROCESS, *POLLS, *QUERIES]


def test_find_children_and_causality() -> None:
    query = SpanQuery(SPANS)

    assert query.one(name="send ops.job_queue", attributes={"messaging.message.id": "j1"}) == SEND
    assert query.find(service="dragonfly-ingest_processor", name="dragonfly_db") == QUERIES
    assert query.children(PROCESS) == QUERIES
    assert query.roots() == [TEST]
    assert query.root(PROCESS) == TEST
    query.assert_causal(REQUEST, PROCESS)
    with pytest.raises(AssertionError, match="is not an ancestor"):
        query.assert_causal(POLLS[0], PROCESS)
    with pytest.raises(AssertionError):
        query.one(name="GET /batches")


def test_the_tree_indents_by_depth_marks_errors_and_counts_repeats() -> None:
    assert render(SpanQuery(SPANS)).splitlines() == [
        "[dragonfly-tests] test_upload 2ms",
        "  [dragonfly-api] POST /upload route=/upload 2ms",
        "    [dragonfly-api] send ops.job_queue job=j1 2ms",
        "      !! [dragonfly-ingest_processor] process ops.job_queue 2ms ERROR",
        "        [dragonfly-ingest_processor] dragonfly_db db.operation=SELECT \u00d72 (total 4ms)",
        "        [dragonfly-ingest_processor] dragonfly_db db.operation=INSERT 2ms",
        "  [dragonfly-api] GET /batches \u00d73 (total 6ms)",
    ]


def test_a_long_tree_is_cut_with_a_count() -> None:
    many = [span(f"c{n}", f"step {n}", "t", start=n) for n in range(10)]

    lines = render(SpanQuery([TEST, *many]), max_lines=4).splitlines()

    assert lines[-1] == "... 7 more lines"
    assert len(lines) == 5


def test_a_subtree_is_the_span_and_its_descendants() -> None:
    query = SpanQuery(SPANS)

    assert query.subtree(SEND).spans == [SEND, PROCESS, *QUERIES]
    assert query.subtree(POLLS[0]).spans == [POLLS[0]]


def test_exports_go_on_to_the_receivers_the_standard_variables_name() -> None:
    targets = forward_targets(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs:4318/ingest",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-team=a,x-key=secret%20one",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-team=b",
        }
    )

    assert targets == {
        "/v1/traces": ("http://collector:4318/v1/traces", {"x-team": "b", "x-key": "secret one"}),
        "/v1/metrics": ("http://collector:4318/v1/metrics", {"x-team": "a", "x-key": "secret one"}),
        "/v1/logs": ("http://logs:4318/ingest", {"x-team": "a", "x-key": "secret one"}),
    }
    assert forward_targets({}) == {}
