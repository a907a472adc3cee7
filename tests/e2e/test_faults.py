"""Faults through real processes: SIGTERM mid-job, and the database dying mid-handler."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.faults import FaultTally
from harness.faults.audit import audit_enforcement, completed_jobs, seed_strategy_jobs
from harness.faults.gate import StrategyStriker, applications
from harness.inputs.csvgen import write_simplicity_csv
from harness.inputs.uploads import store_upload
from harness.postgres.server import PostgresServer
from harness.stack.processes import ReferenceStack
from harness.waiting import wait_until
from reference.jobqueue import QueueClient

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


def test_a_database_restart_mid_handler_loses_no_job(
    pg_server: PostgresServer,
    reference_stack: ReferenceStack,
    database_url: str,
) -> None:
    if pg_server.source != "embedded":
        pytest.skip("stopping and starting the server needs the embedded source")
    worker = reference_stack.start_worker("enforcement", WORKER_POLL_INTERVAL="0.05")
    tally = FaultTally("database_restart_mid_handler", minimum=1)
    with psycopg.connect(database_url, autocommit=True) as watcher:
        seed_strategy_jobs(watcher, JUDGMENTS)
        striker = StrategyStriker(database_url, watcher)
        try:
            job_id, _pid = striker.to_fence()  # a handler inside its transaction
            in_flight = applications(watcher, job_id) == 0
            pg_server.crash()
        finally:
            striker.close()  # its sessions died with the server
    wait_until("the worker to lose the database", lambda: lost_the_database(worker.stderr()))
    assert worker.process.poll() is None, "the worker must ride out the outage"
    pg_server.restart()
    tally.count(in_flight)
    with psycopg.connect(database_url, autocommit=True) as conn:
        judgments = JUDGMENTS + 1  # and the gated one
        wait_until("every job to complete", lambda: completed_jobs(conn) == 2 * judgments)
        figures = audit_enforcement(conn, judgments)
    assert worker.process.poll() is None
    log = worker.stderr()
    assert log.rindex("connected to the database") > log.index("lost the database connection")
    tally.require_landed()
    print(tally.line(figures))


def lost_the_database(log: str) -> bool:
    return "database unavailable" in log or "lost the database connection" in log
