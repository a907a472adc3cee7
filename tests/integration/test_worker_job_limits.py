"""A job's time limit (WORKER_JOB_TIMEOUT), enforced by the database, and its lease.

A poison ingest job (its upsert waits on a row another session holds locked) among 100 good
ones, on two real worker loops: every good job completes, each run of the poison job is
cancelled by the database at the limit and recorded as a failure naming the limit, and after
max_attempts it is dead-lettered. A handler that overruns in Python, where the database cannot
cancel it, keeps its lease only until the limit: the lease keeper stops extending it.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from uuid import UUID

import psycopg
import pytest
import threaded_workers

from harness.inputs.uploads import store_upload_bytes
from harness.waiting import wait_until
from reference.config import load_settings
from reference.jobqueue import Job, JobType, QueueClient
from reference.workers import ingest_processor
from reference.workers.context import JobContext
from reference.workers.loop import WorkerSpec

HEADER = "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\n"
GOOD_JOBS = 100
JOB_TIMEOUT = 1.0  # seconds: WORKER_JOB_TIMEOUT of the workers under test
POISON_ATTEMPTS = 3


def csv_for(case_number: str) -> bytes:
    return f"{HEADER}{case_number},Acme Funding LLC,John Doe,100.00,2024-01-15,Kings\n".encode()


def job_state(conn: psycopg.Connection[Any], job_id: UUID) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT status::text, attempts, dead_lettered_at IS NOT NULL, last_error "
        "FROM ops.job_queue WHERE id = %s",
        (job_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def retry_now(conn: psycopg.Connection[Any], job_id: UUID) -> None:
    """Skip the poison job's backoff (30 s, 60 s): make its retry due at once."""
    conn.execute(
        "UPDATE ops.job_queue SET run_at = now() WHERE id = %s AND status = 'pending'", (job_id,)
    )


def test_a_poison_job_among_good_ones_is_dead_lettered_at_its_time_limit(
    database_url: str,
    queue: QueueClient,
    db_conn: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="reference.workers.loop")
    db_conn.execute(
        "INSERT INTO public.judgments (case_number, plaintiff, defendant, judgment_amount)"
        " VALUES ('POISON-1', 'Acme Funding LLC', 'John Doe', 1)"
    )
    _, poison = store_upload_bytes(db_conn, "poison.csv", csv_for("POISON-1"))
    db_conn.execute(
        "UPDATE ops.job_queue SET max_attempts = %s, priority = 1 WHERE id = %s",
        (POISON_ATTEMPTS, poison),
    )
    good = [store_upload_bytes(db_conn, f"g{i}.csv", csv_for(f"GOOD-{i:03d}"))[1]
            for i in range(GOOD_JOBS)]  # fmt: skip
    settings = load_settings(
        {
            "DATABASE_URL": database_url,
            "WORKER_POLL_INTERVAL": "0.05",
            "WORKER_JOB_TIMEOUT": str(JOB_TIMEOUT),
        }
    )
    holder = psycopg.connect(database_url)  # holds the poison row's lock, never commits
    holder.execute("SELECT 1 FROM public.judgments WHERE case_number = 'POISON-1' FOR UPDATE")
    spec = ingest_processor.SPEC
    try:
        with threaded_workers.running(settings, spec, spec):

            def poison_dead() -> bool:
                retry_now(db_conn, poison)
                return bool(job_state(db_conn, poison)[2])

            wait_until("the poison job to be dead-lettered", poison_dead, timeout=90)
            wait_until(
                "every good job to complete",
                lambda: (
                    db_conn.execute(
                        "SELECT count(*) = %s FROM ops.job_queue WHERE id = ANY(%s) "
                        "AND status = 'completed'",
                        (GOOD_JOBS, good),
                    ).fetchone()
                    == (True,)
                ),
                timeout=120,
            )
    finally:
        holder.close()

    status, attempts, _, last_error = job_state(db_conn, poison)
    assert (status, attempts) == ("failed", POISON_ATTEMPTS)
    assert "WORKER_JOB_TIMEOUT" in last_error, last_error
    assert "SQLSTATE 57014" in last_error, last_error
    # Every run of the poison job ended by the database at the limit, none by anything else.
    poison_failures = [r.getMessage() for r in caplog.records if str(poison) in r.getMessage()]
    assert len(poison_failures) == POISON_ATTEMPTS, poison_failures
    assert all("over its time limit of 1 s" in message for message in poison_failures)


class Overrun:
    """A handler that works in Python (where no statement timeout reaches) past the limit."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, job: Job, context: JobContext) -> None:
        time.sleep(self.seconds)


def test_the_lease_is_extended_only_while_the_job_is_within_its_limit(
    database_url: str, queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    settings = load_settings(
        {
            "DATABASE_URL": database_url,
            "WORKER_POLL_INTERVAL": "0.05",
            "WORKER_JOB_TIMEOUT": str(JOB_TIMEOUT),
            "WORKER_LEASE_EXTEND_INTERVAL": "0.1",
        }
    )
    job_id = queue.queue_job(JobType.LOAD_PROBE)
    spec = WorkerSpec("Probe", "probe_worker", 1.0, {JobType.LOAD_PROBE: Overrun(4 * JOB_TIMEOUT)})
    lease_times = set()
    with threaded_workers.running(settings, spec):

        def finished() -> bool:
            row = db_conn.execute(
                "SELECT status::text, locked_at FROM ops.job_queue WHERE id = %s", (job_id,)
            ).fetchone()
            assert row is not None
            if row[1] is not None:
                lease_times.add(row[1])
            return str(row[0]) not in ("pending", "processing")

        wait_until("the overrunning job to end", finished, timeout=60)

    first, last = min(lease_times), max(lease_times)
    # Extensions every 0.1 s for the first second, then none for the other three.
    assert (last - first).total_seconds() < 2 * JOB_TIMEOUT, sorted(lease_times)
    assert len(lease_times) > 2, "the lease was never extended within the limit"
