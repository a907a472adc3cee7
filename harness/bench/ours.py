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
        return p99_ms(self.claim_seconds)


def p99_ms(seconds: list[float]) -> float:
    """The 99th percentile of durations in seconds, in milliseconds (0 for none)."""
    ordered = sorted(seconds)
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


@dataclass
class DrainPlan:
    """How each claimer of a drain works: `batch` jobs per claim; `combined`: each completion
    and the next claim in one call (ops.complete_job_and_claim at batch 1, the client's
    complete_jobs_and_claim statement above);
    `work_seconds`: each job's (sleeping) work, for latency below saturation."""

    batch: int = 1
    combined: bool = False
    work_seconds: float = 0.0


class _DrainRun:
    def __init__(self, db_url: str, plan: DrainPlan, max_jobs: int, threads: int) -> None:
        self.db_url, self.plan, self.max_jobs = db_url, plan, max_jobs
        self.result = Drain()
        self.lock = threading.Lock()
        self.start = threading.Barrier(threads + 1)
        self.deadline = 0.0

    def settle(self, worker_id: str, jobs: list[Any], done: int) -> None:
        with self.lock:
            self.result.jobs += done
            for job in jobs:  # a job handed to two claimers is a double claim
                if job.id in self.result.claimed:
                    self.result.double_claims += 1
                self.result.claimed.add(job.id)
            if done != len(jobs):
                self.result.errors.append(f"{worker_id}: {len(jobs) - done} not completed")

    def finished(self) -> bool:
        with self.lock:
            return self.result.jobs >= self.max_jobs or time.monotonic() >= self.deadline

    def claim(self, queue: QueueClient, worker_id: str, held: list[Any]) -> list[Any]:
        if self.plan.combined and held and self.plan.batch > 1:  # the batch workers' path
            done, jobs = queue.complete_jobs_and_claim(
                [job.id for job in held], worker_id, [LOAD_TYPE], self.plan.batch
            )
            self.settle(worker_id, held, len(done))
            return jobs
        if self.plan.combined and held:
            completed, jobs = queue.complete_job_and_claim(held[0].id, worker_id, [LOAD_TYPE])
            self.settle(worker_id, held, int(completed))
            return jobs
        return queue.claim_pending_job([LOAD_TYPE], worker_id, self.plan.batch)

    def complete(self, queue: QueueClient, worker_id: str, jobs: list[Any]) -> None:
        if len(jobs) > 1:
            done = len(queue.complete_jobs([job.id for job in jobs], worker_id))
        else:
            done = int(queue.complete_job(jobs[0].id, worker_id))
        self.settle(worker_id, jobs, done)

    def work(self, number: int) -> None:
        worker_id = f"bench-{number}"
        latencies: list[float] = []
        held: list[Any] = []
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            queue = QueueClient(conn)
            self.start.wait()
            while not self.finished():
                began = time.perf_counter()
                jobs = self.claim(queue, worker_id, held)
                latencies.append(time.perf_counter() - began)
                held = []
                if not jobs:
                    break
                if self.plan.work_seconds:  # the saturating cases never yield here
                    time.sleep(self.plan.work_seconds)
                if self.plan.combined:
                    held = jobs
                else:
                    self.complete(queue, worker_id, jobs)
            if held:
                self.complete(queue, worker_id, held)
        with self.lock:
            self.result.claim_seconds.extend(latencies)


def drain(
    db_url: str,
    *,
    threads: int,
    max_jobs: int,
    max_seconds: float,
    plan: DrainPlan | None = None,
) -> Drain:
    """`threads` workers claim and complete jobs as `plan` says (default: one job per claim)
    until `max_jobs` are done, the queue is empty, or `max_seconds` pass."""
    run = _DrainRun(db_url, plan or DrainPlan(), max_jobs, threads)
    workers = [threading.Thread(target=run.work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    run.deadline = time.monotonic() + max_seconds
    began = time.perf_counter()
    run.start.wait()
    for worker in workers:
        worker.join(max_seconds + 60)
    run.result.seconds = time.perf_counter() - began
    return run.result
