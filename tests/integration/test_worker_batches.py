"""The worker loop's claim path: settle and claim in one call; WORKER_CONCURRENCY > 1 batches.

The real loop runs in a thread of the test process on real Postgres. Its own connection counts
the queue statements it sends (a cursor class that notes each `ops.<function>` it calls and
whether rows came back), so the tests see the round trips, not a mock's idea of them.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
import pytest

from harness.waiting import wait_until
from reference.config import load_settings
from reference.jobqueue import Job, JobType, QueueClient
from reference.jobqueue.client import QueueClient as _Client
from reference.workers.context import JobContext
from reference.workers.loop import Worker, WorkerSpec

JOIN_TIMEOUT = 60  # seconds a stopping worker gets to finish its jobs in hand
QUEUE_CALL = re.compile(r"\bops\.(\w+)\(")
# The statements that claim or settle a job (heartbeats, reaps and prunes are housekeeping).
CLAIM_AND_SETTLE = {"claim_pending_job", "complete_job", "complete_job_and_claim",
                    "complete_jobs", "fail_job"}  # fmt: skip


class CountingCursor(psycopg.Cursor[Any]):
    """Notes each queue function a statement calls, and how many rows it returned."""

    sent: list[tuple[str, int]]  # set on the class made for one worker

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> CountingCursor:
        super().execute(query, params, **kwargs)
        text = query if isinstance(query, str) else str(query)
        called = [name for name in QUEUE_CALL.findall(text) if name in CLAIM_AND_SETTLE]
        if called == ["complete_jobs", "claim_pending_job"]:  # one statement, both functions
            called = ["complete_jobs_and_claim"]
        if called:
            self.sent.append((called[0], max(self.rowcount, 0)))
        return self


class CountedWorker(Worker):
    """The real worker, its loop connection counting the claim and settle statements it sends."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sent: list[tuple[str, int]] = []
        self.cursor_class = type("Counting", (CountingCursor,), {"sent": self.sent})

    def connect(self) -> _Client | None:
        queue = super().connect()
        if queue is not None:
            queue.conn.cursor_factory = self.cursor_class
        return queue

    def round_trips(self) -> int:
        """Claim and settle statements that did something (an idle poll that found nothing is
        not a round trip a job costs)."""
        return sum(1 for name, rows in self.sent if rows or name != "claim_pending_job")


@contextmanager
def running(database_url: str, concurrency: int, handler: Any) -> Iterator[CountedWorker]:
    settings = load_settings(
        {
            "DATABASE_URL": database_url,
            "WORKER_POLL_INTERVAL": "0.05",
            "WORKER_CONCURRENCY": str(concurrency),
        }
    )
    spec = WorkerSpec("Probe", "probe_worker", 1.0, {JobType.LOAD_PROBE: handler})
    worker = CountedWorker(settings, spec, threading.Event())
    thread = threading.Thread(target=worker.run, name="worker-under-test")
    thread.start()
    try:
        yield worker
    finally:
        worker.stop.set()
        thread.join(timeout=JOIN_TIMEOUT)
    assert not thread.is_alive(), "the worker did not stop"


