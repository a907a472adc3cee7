"""Each test is a trace; the harness's operations are spans in it (harness/telemetry/tracing.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from opentelemetry.trace import get_current_span

from harness.faults import kill_worker
from harness.stack.processes import ServiceProcess
from harness.telemetry.tracing import TEST_SERVICE, harness_span, tracing


def finished(name: str) -> list[tuple[int, int | None]]:
    """(trace id, parent span id) of each finished span of that name, in this test."""
    return [
        (span.context.trace_id, span.parent.span_id if span.parent else None)
        for span in tracing().memory.get_finished_spans()
        if span.name == name
    ]


def test_the_running_test_is_the_current_span() -> None:
    current = get_current_span()

    assert current.get_span_context().is_valid
    assert current.name == "test_the_running_test_is_the_current_span"  # type: ignore[attr-defined]
    assert current.resource.attributes["service.name"] == TEST_SERVICE  # type: ignore[attr-defined]


def test_harness_operations_are_spans_under_the_tests_span(tmp_path: Path) -> None:
    test = get_current_span().get_span_context()
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = ServiceProcess("sleeper", process, tmp_path / "out", tmp_path / "err")

    with harness_span("clone_database"):
        pass
    assert kill_worker(worker) == -9

    assert finished("clone_database") == [(test.trace_id, test.span_id)]
    assert finished("kill_worker") == [(test.trace_id, test.span_id)]
