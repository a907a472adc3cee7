"""One CSV upload through real processes: API → queue → Ingest Processor → Enforcement Engine."""

from __future__ import annotations

from typing import Any

import psycopg
from opentelemetry.trace import get_current_span as current_span

from harness.stack.demo import DEMO_CSV, finished_batch, upload_csv
from harness.stack.processes import ReferenceStack
from harness.telemetry.collector import CollectedSpan, OtlpCollector
from harness.telemetry.span_query import SpanQuery
from harness.waiting import wait_until

BAD_ROWS_CSV = DEMO_CSV
API_SERVICE = "dragonfly-api"
INGEST_SERVICE = "dragonfly-ingest_processor"


def test_an_upload_becomes_judgments_plans_and_packets(
    reference_stack: ReferenceStack, db_conn: psycopg.Connection[Any]
) -> None:
    reference_stack.start_api()
    reference_stack.start_worker("ingest")
    reference_stack.start_worker("enforcement")
    with reference_stack.client() as client:
        accepted = upload_csv(client, BAD_ROWS_CSV)
        batch = wait_until("the batch", lambda: finished_batch(client, accepted["batch_id"]))

        assert batch["status"] == "completed"
        assert batch["total_rows"] == batch["valid_rows"] + batch["invalid_rows"]
        assert batch["valid_rows"] > 0
        assert batch["invalid_rows"] > 0
        errors = client.get(f"/api/v1/intake/batches/{accepted['batch_id']}/errors").json()
        rows_with_errors = {error["row_number"] for error in errors["errors"]}
        assert len(rows_with_errors) == batch["invalid_rows"]
        assert all(error["message"] for error in errors["errors"])

        judgments = [
            str(row[0])
            for row in db_conn.execute(
                "SELECT id FROM public.judgments WHERE source_batch_id = %s",
                (accepted["batch_id"],),
            )
        ]
        assert len(judgments) == batch["valid_rows"]
        jobs = []
        for judgment_id in judgments:
            response = client.post(
                "/api/v1/enforcement/strategy", json={"judgment_id": judgment_id}
            )
            assert response.status_code == 202, response.text
            jobs.append(response.json()["job_id"])

        def all_done() -> bool:
            row = db_conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) "
                "FROM ops.job_queue "
                "WHERE job_type IN ('enforcement_strategy', 'enforcement_drafting')"
            ).fetchone()
            return row is not None and row[0] == row[1] == 2 * len(judgments)

        wait_until("the strategy and drafting jobs", all_done)
        for job_id in jobs:
            assert client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "completed"

    row = db_conn.execute(
        "SELECT count(DISTINCT p.judgment_id), count(d.id), min(d.total_fees) "
        "FROM enforcement.plans AS p JOIN enforcement.draft_packets AS d ON d.plan_id = p.id "
        "WHERE p.judgment_id = ANY(%s::uuid[])",
        (judgments,),
    ).fetchone()
    assert row is not None
    assert row[0] == row[1] == len(judgments)
    assert row[2] > 0
    assert reference_stack.stop() == {"ingest": 0, "enforcement": 0, "api": 0}


