"""The shared worker loop in-process on real Postgres: heartbeats, lease extension, lost lease."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from harness.inputs.uploads import store_upload_bytes
from harness.waiting import wait_until
from reference.config import load_settings
from reference.jobqueue import Job, JobStatus, JobType, QueueClient
from reference.workers import ingest_processor
from reference.workers.context import JobContext
from reference.workers.loop import Worker, WorkerSpec

LOCK_TIMEOUT = 1.5  # seconds: the job outlives it twice, so only extension keeps it held


class Probe:
    """A load_probe handler that works until the test releases it (or its lease is lost), and
    notes whether it saw its lease lost."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.saw_lease_lost = False

    def __call__(self, job: Job, context: JobContext) -> None:
        self.started.set()
        while not self.release.wait(0.02):
            if context.lease_lost():
                self.saw_lease_lost = True
                return


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def running_worker(worker_database_url: str, probe: Probe) -> Iterator[Worker]:
    settings = load_settings(
        {
            "DATABASE_URL": worker_database_url,  # the worker's least-privileged login user
            "WORKER_POLL_INTERVAL": "0.05",
            "WORKER_HEARTBEAT_INTERVAL": "0.2",
            "WORKER_LOCK_TIMEOUT": str(LOCK_TIMEOUT),
            "WORKER_LEASE_EXTEND_INTERVAL": "0.2",
        }
    )
    spec = WorkerSpec("Probe", "probe_worker", 1.0, {JobType.LOAD_PROBE: probe})
    worker = Worker(settings, spec, threading.Event())
    thread = threading.Thread(target=worker.run, name="worker-under-test")
    thread.start()
    yield worker
    probe.release.set()  # a test that failed mid-job must not leave the handler held
    worker.stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def _job(queue: QueueClient, job_id: UUID) -> Job:
    job = queue.get_job(job_id)
    assert job is not None
    return job


def test_the_worker_heartbeats_while_a_long_job_runs(
    running_worker: Worker, probe: Probe, queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    job_id = queue.queue_job(JobType.LOAD_PROBE)
    assert probe.started.wait(10)
    seen: set[Any] = set()

    def beats_mid_job() -> bool:
        # One snapshot: the job and the heartbeat read apart could straddle the job's end.
        row = db_conn.execute(
            "SELECT h.status, h.last_seen_at, q.status::text FROM ops.worker_heartbeats AS h, "
            "ops.job_queue AS q WHERE h.worker_id = %s AND q.id = %s",
            (running_worker.worker_id, job_id),
        ).fetchone()
        assert row is not None
        assert (row[0], row[2]) == ("busy", "processing"), row  # the handler is held
        seen.add(row[1])
        return len(seen) >= 4

    # The handler is held until four beats are seen; the loop alone gives none mid-job.
    wait_until("four heartbeats while the job runs", beats_mid_job, timeout=30)
    probe.release.set()
    wait_until("the job to complete", lambda: _job(queue, job_id).status is JobStatus.COMPLETED)


def test_an_extended_lease_outlives_the_lock_timeout_and_the_job_completes(
    running_worker: Worker, probe: Probe, queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    job_id = queue.queue_job(JobType.LOAD_PROBE)
    assert probe.started.wait(10)
    reaped: list[Job] = []
    began = db_conn.execute("SELECT clock_timestamp()").fetchone()  # locked_at moves on extension

    def held_past_two_lock_timeouts() -> bool:
        reaped.extend(queue.reap_stuck_jobs(timedelta(seconds=LOCK_TIMEOUT)))  # the worker's own
        row = db_conn.execute(
            "SELECT status::text, clock_timestamp() - %s > make_interval(secs => %s)"
            " FROM ops.job_queue WHERE id = %s",
            (began[0] if began else None, 2 * LOCK_TIMEOUT, job_id),
        ).fetchone()
        assert row is not None
        assert row[0] == "processing", (row, reaped)
        return bool(row[1])

    # The handler is held until the job is older than two lock timeouts by the database's clock.
    wait_until("the job to outlive its lock timeout twice", held_past_two_lock_timeouts, 30)
    probe.release.set()
    wait_until(
        "the job to complete", lambda: _job(queue, job_id).status is not JobStatus.PROCESSING
    )

    assert reaped == []
    job = _job(queue, job_id)
    assert (job.status, job.locked_by) == (JobStatus.COMPLETED, running_worker.worker_id)


def test_a_lost_lease_reaches_the_handler_and_the_job_is_left_to_its_new_owner(
    running_worker: Worker,
    probe: Probe,
    queue: QueueClient,
    db_conn: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    job_id = queue.queue_job(JobType.LOAD_PROBE)
    assert probe.started.wait(10)
    db_conn.execute("UPDATE ops.job_queue SET locked_by = 'thief' WHERE id = %s", (job_id,))

    wait_until("the worker to drop the job", lambda: "lease lost" in caplog.text, timeout=10)

    assert probe.saw_lease_lost
    job = _job(queue, job_id)
    assert (job.status, job.locked_by, job.last_error) == (JobStatus.PROCESSING, "thief", None)
    assert f"lease lost: job {job_id}" in caplog.text


def test_an_ingest_job_whose_batch_is_gone_is_dead_lettered_at_once(
    database_url: str, queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    settings = load_settings({"DATABASE_URL": database_url})
    worker = Worker(settings, ingest_processor.SPEC, threading.Event())
    batch_id, job_id = store_upload_bytes(db_conn, "gone.csv", b"Case Number\n")
    db_conn.execute("DELETE FROM ops.ingest_batches WHERE id = %s", (batch_id,))
    [job] = queue.claim_pending_job([JobType.INGEST_CSV], worker.worker_id)

    worker.handle(queue, job)

    failed = _job(queue, job_id)
    assert (failed.status, failed.attempts, failed.max_attempts) == (JobStatus.FAILED, 1, 5)
    assert failed.last_error is not None
    assert "BatchNotFoundError" in failed.last_error


def test_the_worker_prunes_old_history_like_it_reaps(
    database_url: str, queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    db_conn.execute(
        "INSERT INTO ops.job_queue (job_type, status, attempts, completed_at) "
        "VALUES ('load_probe', 'completed', 1, now() - interval '2 hours')"
    )
    recent = queue.queue_job(JobType.LOAD_PROBE)
    db_conn.execute(
        "UPDATE ops.job_queue SET status = 'completed', completed_at = now() WHERE id = %s",
        (recent,),
    )
    settings = load_settings({"DATABASE_URL": database_url, "RETAIN_COMPLETED_JOBS": "3600"})
    spec = WorkerSpec("Probe", "probe_worker", 1.0, {JobType.LOAD_PROBE: Probe()})
    worker = Worker(settings, spec, threading.Event())
    thread = threading.Thread(target=worker.run, name="pruning-worker")
    thread.start()
    try:
        wait_until(
            "the worker's first prune",
            lambda: db_conn.execute("SELECT count(*) = 1 FROM ops.job_queue").fetchone() == (True,),
            timeout=10,
        )
    finally:
        worker.stop.set()
        thread.join(timeout=30)
    assert _job(queue, recent).status is JobStatus.COMPLETED
