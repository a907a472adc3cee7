"""Concurrent claims, enqueues and reaps on real connections, and proof each test can fail.

Each guarantee is checked twice: against the real SQL functions (must hold) and against a
copy of the function with its lock clause removed, created in this test's own database
(must be caught). A concurrency test that cannot catch the bug it targets proves nothing.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
import pytest

from reference.jobqueue import JobType, QueueBusyError, QueueClient, QueueDatabaseError

Connect = Callable[..., psycopg.Connection[Any]]
CLAIM = "ops.claim_pending_job(text[], text, integer, interval)"
REAP = "ops.reap_stuck_jobs(interval)"
ENQUEUE = "ops.queue_job(text, jsonb, integer, timestamptz, text, jsonb, integer)"
WORKERS = 12
# A claim can come back empty while others hold the last rows: stop only when none is pending.
NONE_PENDING = (
    "SELECT NOT EXISTS (SELECT 1 FROM ops.job_queue"
    " WHERE status = 'pending' AND job_type = 'ingest_csv')"
)


def replace_in_function(conn: psycopg.Connection[Any], signature: str, old: str, new: str) -> None:
    """Recreate a function in this test's database with every `old` replaced by `new` in its
    body (ops.claim_pending_job has a statement for one job and one for a batch)."""
    row = conn.execute("SELECT pg_get_functiondef(%s::regprocedure)", (signature,)).fetchone()
    assert row is not None
    definition: str = row[0]
    assert old in definition, f"{old!r} is not in {signature}"
    conn.execute(definition.replace(old, new).encode())


def seed_jobs(conn: psycopg.Connection[Any], count: int) -> set[UUID]:
    rows = conn.execute(
        "INSERT INTO ops.job_queue (job_type, priority) "
        "SELECT 'ingest_csv', n %% 3 FROM generate_series(1, %s) AS n RETURNING id",
        (count,),
    ).fetchall()
    return {row[0] for row in rows}


@dataclass
class Drain:
    """What a crowd of workers claimed."""

    claimed: list[UUID] = field(default_factory=list)
    completed: list[bool] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def drain_concurrently(connect: Connect, batch_size: int) -> Drain:
    """WORKERS threads, each on its own connection, claim and complete until the queue is dry."""
    drain = Drain()
    start = threading.Barrier(WORKERS)

    def work(index: int) -> None:
        conn = connect()
        queue = QueueClient(conn)
        worker_id = f"worker-{index}"
        start.wait()
        while True:
            jobs = queue.claim_pending_job([JobType.INGEST_CSV], worker_id, batch_size)
            if not jobs and conn.execute(NONE_PENDING).fetchone() == (True,):
                return
            done = [queue.complete_job(job.id, worker_id) for job in jobs]
            with drain.lock:
                drain.claimed.extend(job.id for job in jobs)
                drain.completed.extend(done)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(work, range(WORKERS)))
    return drain


def assert_each_job_claimed_once(drain: Drain, jobs: set[UUID]) -> None:
    twice = [job_id for job_id, times in Counter(drain.claimed).items() if times > 1]
    assert not twice, f"{len(twice)} jobs were claimed more than once"
    assert set(drain.claimed) == jobs, f"{len(jobs - set(drain.claimed))} jobs were never claimed"
    assert all(drain.completed), "a worker could not complete a job it had claimed"


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 7])
def test_concurrent_claims_take_every_job_exactly_once(
    db_conn: psycopg.Connection[Any], db_connect: Connect, batch_size: int
) -> None:
    jobs = seed_jobs(db_conn, 1500)

    drain = drain_concurrently(db_connect, batch_size)

    assert_each_job_claimed_once(drain, jobs)
    row = db_conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'completed' AND attempts = 1), count(*) "
        "FROM ops.job_queue"
    ).fetchone()
    assert row == (1500, 1500)


@pytest.mark.slow
def test_the_drain_check_catches_a_claim_without_the_row_lock(
    db_conn: psycopg.Connection[Any], db_connect: Connect
) -> None:
    replace_in_function(db_conn, CLAIM, "FOR UPDATE SKIP LOCKED", "")
    jobs = seed_jobs(db_conn, 600)

    drain = drain_concurrently(db_connect, batch_size=1)

    with pytest.raises(AssertionError, match="claimed more than once"):
        assert_each_job_claimed_once(drain, jobs)


def claim_beside_an_open_claim(connect: Connect) -> tuple[UUID, UUID]:
    """Worker A claims inside an open transaction; worker B claims meanwhile, without waiting."""
    holder = connect()
    other = connect()
    other.execute("SET lock_timeout = '300ms'")
    with holder.transaction():
        [(held,)] = holder.execute(
            "SELECT id FROM ops.claim_pending_job(ARRAY['ingest_csv'], 'worker-a')"
        ).fetchall()
        [taken] = QueueClient(other).claim_pending_job([JobType.INGEST_CSV], "worker-b")
    return held, taken.id


def test_a_claim_skips_a_job_another_open_claim_holds(
    queue: QueueClient, db_connect: Connect
) -> None:
    first = queue.queue_job(JobType.INGEST_CSV, priority=1)
    second = queue.queue_job(JobType.INGEST_CSV, priority=0)

    assert claim_beside_an_open_claim(db_connect) == (first, second)


@pytest.mark.parametrize(
    "lock_clause", ["SKIP LOCKED", "FOR UPDATE SKIP LOCKED"], ids=["no-skip-locked", "no-lock"]
)
def test_the_open_claim_check_catches_a_claim_that_waits_or_takes_a_held_job(
    queue: QueueClient, db_conn: psycopg.Connection[Any], db_connect: Connect, lock_clause: str
) -> None:
    replace_in_function(db_conn, CLAIM, lock_clause, "")
    queue.queue_job(JobType.INGEST_CSV, priority=1)
    queue.queue_job(JobType.INGEST_CSV, priority=0)

    # Without SKIP LOCKED the second claim queues behind the first; without any row lock its
    # UPDATE still meets the first claim's row lock. Either way it cannot proceed at once.
    with pytest.raises(QueueBusyError, match="lock timeout"):
        claim_beside_an_open_claim(db_connect)


def enqueue_same_key_concurrently(connect: Connect, callers: int = 8) -> list[UUID]:
    start = threading.Barrier(callers)

    def enqueue(_: int) -> UUID:
        queue = QueueClient(connect())
        start.wait()
        return queue.queue_job(JobType.INGEST_CSV, {"file": "a.csv"}, idempotency_key="sha-a")

    with ThreadPoolExecutor(callers) as pool:
        return list(pool.map(enqueue, range(callers)))


def test_concurrent_enqueues_of_one_key_return_one_job(
    db_conn: psycopg.Connection[Any], db_connect: Connect
) -> None:
    ids = enqueue_same_key_concurrently(db_connect)

    assert len(set(ids)) == 1
    row = db_conn.execute("SELECT count(*) FROM ops.job_queue").fetchone()
    assert row == (1,)


def test_the_enqueue_check_catches_an_enqueue_without_on_conflict(
    db_conn: psycopg.Connection[Any], db_connect: Connect
) -> None:
    replace_in_function(
        db_conn,
        ENQUEUE,
        "ON CONFLICT (job_type, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
        "",
    )
    with pytest.raises(QueueDatabaseError, match="duplicate key"):
        enqueue_same_key_concurrently(db_connect)


def reap_concurrently(connect: Connect, reapers: int = 6) -> list[UUID]:
    start = threading.Barrier(reapers)

    def reap(_: int) -> list[UUID]:
        queue = QueueClient(connect())
        start.wait()
        return [job.id for job in queue.reap_stuck_jobs()]

    with ThreadPoolExecutor(reapers) as pool:
        return [job_id for reaped in pool.map(reap, range(reapers)) for job_id in reaped]


def expire_claimed_jobs(db_conn: psycopg.Connection[Any], count: int) -> set[UUID]:
    rows = db_conn.execute(
        "INSERT INTO ops.job_queue (job_type, status, attempts, locked_at, locked_by) "
        "SELECT 'ingest_csv', 'processing', 1, now() - interval '1 hour', 'dead-worker' "
        "FROM generate_series(1, %s) RETURNING id",
        (count,),
    ).fetchall()
    return {row[0] for row in rows}


@pytest.mark.slow
def test_concurrent_reapers_reap_each_stuck_job_once(
    db_conn: psycopg.Connection[Any], db_connect: Connect
) -> None:
    stuck = expire_claimed_jobs(db_conn, 2000)

    reaped = reap_concurrently(db_connect)

    assert sorted(reaped) == sorted(stuck)
    row = db_conn.execute("SELECT min(reap_count), max(reap_count) FROM ops.job_queue").fetchone()
    assert row == (1, 1)


@pytest.mark.slow
def test_the_reap_check_catches_a_reaper_without_the_row_lock(
    db_conn: psycopg.Connection[Any], db_connect: Connect
) -> None:
    replace_in_function(db_conn, REAP, "FOR UPDATE SKIP LOCKED", "")
    stuck = expire_claimed_jobs(db_conn, 2000)

    # The race needs two reapers to read the same expired rows before either commits; give
    # it a few rounds, each starting from the same stuck jobs.
    for _round in range(5):
        reaped = reap_concurrently(db_connect)
        if len(reaped) > len(stuck):
            break
        db_conn.execute(
            "UPDATE ops.job_queue SET status = 'processing', locked_by = 'dead-worker', "
            "locked_at = now() - interval '1 hour'"
        )

    with pytest.raises(AssertionError):
        assert sorted(reaped) == sorted(stuck)