def test_one_upload_is_one_trace_from_the_test_to_sql(
    reference_stack: ReferenceStack, otel_collector: OtlpCollector
) -> None:
    reference_stack.start_api()
    ingest = reference_stack.start_worker("ingest")
    with reference_stack.client() as client:
        accepted = upload_csv(client, BAD_ROWS_CSV)
        wait_until("the batch", lambda: finished_batch(client, accepted["batch_id"]))

    def has_process_span(spans: list[CollectedSpan]) -> bool:
        return any(s.name == "process ops.job_queue" for s in spans)

    spans = SpanQuery(otel_collector.wait_for_spans(has_process_span))
    request = spans.one(service=API_SERVICE, kind="SERVER", name="POST /api/v1/intake/upload")
    trace = spans.trace_of(request)
    send = trace.one(name="send ops.job_queue", kind="PRODUCER")
    process = trace.one(name="process ops.job_queue", kind="CONSUMER", service=INGEST_SERVICE)

    # The test's own span (harness/plugin/traces.py) is the request's parent: one trace per test.
    test_span = current_span().get_span_context()
    assert request.trace_id == format(test_span.trace_id, "032x")
    assert request.parent_span_id == format(test_span.span_id, "016x")
    assert send.service == API_SERVICE
    assert send.attributes["messaging.message.id"] == accepted["job_id"]
    assert process.attributes["messaging.message.id"] == accepted["job_id"]
    assert trace.parent(process) == send
    assert (send.trace_id, send.span_id) in process.links
    trace.assert_causal(request, send)  # the send span descends from the HTTP request
    assert trace.root(send) == request  # (the test's span is not exported to the collector)
    # Claiming and settling the job are messaging operations in the job's own trace.
    claim = trace.one(name="claim_pending_job ops.job_queue", kind="CLIENT")
    assert claim.service == INGEST_SERVICE
    assert trace.parent(claim) == send
    assert claim.attributes["messaging.operation.type"] == "receive"
    assert claim.attributes["messaging.message.id"] == accepted["job_id"]
    settle = trace.one(name="complete_job ops.job_queue", kind="CLIENT")
    assert trace.parent(settle) == process
    assert settle.attributes["messaging.operation.type"] == "settle"
    # Stable semantic conventions for the database and HTTP spans (of the upload, not the polls).
    upload = trace.subtree(request)
    database = [s for s in upload.spans if s.kind == "CLIENT" and "db.system.name" in s.attributes]
    assert {s.service for s in database} == {API_SERVICE, INGEST_SERVICE}
    for span in database:
        assert span.attributes["db.system.name"] == "postgresql"
        assert span.attributes["db.namespace"]
        assert "db.statement" not in span.attributes
    # The psycopg instrumentation records no text for the ingest's one COPY; every query has it.
    untexted = [s for s in database if not s.attributes["db.query.text"]]
    assert len(untexted) <= 1, untexted
    assert request.attributes["http.request.method"] == "POST"
    assert "http.method" not in request.attributes
    for service in (API_SERVICE, INGEST_SERVICE):
        resource = otel_collector.resource(service)
        assert resource["service.namespace"] == "dragonfly"
        assert resource["service.version"]
        assert resource["deployment.environment.name"] == "dev"
    assert trace.children(process), "the handler's stages are spans under process"
    # Log records carry the ids: the worker's line about this job names the trace.
    assert f"trace_id={request.trace_id}" in ingest.stderr()


def test_services_export_the_standard_http_and_messaging_metrics(
    reference_stack: ReferenceStack, otel_collector: OtlpCollector
) -> None:
    reference_stack.start_api()
    reference_stack.start_worker("ingest")
    with reference_stack.client() as client:
        accepted = upload_csv(client, BAD_ROWS_CSV)
        wait_until("the batch", lambda: finished_batch(client, accepted["batch_id"]))
    assert reference_stack.stop() == {"ingest": 0, "api": 0}  # a clean exit flushes metrics

    points = otel_collector.metric_points()
    names = {(service, name) for service, name, _, _ in points}
    assert (API_SERVICE, "http.server.request.duration") in names
    assert otel_collector.metric_unit("http.server.request.duration") == "s"
    assert "http.server.duration" not in {name for _, name in names}
    assert (API_SERVICE, "messaging.client.sent.messages") in names
    for name in (
        "messaging.client.consumed.messages",
        "messaging.process.duration",
        "messaging.client.operation.duration",
    ):
        assert (INGEST_SERVICE, name) in names, name
    operations = {
        (attributes["messaging.operation.name"], attributes["messaging.operation.type"])
        for service, name, attributes, _ in points
        if name == "messaging.client.operation.duration"
    }
    assert {("send", "send"), ("claim_pending_job", "receive")} <= operations
    # The job's settlement: complete_job_and_claim's, or complete_jobs' when the stop the test
    # sends as soon as the batch shows finished reaches the worker before it settles the job.
    settled = {name for name, kind in operations if kind == "settle"}
    assert settled & {"complete_job", "complete_jobs"}, operations
    # The depth gauge reports every job type and open status, zeros included.
    depth = {
        (attributes["job_type"], attributes["status"]): value
        for _, name, attributes, value in points
        if name == "dragonfly.queue.depth"
    }
    assert len(depth) == 15, depth


def test_an_idle_worker_makes_no_traces(
    reference_stack: ReferenceStack, otel_collector: OtlpCollector
) -> None:
    reference_stack.start_worker("ingest", WORKER_POLL_INTERVAL="0.05")
    wait_until(
        "twenty empty polls in the exported claim metric",
        lambda: any(
            service == INGEST_SERVICE
            and name == "messaging.client.operation.duration"
            and attributes["messaging.operation.name"] == "claim_pending_job"
            and value >= 20
            for service, name, attributes, value in otel_collector.metric_points()
        ),
        timeout=60,
    )
    assert reference_stack.stop() == {"ingest": 0}

    traces = {span.trace_id for span in otel_collector.spans() if span.service == INGEST_SERVICE}
    # A poll that finds nothing makes no span; its time still goes into the claim metric.
    assert len(traces) <= 2, [s.name for s in otel_collector.spans()]  # the start-up reap
    claims = [
        value
        for service, name, attributes, value in otel_collector.metric_points()
        if service == INGEST_SERVICE
        and name == "messaging.client.operation.duration"
        and attributes["messaging.operation.name"] == "claim_pending_job"
    ]
    assert claims, "empty polls are measured"
    assert max(claims) >= 10
