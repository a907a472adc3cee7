"""The worker loop and database errors: only a lost connection resumes the job in hand.

Each error is a real one, raised by the server inside a handler's statement: a cancel
(`pg_cancel_backend`), a statement timeout, `lock_not_available`, a serialization failure, a
constraint, a deadlock between two handlers. Every one of them must fail the job through
`fail_job` (SQLSTATE and message in last_error, the attempt counted, the backoff applied) and
the worker must go on to its next job. Each handler fails on its first run only: a worker that
took the error for a lost connection would resume the job and complete it in silence.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from uuid import UUID

import psycopg
import pytest
import threaded_workers

from harness.waiting import wait_until
from reference.config import load_settings
from reference.jobqueue import Job, JobType, QueueClient
from reference.workers.context import Handler, JobContext
from reference.workers.loop import Worker, WorkerSpec

Fault = Callable[[psycopg.Connection[Any], str], None]  # (handler's connection, database url)


def cancelled(conn: psycopg.Connection[Any], database_url: str) -> None:
    """Another session cancels the handler's statement (what an operator's cancel does)."""
    pid = conn.info.backend_pid

    def cancel() -> None:
        with psycopg.connect(database_url, autocommit=True) as side:
            wait_until(
                "the handler's pg_sleep",
                lambda: side.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND query LIKE '%%pg_sleep%%'",
                    (pid,),
                ).fetchone(),
                timeout=20,
            )
            side.execute("SELECT pg_cancel_backend(%s)", (pid,))

    canceller = threading.Thread(target=cancel)
    canceller.start()
    try:
        conn.execute("SELECT pg_sleep(30)")
    finally:
        canceller.join()


def timed_out(conn: psycopg.Connection[Any], _url: str) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL statement_timeout = '50ms'")
        conn.execute("SELECT pg_sleep(5)")


def lock_not_available(conn: psycopg.Connection[Any], database_url: str) -> None:
    with psycopg.connect(database_url) as holder:  # holds the row lock until closed
        holder.execute("SELECT * FROM public.probe_rows WHERE id = 1 FOR UPDATE")
        conn.execute("SELECT * FROM public.probe_rows WHERE id = 1 FOR UPDATE NOWAIT")


def serialization_failure(conn: psycopg.Connection[Any], database_url: str) -> None:
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT v FROM public.probe_rows WHERE id = 1")  # the snapshot
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute("UPDATE public.probe_rows SET v = v + 1 WHERE id = 1")
        conn.execute("UPDATE public.probe_rows SET v = v + 1 WHERE id = 1")


def unique_violation(conn: psycopg.Connection[Any], _url: str) -> None:
    conn.execute("INSERT INTO public.probe_rows (id, v) VALUES (1, 0)")


class FailsOnce:
    """A load_probe handler that meets `fault` on its first run and succeeds after."""

    def __init__(self, fault: Fault, database_url: str) -> None:
        self.fault, self.database_url = fault, database_url
        self.runs: list[UUID] = []

    def __call__(self, job: Job, context: JobContext) -> None:
        self.runs.append(job.id)
        if len(self.runs) == 1:
            self.fault(context.conn, self.database_url)


@pytest.fixture
def probe_rows(db_conn: psycopg.Connection[Any]) -> None:
    db_conn.execute("CREATE TABLE public.probe_rows (id integer PRIMARY KEY, v integer NOT NULL)")
    db_conn.execute("INSERT INTO public.probe_rows VALUES (1, 0), (2, 0)")


def running(database_url: str, *handlers: Handler) -> AbstractContextManager[list[Worker]]:
    """Workers (one per handler) running the loop in threads until the block ends."""
    settings = load_settings({"DATABASE_URL": database_url, "WORKER_POLL_INTERVAL": "0.05"})
    specs = [WorkerSpec("Probe", "probe_worker", 1.0, {JobType.LOAD_PROBE: h}) for h in handlers]
    return threaded_workers.running(settings, *specs)


def job_row(conn: psycopg.Connection[Any], job_id: UUID) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT status::text, attempts, last_error, run_at > now() + interval '20 seconds' "
        "FROM ops.job_queue WHERE id = %s",
        (job_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def settled(conn: psycopg.Connection[Any], job_id: UUID) -> bool:
    """Whether the job was run and settled: completed, or failed with its error recorded."""
    status, _attempts, last_error, _backed_off = job_row(conn, job_id)
    return status == "completed" or last_error is not None


@pytest.mark.parametrize(
    ("fault", "sqlstate"),
    [
        (cancelled, "57014"),
        (timed_out, "57014"),
        (lock_not_available, "55P03"),
        (serialization_failure, "40001"),
        (unique_violation, "23505"),
    ],
    ids=["pg_cancel_backend", "statement_timeout", "lock_not_available", "serialization",
         "unique_violation"],
)  # fmt: skip
@pytest.mark.usefixtures("probe_rows")
def test_a_database_error_in_a_handler_fails_the_job_and_the_worker_goes_on(
    database_url: str,
    queue: QueueClient,
    db_conn: psycopg.Connection[Any],
    fault: Fault,
    sqlstate: str,
) -> None:
    poisoned = queue.queue_job(JobType.LOAD_PROBE, priority=1)
    after = queue.queue_job(JobType.LOAD_PROBE)
    handler = FailsOnce(fault, database_url)
    with running(database_url, handler):
        wait_until(
            "the next job to complete", lambda: job_row(db_conn, after)[0] == "completed", 60
        )

    status, attempts, last_error, backed_off = job_row(db_conn, poisoned)
    assert (status, attempts, backed_off) == ("pending", 1, True), (
        f"the job was not failed with backoff: {status=} {attempts=} {last_error=} "
        f"runs={len(handler.runs)}"
    )
    assert last_error is not None
    assert f"SQLSTATE {sqlstate}" in last_error
    assert handler.runs == [poisoned, after], "the failed job was run again without a claim"
    assert job_row(db_conn, after)[0] == "completed"


class DeadlockPair:
    """Two jobs' handlers lock rows 1 and 2 in opposite orders; each first run meets the other."""

    def __init__(self) -> None:
        self.both_hold_one = threading.Barrier(2)
        self.runs: list[UUID] = []

    def __call__(self, job: Job, context: JobContext) -> None:
        first_run = job.id not in self.runs
        self.runs.append(job.id)
        first, second = job.payload["order"]
        with context.conn.transaction():
            context.conn.execute("UPDATE public.probe_rows SET v = v + 1 WHERE id = %s", (first,))
            if first_run:
                self.both_hold_one.wait(timeout=30)
            context.conn.execute("UPDATE public.probe_rows SET v = v + 1 WHERE id = %s", (second,))


@pytest.mark.usefixtures("probe_rows")
def test_a_deadlock_between_two_handlers_fails_one_job_and_completes_the_other(
    database_url: str, queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    jobs = [
        queue.queue_job(JobType.LOAD_PROBE, {"order": [1, 2]}),
        queue.queue_job(JobType.LOAD_PROBE, {"order": [2, 1]}),
    ]
    pair = DeadlockPair()
    with running(database_url, pair, pair):
        wait_until("both jobs to settle", lambda: all(settled(db_conn, j) for j in jobs), 60)

    rows = sorted(job_row(db_conn, job_id) for job_id in jobs)
    assert [row[0] for row in rows] == ["completed", "pending"], rows
    victim = rows[1]
    assert victim[1] == 1
    assert victim[2] is not None
    assert "SQLSTATE 40P01" in victim[2]
    assert len(pair.runs) == 2, "the deadlock's victim was run again without a claim"
