"""Each test is a trace: a failing test's report shows the tree of what it caused, across processes.

The inner run loads the harness through its `pytest11` entry point, on the outer run's server.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from harness.plugin.traces import TEST_SERVICE
from harness.postgres.server import PostgresServer
from harness.telemetry.collector import OtlpCollector
from harness.telemetry.span_query import SpanQuery

INNER_TESTS = """
from harness.stack.demo import DEMO_CSV, finished_batch, upload_csv
from harness.waiting import wait_until


def test_fails_after_the_ingest_job(reference_stack):
    reference_stack.start_api()
    reference_stack.start_worker("ingest")
    with reference_stack.client() as client:
        accepted = upload_csv(client, DEMO_CSV)
        print("JOB", accepted["job_id"])
        wait_until("the batch", lambda: finished_batch(client, accepted["batch_id"]))
    assert accepted["status"] == "deliberately failing"


def test_passes_quietly(reference_stack):
    reference_stack.start_api()
    with reference_stack.client() as client:
        assert client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000").status_code == 404
"""
SEPARATOR = re.compile(r"^[-_=]+ ")


def trace_section(output: list[str]) -> list[str]:
    """The lines of the report's `trace` section."""
    start = next(i for i, line in enumerate(output) if re.fullmatch(r"-+ trace -+", line))
    end = next(
        (i for i in range(start + 1, len(output)) if SEPARATOR.match(output[i])), len(output)
    )
    return output[start + 1 : end]


def depth(line: str) -> int:
    return (len(line) - len(line.lstrip(" "))) // 2


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_a_failing_test_shows_its_trace_from_test_to_worker(
    workers: tuple[str, ...],
    pytester: pytest.Pytester,
    pg_server: PostgresServer,
    otel_collector: OtlpCollector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The inner run's user points OTEL_EXPORTER_OTLP_ENDPOINT at a receiver of their own (here
    the outer run's collector): the test spans and the services' spans reach it too. Under
    pytest-xdist each worker has its own session (template, tracing) and the same report."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otel_collector.endpoint)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--pg-source=external",
        f"--pg-url={pg_server.conninfo}",
        "--junitxml=junit.xml",
        *workers,
        timeout=300,
    )
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.lines
    job_id = next(line.split()[1] for line in output if line.startswith("JOB "))
    lines = trace_section(output)
    print("\n".join(lines))

    # One tree: the failing test's span is the only root, marked as an error.
    root, *rest = lines
    assert root.startswith("!! [dragonfly-tests] test_fails_after_the_ingest_job"), root
    assert "outcome=fail" in root
    assert rest
    assert all(depth(line) >= 1 for line in rest), lines
    # The harness's clone, the API's request and, beneath it, the worker's job spans.
    assert any(depth(line) == 1 and "clone_database" in line for line in rest), lines
    request = next(
        i
        for i, line in enumerate(lines)
        if "[dragonfly-api] POST /api/v1/intake/upload" in line and "status=202" in line
    )
    assert depth(lines[request]) == 1, lines
    process = next(
        i
        for i, line in enumerate(lines)
        if "[dragonfly-ingest_processor] process ops.job_queue" in line
    )
    assert f"job={job_id}" in lines[process]
    assert "type=ingest_csv" in lines[process]
    assert process > request
    assert depth(lines[process]) > depth(lines[request])
    assert all(depth(line) > depth(lines[request]) for line in lines[request + 1 : process])
    assert any("complete_job ops.job_queue" in line for line in lines[process + 1 :]), lines
    # Repeated siblings (the test's status polls) are one line with a count.
    assert any(
        "[dragonfly-api] GET /api/v1/intake/batches/{batch_id}" in line and "\u00d7" in line
        for line in lines
    ), lines

    # A passing test prints nothing extra; the JUnit XML carries the failing test's trace.
    assert sum(1 for line in output if re.fullmatch(r"-+ trace -+", line)) == 1
    suite = ElementTree.parse(pytester.path / "junit.xml").getroot()  # noqa: S314 - our own file
    traces = {
        case.get("name"): prop.get("value")
        for case in suite.iter("testcase")
        for prop in case.iter("property")
        if prop.get("name") == "trace"
    }
    assert list(traces) == ["test_fails_after_the_ingest_job"]
    assert "process ops.job_queue" in str(traces["test_fails_after_the_ingest_job"])

    # Everything reached the user's receiver: both test spans, and the failing test's trace
    # from the test to the worker's job.
    exported = SpanQuery(otel_collector.spans())
    failing = exported.one(service=TEST_SERVICE, name="test_fails_after_the_ingest_job")
    assert failing.attributes["test.case.result.status"] == "fail"
    passing = exported.one(service=TEST_SERVICE, name="test_passes_quietly")
    assert passing.attributes["test.case.result.status"] == "pass"
    trace = exported.trace_of(failing)
    upload = trace.one(service="dragonfly-api", name="POST /api/v1/intake/upload")
    job = trace.one(service="dragonfly-ingest_processor", name="process ops.job_queue")
    assert trace.parent(upload) == failing
    trace.assert_causal(failing, job)
