"""Our client draining no-op jobs through the contract's functions, from Python threads."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from reference.jobqueue import QueueClient

LOAD_TYPE = "load_probe"


@dataclass
class Drain:
    """Jobs claimed and completed, the wall time, and every claim call's latency."""

    jobs: int = 0
    seconds: float = 0.0
    claim_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    claimed: set[Any] = field(default_factory=set)
    double_claims: int = 0

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0

    def claim_p99_ms(self) -> float:
        ordered = sorted(self.claim_seconds)
        return ordered[int(0.99 * (len(ordered) - 1))] * 1000.0 if ordered else 0.0


def fill_pending(conn: psycopg.Connection[Any], count: int, job_type: str = LOAD_TYPE) -> None:
    """`count` pending jobs due now, in one statement, then fresh statistics."""
    conn.execute(
        "INSERT INTO ops.job_queue (job_type, run_at) "
        "SELECT %s, now() - interval '1 hour' + g * interval '1 ms' "
        "FROM generate_series(1, %s) AS g",
        (job_type, count),
    )
    conn.execute("VACUUM ANALYZE ops.job_queue")


def fill_completed(conn: psycopg.Connection[Any], count: int) -> None:
    conn.execute(
        "INSERT INTO ops.job_queue (job_type, status, run_at, completed_at, locked_by, attempts) "
        "SELECT %s, 'completed', now() - interval '3 days' + g * interval '1 ms', "
        "now() - interval '2 days', 'history', 1 FROM generate_series(1, %s) AS g",
        (LOAD_TYPE, count),
    )
    conn.execute("VACUUM ANALYZE ops.job_queue")


def drain(db_url: str, *, threads: int, batch: int, max_jobs: int, max_seconds: float) -> Drain:
    """`threads` workers claim `batch` at a time and complete them (one call for a batch)
    until `max_jobs` are done, the queue is empty, or `max_seconds` pass."""
    result = Drain()
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)
    deadline: list[float] = []

    def work(number: int) -> None:
        worker_id = f"bench-{number}"
        with psycopg.connect(db_url, autocommit=True) as conn:
            queue = QueueClient(conn)
            latencies: list[float] = []
            start.wait()
            while time.monotonic() < deadline[0]:
                with lock:
                    if result.jobs >= max_jobs:
                        break
                began = time.perf_counter()
                jobs = queue.claim_pending_job([LOAD_TYPE], worker_id, batch)
                latencies.append(time.perf_counter() - began)
                if not jobs:
                    break
                if batch > 1:
                    done = len(queue.complete_jobs([job.id for job in jobs], worker_id))
                else:
                    done = int(queue.complete_job(jobs[0].id, worker_id))
                with lock:
                    result.jobs += done
                    for job in jobs:  # a job handed to two claimers is a double claim
                        if job.id in result.claimed:
                            result.double_claims += 1
                        result.claimed.add(job.id)
                    if done != len(jobs):
                        result.errors.append(f"{worker_id}: {len(jobs) - done} not completed")
            with lock:
                result.claim_seconds.extend(latencies)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    deadline.append(time.monotonic() + max_seconds)
    began = time.perf_counter()
    start.wait()
    for worker in workers:
        worker.join(max_seconds + 60)
    result.seconds = time.perf_counter() - began
    return result