def status(conn: psycopg.Connection[Any], job_id: UUID) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT status::text, attempts, last_error IS NOT NULL, locked_by "
        "FROM ops.job_queue WHERE id = %s",
        (job_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def all_completed(conn: psycopg.Connection[Any], ids: list[UUID]) -> bool:
    return all(status(conn, job_id)[0] == "completed" for job_id in ids)


class Together:
    """A handler whose runs wait for each other (`size` at once) when concurrency > 1: the
    batch really runs at once; with concurrency 1 it just notes the run."""

    def __init__(self, size: int) -> None:
        self.barrier = threading.Barrier(size) if size > 1 else None
        self.runs: list[UUID] = []
        self.lock = threading.Lock()

    def meet(self, job: Job) -> None:
        with self.lock:
            first = job.id not in self.runs
            self.runs.append(job.id)
        if self.barrier is not None and first:  # a job's first run only: the batch's own
            self.barrier.wait(timeout=20)


# concurrency: (jobs, the most claim/settle round trips they may take); before, 2 per job,
# and 4 for two batches of 3 settled with complete_jobs (claim, complete, claim, complete).
ROUND_TRIPS = {1: (5, 6), 3: (6, 3)}


@pytest.mark.parametrize("concurrency", sorted(ROUND_TRIPS))
def test_each_job_costs_one_claim_and_settle_round_trip_less(
    database_url: str, queue: QueueClient, db_conn: psycopg.Connection[Any], concurrency: int
) -> None:
    """Before: a claim and a complete_job per job (2 per job). Now, one at a time: one claim,
    then one complete_job_and_claim per job; in batches: one claim, then one
    complete_jobs_and_claim per batch."""
    jobs, most = ROUND_TRIPS[concurrency]
    ids = [queue.queue_job(JobType.LOAD_PROBE) for _ in range(jobs)]
    together = Together(concurrency)
    with running(database_url, concurrency, lambda job, _context: together.meet(job)) as worker:
        wait_until("every job to complete", lambda: all_completed(db_conn, ids), 60)
    calls = Counter(name for name, _rows in worker.sent)
    print(f"concurrency {concurrency}: {worker.round_trips()} round trips for {jobs} jobs",
          dict(calls))  # fmt: skip
    assert worker.round_trips() <= most, (
        f"{worker.round_trips()} claim/settle round trips for {jobs} jobs (at most {most}): "
        f"{worker.sent}"
    )
    assert calls["complete_job"] == 0
    assert sorted(together.runs) == sorted(ids), "a job ran twice or not at all"


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_failing_job_in_a_batch_is_retried_alone(
    database_url: str, queue: QueueClient, db_conn: psycopg.Connection[Any], concurrency: int
) -> None:
    failing = queue.queue_job(JobType.LOAD_PROBE, {"fail": True}, priority=1)
    good = [queue.queue_job(JobType.LOAD_PROBE) for _ in range(2)]
    together = Together(concurrency)

    def handler(job: Job, _context: JobContext) -> None:
        together.meet(job)
        if job.payload.get("fail"):
            raise RuntimeError("this job fails on its own")

    with running(database_url, concurrency, handler) as worker:
        wait_until("the good jobs to complete", lambda: all_completed(db_conn, good), 60)
        wait_until("the failure to be recorded", lambda: status(db_conn, failing)[2], 60)

    assert status(db_conn, failing)[:3] == ("pending", 1, True), status(db_conn, failing)
    assert [status(db_conn, job_id)[:2] for job_id in good] == [("completed", 1)] * 2
    assert together.runs.count(failing) == 1
    assert sorted(together.runs) == sorted([failing, *good]), "a good job was run again"
    settled = Counter(name for name, _rows in worker.sent)
    assert settled["fail_job"] == (1 if concurrency == 1 else 0)  # a batch fails on its slot
    assert settled["complete_job"] == 0, "the good jobs were not settled on the fast path"


@pytest.fixture
def effects(db_conn: psycopg.Connection[Any]) -> None:
    db_conn.execute("CREATE TABLE public.batch_effects (job_id uuid NOT NULL)")


@pytest.mark.usefixtures("effects")
@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_lost_lease_in_a_batch_stops_only_that_jobs_effects(
    database_url: str, queue: QueueClient, db_conn: psycopg.Connection[Any], concurrency: int
) -> None:
    victim = queue.queue_job(JobType.LOAD_PROBE, {"victim": True}, priority=1)
    others = [queue.queue_job(JobType.LOAD_PROBE) for _ in range(2)]
    together = Together(concurrency)
    started, stolen = threading.Event(), threading.Event()

    def handler(job: Job, context: JobContext) -> None:
        together.meet(job)
        if job.payload.get("victim"):
            started.set()
            assert stolen.wait(timeout=30), "the test never took the lease"
        with context.transaction(job) as conn:
            conn.execute("INSERT INTO public.batch_effects (job_id) VALUES (%s)", (job.id,))

    with running(database_url, concurrency, handler) as worker:
        assert started.wait(timeout=30)
        # Another worker took the job (as after a reap and a claim): only its lease changes.
        db_conn.execute(
            "UPDATE ops.job_queue SET locked_by = 'another-worker' WHERE id = %s", (victim,)
        )
        stolen.set()
        wait_until("the other jobs to complete", lambda: all_completed(db_conn, others), 60)

    written = [row[0] for row in db_conn.execute("SELECT job_id FROM public.batch_effects")]
    assert sorted(written) == sorted(others), "the victim's effects committed, or others' not"
    assert status(db_conn, victim) == ("processing", 1, False, "another-worker")
    assert Counter(name for name, _rows in worker.sent)["complete_job"] == 0


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_job_whose_connection_dies_in_a_batch_is_resumed_alone(
    database_url: str, queue: QueueClient, db_conn: psycopg.Connection[Any], concurrency: int
) -> None:
    """A lost connection is no failure: the job is still ours and runs again (attempt 1)."""
    cut = queue.queue_job(JobType.LOAD_PROBE, {"cut": True}, priority=1)
    others = [queue.queue_job(JobType.LOAD_PROBE) for _ in range(2)]
    together = Together(concurrency)

    def handler(job: Job, context: JobContext) -> None:
        first = job.id not in together.runs
        together.meet(job)
        if job.payload.get("cut") and first:
            pid = context.conn.info.backend_pid
            with psycopg.connect(database_url, autocommit=True) as side:
                side.execute("SELECT pg_terminate_backend(%s)", (pid,))
            context.conn.execute("SELECT 1")  # the server is gone: OperationalError

    with running(database_url, concurrency, handler):
        wait_until("every job to complete", lambda: all_completed(db_conn, [cut, *others]), 60)

    assert status(db_conn, cut)[:3] == ("completed", 1, False), "the cut job was failed"
    assert together.runs.count(cut) == 2
    assert sorted(set(together.runs)) == sorted([cut, *others])
    assert len(together.runs) == 4, "a job other than the cut one ran twice"
