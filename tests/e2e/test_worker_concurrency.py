"""WORKER_CONCURRENCY in the user's environment reaches the worker processes the harness runs."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from harness.stack.processes import WORKER_COMMANDS, ReferenceStack, service_environment
from harness.telemetry.collector import CollectedSpan, OtlpCollector
from harness.waiting import wait_until
from reference.jobqueue import JobType, QueueClient

CANARIES = 6


def settled(spans: list[CollectedSpan]) -> list[CollectedSpan]:
    return [s for s in spans if s.name == "complete_jobs ops.job_queue"]


def test_worker_concurrency_in_the_users_environment_reaches_the_worker(
    reference_stack: ReferenceStack,
    otel_collector: OtlpCollector,
    queue: QueueClient,
    db_conn: psycopg.Connection[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [queue.queue_job(JobType.SMOKE_CANARY) for _ in range(CANARIES)]
    monkeypatch.setenv("WORKER_CONCURRENCY", "3")  # the user's shell, not the stack's settings
    worker = reference_stack.start_worker("enforcement")

    def completed() -> bool:
        row = db_conn.execute(
            "SELECT count(*) FROM ops.job_queue WHERE id = ANY(%s) AND status = 'completed'",
            (ids,),
        ).fetchone()
        return row is not None and row[0] == CANARIES

    wait_until("every canary to complete", completed, 60)
    assert "Concurrency: 3 jobs at once" in worker.stdout().splitlines()
    log = worker.stderr()  # the batch's settlement, with the next claim or (stopping) alone
    assert "complete_jobs_and_claim: " in log or "complete_jobs: " in log, (
        "the worker did not complete a batch"
    )
    assert "complete_job_and_claim: " not in worker.stderr()
    # One statement settles the batch, yet each settlement is a span in its own job's trace.
    spans = otel_collector.wait_for_spans(lambda spans: len(settled(spans)) >= CANARIES, 30)
    process = {s.span_id: s for s in spans if s.name == "process ops.job_queue"}
    for settle in settled(spans):
        parent = process.get(settle.parent_span_id)
        assert parent is not None, f"a settle span outside its job's trace: {settle}"
        assert (
            parent.attributes["messaging.message.id"] == settle.attributes["messaging.message.id"]
        )
        assert settle.attributes["messaging.operation.type"] == "settle"
    assert {s.attributes["messaging.message.id"] for s in settled(spans)} == {str(i) for i in ids}


@pytest.mark.parametrize("value", ["0", "lots", "2.5", "1000"])
def test_a_bad_worker_concurrency_exits_2_naming_the_variable(value: str) -> None:
    env = service_environment(
        {"DATABASE_URL": "postgresql://svc@127.0.0.1:9/app", "WORKER_CONCURRENCY": value}
    )
    result = subprocess.run(
        [sys.executable, *WORKER_COMMANDS["ingest"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2, result.stderr
    assert f"WORKER_CONCURRENCY: '{value}'" in result.stderr
    assert "set WORKER_CONCURRENCY to a whole number of jobs from 1 to 32" in result.stderr
    assert "Starting" not in result.stdout
