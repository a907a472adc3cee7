"""Faults through real processes: SIGTERM mid-job, and the database dying mid-run."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.csvgen import write_simplicity_csv
from harness.postgres.server import PostgresServer
from harness.processes import ReferenceStack
from harness.uploads import store_upload
from harness.waiting import wait_until
from reference.jobqueue import JobType, QueueClient

JUDGMENTS = 40


def test_sigterm_mid_job_finishes_the_job_then_exits_0(
    reference_stack: ReferenceStack, db_conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    big = write_simplicity_csv(tmp_path / "big.csv", 150_000)
    worker = reference_stack.start_worker("ingest")
    batch_id, job_id = store_upload(db_conn, big)

    def started() -> bool:
        row = db_conn.execute(
            "SELECT started_at IS NOT NULL FROM ops.ingest_batches WHERE id = %s", (batch_id,)
        ).fetchone()
        return bool(row and row[0])

    wait_until("the ingest to start", started)
    signalled_at = datetime.now(UTC)
    worker.signal(signal.SIGTERM)

    assert worker.process.wait(timeout=120) == 0
    batch = db_conn.execute(
        "SELECT status::text, total_rows FROM ops.ingest_batches WHERE id = %s", (batch_id,)
    ).fetchone()
    assert batch == ("completed", 150_000)
    job = QueueClient(db_conn).get_job(job_id)
    assert job is not None
    assert job.status == "completed"
    assert job.completed_at is not None
    assert job.completed_at > signalled_at  # it was in hand when SIGTERM arrived
    heartbeat = db_conn.execute("SELECT status FROM ops.worker_heartbeats").fetchone()
    assert heartbeat == ("stopped",)
    assert "SIGTERM received" in worker.stderr()


def seed_strategy_jobs(conn: psycopg.Connection[Any], count: int) -> None:
    rows = conn.execute(
        "INSERT INTO public.judgments (case_number, plaintiff, defendant, judgment_amount) "
        "SELECT 'FAULT-' || n, 'Plaintiff ' || n, 'Defendant ' || n, 1000 + n "
        "FROM generate_series(1, %s) AS n RETURNING id",
        (count,),
    ).fetchall()
    queue = QueueClient(conn)
    for (judgment_id,) in rows:
        queue.queue_job(JobType.ENFORCEMENT_STRATEGY, {"judgment_id": str(judgment_id)})


def test_a_database_restart_mid_run_loses_no_job(
    pg_server: PostgresServer,
    reference_stack: ReferenceStack,
    db_conn: psycopg.Connection[Any],
    database_url: str,
) -> None:
    if pg_server.source != "embedded":
        pytest.skip("stopping and starting the server needs the embedded source")
    seed_strategy_jobs(db_conn, JUDGMENTS)
    worker = reference_stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")

    def completed(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(
            "SELECT count(*) FROM ops.job_queue WHERE status = 'completed'"
        ).fetchone()
        return int(row[0]) if row else 0

    wait_until("some jobs to complete", lambda: completed(db_conn) >= 5)
    pg_server.crash()
    time.sleep(2.0)
    assert worker.process.poll() is None, "the worker must ride out the outage"
    pg_server.restart()

    with psycopg.connect(database_url, autocommit=True) as conn:
        wait_until("every job to complete", lambda: completed(conn) == 2 * JUDGMENTS)
        statuses = conn.execute(
            "SELECT status::text, count(*) FROM ops.job_queue GROUP BY 1"
        ).fetchall()
        plans = conn.execute("SELECT count(*) FROM enforcement.plans").fetchone()
        packets = conn.execute("SELECT count(*) FROM enforcement.draft_packets").fetchone()
    assert statuses == [("completed", 2 * JUDGMENTS)]
    assert plans == (JUDGMENTS,)
    assert packets == (JUDGMENTS,)
    assert worker.process.poll() is None
    log = worker.stderr()
    assert "database unavailable" in log or "lost the database connection" in log
    assert log.rindex("connected to the database") > log.index("lost the database connection")
